/** Milliseconds rounded to microseconds, for timings in responses and logs. */
export const roundMs = (ms: number): number => Math.round(ms * 1000) / 1000

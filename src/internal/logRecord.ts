/**
 * A log message with fields: `Effect.logInfo(new LogRecord("request answered", { frame_id: 42 }))`.
 * The runtime's JSON logger writes the fields beside `message` (one structured record); the pretty
 * logger, and any other logger that turns it into text, writes `text`.
 */
const inspect = Symbol.for("nodejs.util.inspect.custom")

export class LogRecord {
  constructor(
    /** A short, constant message: what happened. */
    readonly message: string,
    readonly fields: Readonly<Record<string, unknown>>,
    /** The text a person reads; default: the message, then `key=value` for each field. */
    private readonly textOf?: () => string
  ) {}

  get text(): string {
    if (this.textOf !== undefined) return this.textOf()
    let out = this.message
    for (const [key, value] of Object.entries(this.fields)) {
      if (value !== undefined) out += ` ${key}=${typeof value === "string" ? value : JSON.stringify(value)}`
    }
    return out
  }

  toString(): string {
    return this.text
  }

  /** Effect's default logger prints message values with Node's `util.inspect`: the text, as before. */
  [inspect](): string {
    return this.text
  }
}

/** The runtime's version, reported by health and the CLI. Keep in step with package.json. */
export const VERSION = "0.1.0"

#!/usr/bin/env node
// In the repository (src/ present) run the TypeScript sources through tsx; installed, run the build.
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"

const src = fileURLToPath(new URL("../src/cli/main.ts", import.meta.url))
if (existsSync(src)) {
  const { register } = await import("tsx/esm/api")
  register()
  await import(src)
} else {
  await import("../dist/cli/main.js")
}

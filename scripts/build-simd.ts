/**
 * Assembles src/frames/simd/point.wat into src/frames/simd/pointKernel.ts (the module's bytes,
 * base64), so the runtime needs no assembler. test/frames/simd.test.ts checks the two agree.
 *
 *   npm run build:simd
 */
import { readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { assemble, kernelModuleSource } from "./simd.js"

const dir = fileURLToPath(new URL("../src/frames/simd/", import.meta.url))
const bytes = await assemble(readFileSync(`${dir}point.wat`, "utf8"))
writeFileSync(`${dir}pointKernel.ts`, kernelModuleSource(bytes))
console.log(`point.wat -> pointKernel.ts (${bytes.length} bytes of WebAssembly)`)

/**
 * Assembles src/frames/simd/nv12.wat into src/frames/simd/nv12Kernels.ts (the module's bytes,
 * base64), so the runtime needs no assembler. test/frames/simd.test.ts checks the two agree.
 *
 *   npm run build:simd
 */
import { readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { assemble, kernelModuleSource } from "./simd.js"

const dir = fileURLToPath(new URL("../src/frames/simd/", import.meta.url))
const bytes = await assemble(readFileSync(`${dir}nv12.wat`, "utf8"))
writeFileSync(`${dir}nv12Kernels.ts`, kernelModuleSource(bytes))
console.log(`nv12.wat -> nv12Kernels.ts (${bytes.length} bytes of WebAssembly)`)

/**
 * The baseline: a bare Node `net` server with the same framing, parsing each
 * request as JSON and answering a fixed response; no validation, no frame read.
 * Usage: tsx bench/servers/bare.ts SOCKET_PATH
 */
import * as fs from "node:fs"
import * as net from "node:net"
import { encodeMessage, FrameDecoder } from "../../src/contract/codec.js"

const socketPath = process.argv[2]!
fs.rmSync(socketPath, { force: true })
const reply = encodeMessage({ model_id: "bench", camera_id: "bench", frame_id: 0, detections: [], metadata: null, error: null })

const server = net.createServer((socket) => {
  const decoder = new FrameDecoder()
  socket.on("data", (chunk) => {
    for (const event of decoder.push(chunk)) {
      if (event._tag !== "Message") return socket.destroy()
      JSON.parse(Buffer.from(event.payload).toString("utf8"))
      socket.write(reply)
    }
  })
  socket.on("error", () => {})
})
server.listen({ path: socketPath, backlog: 511 }, () => process.stdout.write("ready\n"))
process.on("SIGTERM", () => server.close(() => process.exit(0)))

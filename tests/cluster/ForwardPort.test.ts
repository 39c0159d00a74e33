import { assert, describe, it } from "@effect/vitest"
import { connect, type Socket } from "node:net"
import { linkKey } from "../../src/cluster/Frames.ts"
import { handshakeMillis, listen, type ForwardListener } from "../../src/cluster/ForwardServer.ts"

const key = linkKey(new TextEncoder().encode("forward port test secret, long enough"))

const open = (address: string): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const colon = address.lastIndexOf(":")
    const socket = connect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)) })
    socket.once("connect", () => resolve(socket))
    // Read (and drop) what the node sends, so its hang-up is seen.
    socket.resume()
    socket.once("error", reject)
  })

const closed = (socket: Socket) => new Promise<void>((resolve) => socket.once("close", () => resolve()))

/** Buffers outside the JS heap (where socket data lands) plus the heap. */
const bufferedBytes = () => {
  const usage = process.memoryUsage()
  return usage.arrayBuffers + usage.heapUsed
}

const withListener = async (run: (listener: ForwardListener) => Promise<void>) => {
  const listener = await listen("127.0.0.1", 0, key, () => {})
  try {
    await run(listener)
  } finally {
    await listener.close()
  }
}

describe("forward port: what a stranger costs", () => {
  it(
    "four sockets announcing 64 MB frames are cut off at the header, leaving memory within a few MB",
    () =>
      withListener(async (listener) => {
        const before = bufferedBytes()
        const chunk = Buffer.alloc(1024 * 1024)
        const header = Buffer.alloc(4)
        header.writeUInt32BE(64 * 1024 * 1024, 0)
        const strangers = await Promise.all([1, 2, 3, 4].map(() => open(listener.address)))
        let sent = 0
        const done = strangers.map(async (socket) => {
          const ended = closed(socket)
          socket.on("error", () => {})
          socket.write(header)
          // 16 MB each, as fast as the node takes it, unless it hangs up first.
          for (let i = 0; i < 16 && !socket.destroyed; i++) {
            if (!socket.write(chunk)) await Promise.race([new Promise((r) => socket.once("drain", r)), ended])
            sent += chunk.length
          }
          await ended
        })
        await Promise.race([
          Promise.all(done),
          new Promise((_, reject) => setTimeout(() => reject(new Error("strangers not cut off")), 5_000))
        ])
        const grown = bufferedBytes() - before
        assert.isBelow(grown, 4 * 1024 * 1024, `memory grew by ${grown} bytes after ${sent} bytes sent`)
      }),
    20_000
  )

  it(
    "a silent socket is closed after the handshake timeout",
    () =>
      withListener(async (listener) => {
        const socket = await open(listener.address)
        const opened = Date.now()
        await closed(socket)
        const after = Date.now() - opened
        assert.isAtLeast(after, handshakeMillis - 200)
        assert.isBelow(after, handshakeMillis + 2_000)
      }),
    20_000
  )
})

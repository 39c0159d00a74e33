import { Exit } from "effect"
import { createServer, type AddressInfo, type Server, type Socket } from "node:net"
import type { SaleId, UserId } from "../domain/Ids.ts"
import {
  decodeRequests,
  encodeFrame,
  encodeFrames,
  FrameReader,
  handshakeFrameBytes,
  maxFrameBytes,
  newChallenge,
  proves,
  type ReplyCode
} from "./Frames.ts"

/** A connection that has not proven the cluster's key within this is closed. */
export const handshakeMillis = 3_000

/** Where a connection's answers go: `send` once per request id, in any order. */
export interface Replies {
  readonly send: (requestId: number, code: ReplyCode, value: string | number | null) => void
}

/**
 * Decides one forwarded purchase and answers it exactly once through `replies`; `trace` is a
 * traced purchase's trace id and the sender's span id.
 */
export type ForwardHandler = (
  saleId: SaleId,
  userId: UserId,
  requestId: number,
  replies: Replies,
  trace?: readonly [traceId: string, spanId: string]
) => void

export interface ForwardListener {
  /** host:port other nodes connect to. */
  readonly address: string
  readonly close: () => Promise<void>
}

/**
 * Takes forwarded purchases from other nodes that prove they hold `key` (see Frames). Each
 * connection's answers are collected and written as one frame per turn of the event loop, so
 * a batch in gives a batch out.
 */
export const listen = (
  host: string,
  port: number,
  key: Uint8Array,
  handle: ForwardHandler
): Promise<ForwardListener> =>
  new Promise((resolve, reject) => {
    const sockets = new Set<Socket>()
    const server: Server = createServer({ noDelay: true }, (socket) => {
      sockets.add(socket)
      let pending: Array<unknown> = []
      let flushing = false
      const flush = () => {
        flushing = false
        if (pending.length === 0 || socket.destroyed) return
        const frame = encodeFrames(pending)
        pending = []
        socket.write(frame)
      }
      const replies: Replies = {
        send: (requestId, code, value) => {
          pending.push([requestId, code, value])
          if (!flushing) {
            flushing = true
            setImmediate(flush)
          }
        }
      }
      const challenge = newChallenge()
      let proven = false
      socket.write(encodeFrame([challenge]))
      // A stranger gets a kilobyte of buffer and a few seconds to prove the key, no more.
      socket.setTimeout(handshakeMillis, () => {
        if (!proven) socket.destroy()
      })
      const reader = new FrameReader((messages) => {
        if (!proven) {
          // Every frame before a valid proof is refused, however many arrived in one chunk.
          if (socket.destroyed || !proves(key, challenge, messages[0])) return void socket.destroy()
          proven = true
          socket.setTimeout(0)
          reader.limit = maxFrameBytes
          socket.write(encodeFrame([true]))
          return
        }
        const requests = decodeRequests(messages)
        if (Exit.isFailure(requests)) return void socket.destroy()
        for (const [requestId, saleId, userId, traceId, spanId] of requests.value)
          handle(
            saleId,
            userId,
            requestId,
            replies,
            traceId === undefined || spanId === undefined ? undefined : [traceId, spanId]
          )
      }, handshakeFrameBytes)
      socket.on("data", (chunk: Buffer) => {
        try {
          reader.push(chunk)
        } catch {
          socket.destroy()
        }
      })
      socket.on("error", () => socket.destroy())
      socket.on("close", () => sockets.delete(socket))
    })
    server.once("error", reject)
    server.listen(port, host, () => {
      const bound = server.address() as AddressInfo
      resolve({
        address: `${host}:${bound.port}`,
        close: () =>
          new Promise<void>((closed) => {
            server.close(() => closed())
            for (const socket of sockets) socket.end()
            // A peer that does not hang up in time is cut off.
            setTimeout(() => {
              for (const socket of sockets) socket.destroy()
            }, 1_000).unref()
          })
      })
    })
  })

import { Effect, Queue } from "effect"
import { createServer, type IncomingHttpHeaders } from "node:http"
import type { AddressInfo } from "node:net"

/** One request the receiver got: what a node's webhook endpoint would see. */
export interface Delivery {
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
  /** This request's number, from 1, over the receiver's life. */
  readonly attempt: number
  /** The status it was answered with. */
  readonly status: number
}

/**
 * A stand-in for the node's webhook endpoint, on a free loopback port: every request is kept,
 * in order, on `deliveries`, and answered with the status `answer` gives for its number (200
 * by default), so a test can refuse the first few and watch the sender retry.
 */
export const webhookReceiver = (answer: (attempt: number) => number = () => 200) =>
  Effect.gen(function* () {
    const deliveries = yield* Queue.unbounded<Delivery>()
    let attempts = 0
    const server = createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        attempts += 1
        const status = answer(attempts)
        Queue.offerUnsafe(deliveries, {
          headers: request.headers,
          body: Buffer.concat(chunks),
          attempt: attempts,
          status
        })
        response.writeHead(status, { "content-type": "text/plain" })
        response.end(status < 300 ? "ok" : "not now")
      })
    })
    yield* Effect.acquireRelease(
      Effect.callback<void>((resume) => {
        server.listen(0, "127.0.0.1", () => resume(Effect.void))
      }),
      () =>
        Effect.callback<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const { port } = server.address() as AddressInfo
    return {
      url: `http://127.0.0.1:${port}/api/payments/webhook`,
      deliveries,
      /** The next request, waited for at most 10 seconds. */
      next: Queue.take(deliveries).pipe(Effect.timeout("10 seconds"), Effect.orDie),
      /** How many requests arrived so far. */
      count: () => attempts
    }
  })

import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import type { UserId } from "../../src/domain/Ids.ts"
import { load } from "../../bench/load.ts"

/**
 * A server that knows the buyers by their tokens: even buyers get 201 with an order id that
 * names them, odd buyers 409. Echoes x-request-id, as a MinCommerce node does.
 */
const buyersServer = Effect.acquireRelease(
  Effect.promise(
    () =>
      new Promise<{ readonly url: string; readonly close: () => void; readonly seen: Map<string, number> }>(
        (ready) => {
          const seen = new Map<string, number>()
          const server = createServer((request, response) => {
            request.resume()
            const token = (request.headers.authorization ?? "").slice("Bearer ".length)
            seen.set(token, (seen.get(token) ?? 0) + 1)
            const buyer = Number(token.slice("token-".length))
            const headers = {
              "content-type": "application/json",
              "x-request-id": String(request.headers["x-request-id"])
            }
            if (buyer % 2 === 0) {
              response.writeHead(201, headers)
              response.end(JSON.stringify({ orderId: `order-of-${buyer}`, status: "purchased" }))
            } else {
              response.writeHead(409, headers)
              response.end('{"error":{"code":"sold_out","message":"Every unit is sold"}}')
            }
          })
          server.listen(0, "127.0.0.1", () =>
            ready({
              url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
              close: () => server.close(),
              seen
            })
          )
        }
      )
  ),
  (server) => Effect.sync(server.close)
)

describe("load (wrk)", () => {
  it.live(
    "matches every answer to its buyer, counts answers by status, and sends each buyer once while buyers last",
    () =>
      Effect.gen(function* () {
        const server = yield* buyersServer
        const buyers = 400_000
        const tokens = Array.from({ length: buyers }, (_, i) => `token-${i}`)
        const users = Array.from({ length: buyers }, (_, i) => `user-${i}` as UserId)
        const phase = yield* load({
          urls: [server.url],
          connections: 8,
          seconds: 1,
          tokens,
          users,
          record: true
        })

        assert.isAbove(phase.requests, 100)
        const answered = Object.entries(phase.outcomes)
          .filter(([status]) => status !== "errors")
          .reduce((sum, [, n]) => sum + n, 0)
        // wrk's total may include requests cut off at the end, never fewer than answered.
        assert.isAtLeast(phase.requests, answered)
        assert.strictEqual(phase.outcomes["201"], phase.confirmed.size)
        assert.strictEqual(phase.outcomes["409"], phase.refused.size)
        for (const [orderId, userId] of phase.confirmed)
          assert.strictEqual(orderId, `order-of-${userId.slice(5)}`)
        for (const userId of phase.refused) assert.strictEqual(Number(userId.slice(5)) % 2, 1)
        assert.strictEqual(phase.purchased, phase.confirmed.size)
        // Fewer requests than buyers: no buyer was sent twice.
        assert.isBelow(phase.requests, buyers)
        assert.deepStrictEqual([...new Set(server.seen.values())], [1])
        assert.isAbove(phase.generatorCpuPercent, 0)
      }).pipe(Effect.scoped),
    30_000
  )
})

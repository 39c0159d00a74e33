import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { createParser, type EventSourceMessage } from "eventsource-parser"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { SaleRegistry } from "../../src/actors/SaleRegistry.ts"
import { Ownership } from "../../src/cluster/Ownership.ts"
import { SaleRouter } from "../../src/cluster/SaleRouter.ts"
import { SaleWatch } from "../../src/cluster/SaleWatch.ts"
import { eventsRoute } from "../../src/http/SaleEvents.ts"
import type { LiveSettings } from "../../src/Settings.ts"
import { readRoute } from "../../src/http/SaleReadHandlers.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { OrderStore } from "../../src/storage/OrderStore.ts"
import { readEvents } from "../support/EventStream.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"
import { TestDatabase } from "../support/TestDatabase.ts"

const Node = SaleRouter.make().pipe(
  Layer.provideMerge(Ownership.local("raw-reads")),
  Layer.provideMerge(SaleRegistry.make({ mailboxCapacity: 1_000, maxBatchSize: 100, idleMillis: 60_000 })),
  Layer.provideMerge(Layer.mergeAll(Catalog.layer, OrderStore.layer)),
  Layer.provideMerge(TestDatabase.layer)
)

const defaults: LiveSettings = { maxWatchers: 100, writesPerSecond: 5_000, heartbeatSeconds: 30 }

/** The node:http routes alone; what they decline is answered 599, as the framework would take it. */
const served = (live: LiveSettings = defaults) =>
  Effect.gen(function* () {
    const watch = yield* SaleWatch
    const counted: Array<string> = []
    const headers = () => ({ "x-request-id": "raw" })
    const reads = readRoute(watch, {
      headers: () => ["x-request-id", "raw"],
      counted: (route, status) => counted.push(`${route} ${status}`)
    })
    const events = eventsRoute(watch, live, headers)
    const server: Server = yield* Effect.acquireRelease(
      Effect.promise(
        () =>
          new Promise<Server>((resolve) => {
            const s = createServer((request, response) => {
              if (reads(request, response) || events(request, response)) return
              response.writeHead(599)
              response.end()
            })
            s.listen(0, "127.0.0.1", () => resolve(s))
          })
      ),
      (s) =>
        Effect.promise(
          () =>
            new Promise<void>((resolve) => {
              s.closeAllConnections()
              s.close(() => resolve())
            })
        )
    )
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    return { url, counted, watch }
  })

const waitFor = async (done: () => boolean, millis = 5_000) => {
  const deadline = Date.now() + millis
  while (!done()) {
    if (Date.now() > deadline) throw new Error("timed out")
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe("public reads and events from node:http", () => {
  it.live(
    "answer from a fresh view with ETag and 304, and decline until the view is warm",
    () =>
      Effect.gen(function* () {
        const saleId = yield* makeSale(4, { startsAt: Date.now() - 86_400_000 })
        const { url, counted, watch } = yield* served()
        const get = (path: string, headers: Record<string, string> = {}) =>
          Effect.promise(async () => {
            const response = await fetch(`${url}${path}`, { headers })
            return { status: response.status, headers: response.headers, text: await response.text() }
          })
        // Nothing known yet: the framework's route would read it.
        assert.strictEqual((yield* get("/api/flash-sale/status")).status, 599)
        assert.strictEqual((yield* get(`/api/sales/${saleId}`)).status, 599)
        yield* watch.current
        yield* watch.sale(saleId)
        const status = yield* get("/api/flash-sale/status")
        assert.strictEqual(status.status, 200)
        assert.strictEqual(status.headers.get("x-request-id"), "raw")
        assert.match(status.headers.get("cache-control") ?? "", /^public, max-age=1/)
        assert.deepStrictEqual(
          (({ saleId: id, status: s, total, remaining }) => ({ id, s, total, remaining }))(
            JSON.parse(status.text)
          ),
          { id: saleId, s: "active", total: 4, remaining: 4 }
        )
        const again = yield* get("/api/flash-sale/status", { "if-none-match": status.headers.get("etag")! })
        assert.strictEqual(again.status, 304)
        const stats = JSON.parse((yield* get("/api/flash-sale/stats")).text)
        assert.deepStrictEqual([stats.sold, stats.remaining], [0, 4])
        assert.strictEqual((yield* get(`/api/sales/${saleId}`)).status, 200)
        assert.includeMembers(counted, ["/api/flash-sale/status 200", "/api/flash-sale/status 304"])
        // A CORS request and a malformed id go to the framework.
        assert.strictEqual(
          (yield* get("/api/flash-sale/status", { origin: "https://shop.example" })).status,
          599
        )
        assert.strictEqual((yield* get("/api/sales/not-a-uuid")).status, 599)
      }).pipe(Effect.provide(Node)),
    60_000
  )

  it.live(
    "stream a sale's changes to a watcher held by its response alone",
    () =>
      Effect.gen(function* () {
        const saleId = yield* makeSale(2)
        const [first, second] = yield* makeUsers(2)
        const { url, watch } = yield* served()
        const router = yield* SaleRouter
        yield* watch.figures(saleId)
        const events: Array<EventSourceMessage> = []
        const abort = new AbortController()
        const response = yield* Effect.promise(() =>
          fetch(`${url}/api/sales/${saleId}/events`, { signal: abort.signal })
        )
        assert.strictEqual(response.status, 200)
        assert.match(response.headers.get("content-type") ?? "", /text\/event-stream/)
        const parser = createParser({ onEvent: (event) => events.push(event) })
        const reader = response.body!.getReader()
        const decoder = new TextDecoder()
        const reading = (async () => {
          try {
            while (!events.some((e) => JSON.parse(e.data).status === "sold_out")) {
              const chunk = await reader.read()
              if (chunk.done) return
              parser.feed(decoder.decode(chunk.value, { stream: true }))
            }
          } catch {
            // aborted
          }
        })()
        yield* router.purchase(saleId, first!)
        yield* router.purchase(saleId, second!)
        yield* Effect.promise(() =>
          Promise.race([reading, new Promise((resolve) => setTimeout(resolve, 5_000))])
        )
        abort.abort()
        const states = events.map((e) => JSON.parse(e.data) as { status: string; remaining: number })
        assert.deepStrictEqual(states[0], { saleId, status: "active", total: 2, remaining: 2 } as never)
        assert.deepStrictEqual(states.at(-1), { saleId, status: "sold_out", total: 2, remaining: 0 } as never)
      }).pipe(Effect.provide(Node)),
    60_000
  )

  it.live(
    "a large audience gets a stream of changes as the write budget allows, a sell-out at once, and its heartbeats spread",
    () =>
      Effect.gen(function* () {
        const saleId = yield* makeSale(8)
        const users = yield* makeUsers(8)
        // One write a second for two watchers: after the first change, one event every 2 s.
        const { url, watch } = yield* served({ maxWatchers: 100, writesPerSecond: 1, heartbeatSeconds: 2 })
        const router = yield* SaleRouter
        yield* watch.figures(saleId)
        const abort = new AbortController()
        const listen = () =>
          Effect.promise(async () => {
            const response = await fetch(`${url}/api/sales/${saleId}/events`, { signal: abort.signal })
            const heard: Array<{
              readonly at: number
              readonly state?: { status: string; remaining: number }
            }> = []
            const parser = createParser({
              onEvent: (event) => heard.push({ at: Date.now(), state: JSON.parse(event.data) }),
              onComment: () => heard.push({ at: Date.now() })
            })
            readEvents(response.body!, (text) => parser.feed(text))
            return heard
          })
        const one = yield* listen()
        const two = yield* listen()
        const states = (heard: typeof one) => heard.flatMap((h) => (h.state === undefined ? [] : [h.state]))
        yield* Effect.promise(() => waitFor(() => states(one).length === 1 && states(two).length === 1))
        // The first change goes at once; four more, each pushed on its own, wait for the budget.
        yield* router.purchase(saleId, users[0]!)
        yield* Effect.promise(() => waitFor(() => states(one).length === 2))
        for (const user of users.slice(1, 5)) {
          yield* router.purchase(saleId, user)
          yield* Effect.sleep("150 millis")
        }
        assert.deepStrictEqual(
          states(one).map((s) => s.remaining),
          [8, 7],
          "the later changes wait for the budget"
        )
        // The last three sell the sale out: a change of status goes at once, whatever the budget.
        for (const user of users.slice(5)) yield* router.purchase(saleId, user)
        const soldAt = Date.now()
        yield* Effect.promise(() =>
          waitFor(() => [one, two].every((heard) => states(heard).at(-1)?.status === "sold_out"))
        )
        for (const heard of [one, two]) {
          const last = heard.filter((h) => h.state !== undefined).at(-1)!
          assert.isBelow(last.at - soldAt, 1_000, "the sell-out did not wait for the budget")
          assert.deepStrictEqual(states(heard).at(-1), {
            saleId,
            status: "sold_out",
            total: 8,
            remaining: 0
          } as never)
          assert.deepStrictEqual(
            states(heard).map((s) => s.remaining),
            [8, 7, 0]
          )
        }
        // Heartbeats: each watcher hears one every two seconds, the two in different seconds.
        const from = Date.now()
        yield* Effect.sleep("4500 millis")
        const beats = (heard: typeof one) => heard.filter((h) => h.state === undefined && h.at >= from)
        for (const heard of [one, two]) assert.includeMembers([2, 3], [beats(heard).length])
        const second = (at: number) => Math.floor((at - from) / 1_000) % 2
        assert.notStrictEqual(second(beats(one)[0]!.at), second(beats(two)[0]!.at), "spread over the period")
        abort.abort()
      }).pipe(Effect.provide(Node)),
    60_000
  )
})

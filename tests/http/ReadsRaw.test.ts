import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Scope } from "effect"
import { HttpServer, HttpServerResponse } from "effect/http"
import { createParser, type EventSourceMessage } from "eventsource-parser"
import { createServer, type Server } from "node:http"
import { connect, type AddressInfo, type Socket } from "node:net"
import { SaleRegistry } from "../../src/actors/SaleRegistry.ts"
import { Ownership } from "../../src/cluster/Ownership.ts"
import { SaleRouter } from "../../src/cluster/SaleRouter.ts"
import { SaleWatch } from "../../src/cluster/SaleWatch.ts"
import { holdsParser } from "../../src/http/HeldConnection.ts"
import * as NodeServer from "../../src/http/NodeServer.ts"
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
    // The server's side of every connection, as node:http holds it.
    const sockets: Array<Socket> = []
    const server: Server = yield* Effect.acquireRelease(
      Effect.promise(
        () =>
          new Promise<Server>((resolve) => {
            const s = createServer((request, response) => {
              if (reads(request, response) || events.route(request, response)) return
              response.writeHead(599)
              response.end()
            })
            s.on("connection", (socket: Socket) => sockets.push(socket))
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
    return { url, counted, watch, sockets }
  })

/** A watcher on a bare TCP connection: every byte it hears, and what it sends after its request. */
const rawWatcher = (url: string, path: string) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly heard: () => string; readonly socket: Socket; readonly ended: Promise<void> }>(
      (resume) => {
        const { hostname, port } = new URL(url)
        let heard = ""
        const socket = connect(Number(port), hostname, () =>
          resume(Effect.succeed({ heard: () => heard, socket, ended }))
        )
        const ended = new Promise<void>((done) => socket.on("end", done))
        socket.on("data", (chunk: Buffer) => (heard += chunk.toString()))
        socket.write(`GET ${path} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: keep-alive\r\n\r\n`)
      }
    ),
    ({ socket }) => Effect.sync(() => socket.destroy())
  )

const occurrences = (text: string, part: string) => text.split(part).length - 1

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

  it.live(
    "a watcher's connection lets go of node:http's parser, reads nothing more, and leaves its audience when it ends",
    () =>
      Effect.gen(function* () {
        const saleId = yield* makeSale(3)
        const [buyer] = yield* makeUsers(1)
        const { url, watch, sockets } = yield* served({ ...defaults, maxWatchers: 1 })
        const router = yield* SaleRouter
        yield* watch.figures(saleId)
        const path = `/api/sales/${saleId}/events`
        const watcher = yield* rawWatcher(url, path)
        yield* Effect.promise(() => waitFor(() => watcher.heard().includes('"remaining":3')))
        const held = sockets[0]!
        yield* Effect.promise(() => waitFor(() => !holdsParser(held)))
        assert.isFalse(held.destroyed)

        // Whatever the watcher sends now is dropped: a pipelined request gets no answer.
        watcher.socket.write(`GET /api/sales/${saleId} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
        // New connections (one may get the parser the watcher's let go) are answered as ever,
        // and the node's one watcher place is taken.
        const reads = yield* Effect.promise(() =>
          Promise.all(
            Array.from({ length: 20 }, () => fetch(`${url}/api/sales/${saleId}`).then((r) => r.status))
          )
        )
        assert.deepStrictEqual(
          reads,
          Array.from({ length: 20 }, () => 200)
        )
        assert.strictEqual((yield* Effect.promise(() => fetch(`${url}${path}`))).status, 599)

        yield* router.purchase(saleId, buyer!)
        yield* Effect.promise(() => waitFor(() => watcher.heard().includes('"remaining":2')))
        assert.strictEqual(occurrences(watcher.heard(), "HTTP/1.1 "), 1, "one answer on the connection")

        // A watcher that ends its side is let go, and its place is free again.
        watcher.socket.end()
        yield* Effect.promise(() => waitFor(() => held.destroyed))
        const again = yield* Effect.promise(async () => {
          const abort = new AbortController()
          const response = await fetch(`${url}${path}`, { signal: abort.signal })
          abort.abort()
          return response.status
        })
        assert.strictEqual(again, 200)
      }).pipe(Effect.provide(Node)),
    60_000
  )

  it.live(
    "the node's stop ends every live stream at once, and the server closes without waiting for them",
    () =>
      Effect.gen(function* () {
        const saleId = yield* makeSale(2)
        const watch = yield* SaleWatch
        yield* watch.figures(saleId)
        const events = eventsRoute(watch, defaults, () => ({}))
        const served = HttpServer.serve(Effect.succeed(HttpServerResponse.empty({ status: 599 }))).pipe(
          Layer.provideMerge(
            NodeServer.layer({
              route: events.route,
              listen: { port: 0, host: "127.0.0.1" },
              stopping: events.endAll
            })
          )
        )
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(served, scope)
        const url = yield* HttpServer.addressFormattedWith(Effect.succeed).pipe(
          Effect.provideContext(context)
        )
        const watchers = yield* Effect.forEach([1, 2, 3], () =>
          rawWatcher(url, `/api/sales/${saleId}/events`)
        )
        yield* Effect.promise(() => waitFor(() => watchers.every((w) => w.heard().includes('"remaining":2'))))
        const stoppedAt = Date.now()
        yield* Scope.close(scope, Exit.void)
        // The graceful wait is 20 s: a stream left open would hold the stop that long.
        assert.isBelow(Date.now() - stoppedAt, 5_000)
        yield* Effect.promise(() => Promise.all(watchers.map((w) => w.ended)))
      }).pipe(Effect.provide(Node)),
    60_000
  )
})

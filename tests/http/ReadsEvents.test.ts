import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { createParser, type EventSourceMessage } from "eventsource-parser"
import { SaleRouter } from "../../src/cluster/SaleRouter.ts"
import { ApiNode, baseUrl } from "../support/ApiNode.ts"
import { readEvents } from "../support/EventStream.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"

// Read when the node's layers are built: three watchers at most on this test's node.
process.env.MAX_WATCHERS = "3"

interface Watcher {
  readonly status: number
  readonly headers: Headers
  readonly events: Array<EventSourceMessage>
  /** Resolves once an event satisfies `wanted`. */
  readonly until: (wanted: (event: EventSourceMessage) => boolean) => Promise<EventSourceMessage>
  readonly close: () => void
}

const watch = (url: string, headers: Record<string, string> = {}): Promise<Watcher> =>
  fetch(url, { headers }).then((response) => {
    const events: Array<EventSourceMessage> = []
    const waiting: Array<() => void> = []
    const abort = new AbortController()
    const parser = createParser({
      onEvent: (event) => {
        events.push(event)
        for (const wake of waiting.splice(0)) wake()
      }
    })
    if (response.status === 200 && response.body !== null) {
      const cancel = readEvents(response.body, (text) => parser.feed(text))
      abort.signal.addEventListener("abort", cancel)
    }
    const until = async (wanted: (event: EventSourceMessage) => boolean) => {
      const deadline = Date.now() + 5_000
      while (Date.now() < deadline) {
        const found = events.find(wanted)
        if (found !== undefined) return found
        await new Promise<void>((resolve) => {
          waiting.push(resolve)
          setTimeout(resolve, 100)
        })
      }
      throw new Error(`no such event among ${JSON.stringify(events)}`)
    }
    return { status: response.status, headers: response.headers, events, until, close: () => abort.abort() }
  })

const data = (event: EventSourceMessage) =>
  JSON.parse(event.data) as { saleId: string; status: string; total: number; remaining: number }

layer(ApiNode, { timeout: 120_000, excludeTestServices: true })("live sale events", (it) => {
  it.effect(
    "every watcher gets the same event per change, with the storefront's shape, ids and Last-Event-ID",
    () =>
      Effect.gen(function* () {
        const saleId = yield* makeSale(3)
        const router = yield* SaleRouter
        const users = yield* makeUsers(3)
        const url = `${yield* baseUrl}/api/sales/${saleId}/events`
        const [one, two] = yield* Effect.promise(() => Promise.all([watch(url), watch(url)]))
        assert.strictEqual(one!.status, 200)
        assert.match(one!.headers.get("content-type") ?? "", /text\/event-stream/)
        const first = yield* Effect.promise(() => one!.until((e) => e.event === "sale"))
        assert.deepStrictEqual(data(first), { saleId, status: "active", total: 3, remaining: 3 })
        assert.isString(first.id)

        for (const user of users) yield* router.purchase(saleId, user)
        const [soldOutOne, soldOutTwo] = yield* Effect.promise(() =>
          Promise.all([one!, two!].map((w) => w.until((e) => data(e).status === "sold_out")))
        )
        // One serialisation: both watchers got the same id and bytes for the same state.
        assert.strictEqual(soldOutOne!.id, soldOutTwo!.id)
        assert.strictEqual(soldOutOne!.data, soldOutTwo!.data)
        // Coalesced: at most one event per 100 ms, and never two alike in a row.
        const states = one!.events.map((e) => e.data)
        assert.isTrue(states.every((state, i) => i === 0 || state !== states[i - 1]))
        one!.close()
        two!.close()

        // A reconnect naming the last id it saw gets nothing until the next change.
        const back = yield* Effect.promise(() => watch(url, { "last-event-id": soldOutOne!.id! }))
        yield* Effect.sleep("300 millis")
        assert.strictEqual(back.events.length, 0)
        back.close()
        // One with an older id gets the current state at once.
        const behind = yield* Effect.promise(() => watch(url, { "last-event-id": first.id! }))
        const caughtUp = yield* Effect.promise(() => behind.until((e) => e.event === "sale"))
        assert.strictEqual(data(caughtUp).status, "sold_out")
        behind.close()
      })
  )

  it.effect("beyond the node's watcher limit: 503 with Retry-After", () =>
    Effect.gen(function* () {
      const saleId = yield* makeSale(3)
      const url = `${yield* baseUrl}/api/sales/${saleId}/events`
      // Watchers of the test before may take a moment to be let go.
      yield* Effect.sleep("300 millis")
      const admitted = yield* Effect.promise(() => Promise.all([watch(url), watch(url), watch(url)]))
      assert.deepStrictEqual(
        admitted.map((w) => w.status),
        [200, 200, 200]
      )
      yield* Effect.promise(() => Promise.all(admitted.map((w) => w.until((e) => e.event === "sale"))))
      const refused = yield* Effect.promise(() => fetch(url))
      assert.strictEqual(refused.status, 503)
      assert.strictEqual(refused.headers.get("retry-after"), "5")
      assert.strictEqual(
        ((yield* Effect.promise(() => refused.json())) as { error: { code: string } }).error.code,
        "overloaded"
      )
      for (const w of admitted) w.close()
      // Once one leaves, a newcomer is taken again.
      const again = yield* Effect.promise(async () => {
        for (let i = 0; i < 50; i++) {
          const w = await watch(url)
          if (w.status === 200) return w
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
        throw new Error("never admitted again")
      })
      again.close()
    })
  )
})

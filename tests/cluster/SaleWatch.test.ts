import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Stream } from "effect"
import { SaleRegistry } from "../../src/actors/SaleRegistry.ts"
import { Ownership } from "../../src/cluster/Ownership.ts"
import { SaleRouter } from "../../src/cluster/SaleRouter.ts"
import { SaleWatch, type SaleSnapshot } from "../../src/cluster/SaleWatch.ts"
import { SqlClient } from "effect/sql"
import { Catalog } from "../../src/storage/Catalog.ts"
import { OrderStore } from "../../src/storage/OrderStore.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"
import { TestDatabase } from "../support/TestDatabase.ts"

/** One node alone: its router, registry and watch over a fresh database. */
const Node = SaleRouter.make().pipe(
  Layer.provideMerge(Ownership.local("watch-test")),
  Layer.provideMerge(SaleRegistry.make({ mailboxCapacity: 1_000, maxBatchSize: 100, idleMillis: 60_000 })),
  Layer.provideMerge(Layer.mergeAll(Catalog.layer, OrderStore.layer)),
  Layer.provideMerge(TestDatabase.layer)
)

/** Collects `count` values in the background, once the first one (the current state) is in. */
const collect = (stream: Stream.Stream<SaleSnapshot, unknown>, count: number) =>
  Effect.gen(function* () {
    const subscribed = yield* Deferred.make<void>()
    const fiber = yield* Effect.forkChild(
      Stream.runCollect(
        Stream.take(
          Stream.tap(stream, () => Deferred.succeed(subscribed, undefined)),
          count
        )
      )
    )
    yield* Deferred.await(subscribed)
    return fiber
  })

describe("SaleWatch", () => {
  it.live(
    "pushes the current state, then each sale the actor commits, down to sold out",
    () =>
      Effect.gen(function* () {
        const router = yield* SaleRouter
        const watch = yield* SaleWatch
        const saleId = yield* makeSale(3)
        const users = yield* makeUsers(3)
        // The first purchase starts the actor here; from then on its figures are pushed.
        assert.strictEqual((yield* router.purchase(saleId, users[0]!))._tag, "Accepted")
        // The answer follows the COMMIT; the figures follow the decider's turn on that commit.
        yield* Stream.runDrain(Stream.takeUntil(watch.changes(saleId), (s) => s.remaining === 2))
        const seen = yield* collect(watch.changes(saleId), 3)
        for (const user of users.slice(1)) yield* router.purchase(saleId, user)
        const snapshots = yield* Fiber.join(seen)
        assert.deepStrictEqual(
          snapshots.map((s) => [s.status, s.remaining]),
          [
            ["active", 2],
            ["active", 1],
            ["sold_out", 0]
          ]
        )
        assert.deepStrictEqual(yield* watch.snapshot(saleId), {
          saleId,
          status: "sold_out",
          total: 3,
          remaining: 0,
          draw: undefined
        })
      }).pipe(Effect.provide(Node)),
    30_000
  )

  it.live(
    "publishes only committed figures: every unit a change shows sold has its order row",
    () =>
      Effect.gen(function* () {
        const router = yield* SaleRouter
        const watch = yield* SaleWatch
        const sql = yield* SqlClient.SqlClient
        const total = 40
        const saleId = yield* makeSale(total)
        const users = yield* makeUsers(120)
        assert.strictEqual((yield* router.purchase(saleId, users[0]!))._tag, "Accepted")
        const checks: Array<readonly [shown: number, rows: number]> = []
        const watching = yield* Effect.forkChild(
          Stream.runForEach(
            Stream.takeUntil(watch.changes(saleId), (s) => s.remaining === 0),
            (snapshot) =>
              Effect.gen(function* () {
                const [row] = yield* sql<{ n: number }>`
                  SELECT count(*)::int AS n FROM orders WHERE sale_id = ${saleId}`
                checks.push([total - snapshot.remaining, row?.n ?? 0])
              })
          )
        )
        // Everyone at once: decided in chunks, committed in overlapping batches.
        const answers = yield* Effect.forEach(users.slice(1), (user) => router.purchase(saleId, user), {
          concurrency: "unbounded"
        })
        yield* Fiber.join(watching)
        assert.isAbove(checks.length, 1)
        for (const [shown, rows] of checks) assert.isAtMost(shown, rows)
        const [orders] = yield* sql<{
          n: number
        }>`SELECT count(*)::int AS n FROM orders WHERE sale_id = ${saleId}`
        assert.strictEqual(orders?.n, total)
        assert.strictEqual(answers.filter((a) => a._tag === "Accepted").length, total - 1)
      }).pipe(Effect.provide(Node)),
    30_000
  )

  it.live(
    "tells a change the clock makes (upcoming → active) without any purchase",
    () =>
      Effect.gen(function* () {
        const watch = yield* SaleWatch
        const startsAt = Date.now() + 400
        const saleId = yield* makeSale(5, { startsAt, endsAt: startsAt + 60_000 })
        // Nobody bought: no actor runs, the stock row is the source.
        const snapshots = yield* Stream.runCollect(Stream.take(watch.changes(saleId), 2))
        assert.deepStrictEqual(
          snapshots.map((s) => s.status),
          ["upcoming", "active"]
        )
        assert.isAtLeast(Date.now(), startsAt)
      }).pipe(Effect.provide(Node)),
    30_000
  )

  it.live(
    "an unknown sale is SaleNotFound, for a snapshot and for changes",
    () =>
      Effect.gen(function* () {
        const watch = yield* SaleWatch
        const missing = "0190a6a4-5b6c-7d8e-9f00-112233445566" as never
        const snapshot = yield* Effect.flip(watch.snapshot(missing))
        assert.strictEqual(snapshot._tag, "SaleNotFound")
        const changes = yield* Effect.flip(Stream.runCollect(watch.changes(missing)))
        assert.strictEqual(changes._tag, "SaleNotFound")
      }).pipe(Effect.provide(Node)),
    30_000
  )
})

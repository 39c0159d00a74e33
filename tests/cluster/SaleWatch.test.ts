import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Stream } from "effect"
import { SaleRegistry } from "../../src/actors/SaleRegistry.ts"
import { Ownership } from "../../src/cluster/Ownership.ts"
import { SaleRouter } from "../../src/cluster/SaleRouter.ts"
import { SaleWatch, type SaleSnapshot } from "../../src/cluster/SaleWatch.ts"
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

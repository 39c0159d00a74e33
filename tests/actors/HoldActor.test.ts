import { assert, layer } from "@effect/vitest"
import { Effect, Layer, Schedule } from "effect"
import { SqlClient } from "effect/sql"
import { SaleRegistry, type RegistryOptions } from "../../src/actors/SaleRegistry.ts"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import { awaitReply, type Refusal } from "../../src/domain/Reply.ts"
import { Audit, checkInvariants, violations } from "../../src/storage/Audit.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { OrderStore } from "../../src/storage/OrderStore.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"
import { TestDatabase, testDatabaseMode } from "../support/TestDatabase.ts"

const options: RegistryOptions = { mailboxCapacity: 1_000, maxBatchSize: 100, idleMillis: 60_000 }

const purchase = (saleId: SaleId, userId: UserId) =>
  Effect.gen(function* () {
    const actor = yield* (yield* SaleRegistry).actor(saleId)
    return yield* awaitReply<Refusal>((reply) => actor.offer(userId, reply))
  })

const statusOf = (orderId: OrderId) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ status: string }>`SELECT status FROM orders WHERE id = ${orderId}`
    return rows[0]?.status
  })

const Storage = Layer.mergeAll(Catalog.layer, OrderStore.layer, Audit.layer).pipe(
  Layer.provideMerge(TestDatabase.layer)
)

layer(Storage, { timeout: 60_000, excludeTestServices: true })(
  `holds through the sale actor on ${testDatabaseMode} PostgreSQL`,
  (it) => {
    it.effect("expires an unpaid hold at its deadline and sells the unit again, once", () =>
      Effect.gen(function* () {
        const [first, second] = yield* makeUsers(2)
        const saleId = yield* makeSale(1, { holdSeconds: 1 })
        const held = yield* purchase(saleId, first!)
        assert.strictEqual(held._tag, "Accepted")
        const heldId = (held as { readonly orderId: OrderId }).orderId
        assert.strictEqual(yield* statusOf(heldId), "reserved")
        assert.strictEqual((yield* purchase(saleId, second!))._tag, "SoldOut")
        // The owner's one timer expires the hold; until then the unit stays taken.
        const resold = yield* purchase(saleId, second!).pipe(
          Effect.flatMap((outcome) =>
            outcome._tag === "Accepted" ? Effect.succeed(outcome) : Effect.fail(outcome)
          ),
          Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo({ duration: "5 seconds" })))
        )
        assert.strictEqual(yield* statusOf(heldId), "expired")
        assert.strictEqual(yield* statusOf(resold.orderId), "reserved")
        // One unit per buyer per sale: the lapsed buyer is told their order again.
        assert.deepStrictEqual(yield* purchase(saleId, first!), {
          _tag: "AlreadyPurchased",
          orderId: heldId,
          lapsed: true
        })
        // A new owner loads the pending hold and resumes its deadline.
        const { snapshot } = yield* (yield* OrderStore)
          .load(saleId)
          .pipe(Effect.map((snapshot) => ({ snapshot })))
        assert.strictEqual(snapshot.holdMillis, 1_000)
        assert.deepStrictEqual(
          snapshot.pendingHolds?.map((h) => h.orderId),
          [resold.orderId]
        )
        assert.deepStrictEqual([...(snapshot.lapsed ?? new Map()).entries()], [[first!, heldId]])
        const sql = yield* SqlClient.SqlClient
        const stock = yield* sql<{
          available: number
        }>`SELECT available FROM stocks WHERE sale_id = ${saleId}`
        assert.strictEqual(stock[0]?.available, 0)
        // I1 on the rows: the live orders (reserved + paid) are within the stock, one per buyer,
        // and the stock row agrees; the expired order holds nothing.
        const confirmed = new Map([[resold.orderId, second!]])
        const report = checkInvariants(yield* (yield* Audit).read(saleId), confirmed)
        assert.strictEqual(violations(report), 0)
        assert.strictEqual(report.committed, 1)
      }).pipe(Effect.provide(SaleRegistry.make(options)))
    )

    it.effect("lets a fenced owner expire nothing, and a new owner resume the deadline it loads", () =>
      Effect.gen(function* () {
        const registry = yield* SaleRegistry
        const [buyer] = yield* makeUsers(1)
        const saleId = yield* makeSale(1, { holdSeconds: 1 })
        const held = yield* purchase(saleId, buyer!)
        assert.strictEqual(held._tag, "Accepted")
        const heldId = (held as { readonly orderId: OrderId }).orderId
        const stale = yield* registry.actor(saleId)
        // Another owner claims the sale: the first one's timer fires, its expiry is fenced.
        yield* (yield* OrderStore).claim(saleId)
        assert.strictEqual(yield* stale.stopped, "fenced")
        assert.strictEqual(yield* statusOf(heldId), "reserved")
        // A new owner loads the overdue hold and expires it on its own timer, with no purchase
        // to wake it.
        yield* registry.stop(saleId)
        yield* registry.actor(saleId)
        const expired = yield* statusOf(heldId).pipe(
          Effect.flatMap((status) => (status === "expired" ? Effect.succeed(status) : Effect.fail(status))),
          Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo({ duration: "5 seconds" })))
        )
        assert.strictEqual(expired, "expired")
        const sql = yield* SqlClient.SqlClient
        const stock = yield* sql<{
          available: number
        }>`SELECT available FROM stocks WHERE sale_id = ${saleId}`
        assert.strictEqual(stock[0]?.available, 1)
      }).pipe(Effect.provide(SaleRegistry.make(options)))
    )

    it.effect("keeps a sale without holds final", () =>
      Effect.gen(function* () {
        const [buyer] = yield* makeUsers(1)
        const saleId = yield* makeSale(1)
        const outcome = yield* purchase(saleId, buyer!)
        assert.isTrue(outcome._tag === "Accepted")
        assert.strictEqual(yield* statusOf((outcome as { readonly orderId: OrderId }).orderId), "paid")
      }).pipe(Effect.provide(SaleRegistry.make(options)))
    )
  }
)

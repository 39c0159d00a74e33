import { assert, layer } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import { Audit } from "../../src/storage/Audit.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { OrderStore } from "../../src/storage/OrderStore.ts"
import { Sales } from "../../src/storage/Sales.ts"
import { Users } from "../../src/storage/Users.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"
import { TestDatabase, testDatabaseMode } from "../support/TestDatabase.ts"

const Storage = Layer.mergeAll(Catalog.layer, OrderStore.layer, Audit.layer).pipe(
  Layer.provideMerge(TestDatabase.layer)
)

const newOrder = (userId: UserId) => ({ orderId: crypto.randomUUID() as OrderId, userId, at: Date.now() })

/** A batch refused as stale left nothing: no order, no audit record, the stock untouched. */
const assertFencedCleanly = (exit: Exit.Exit<unknown, unknown>, saleId: SaleId, stock: number) =>
  Effect.gen(function* () {
    assert.isTrue(Exit.isFailure(exit))
    if (Exit.isFailure(exit)) {
      const error = Cause.findErrorOption(exit.cause)
      assert.strictEqual(
        error._tag === "Some" ? (error.value as { readonly _tag?: string })._tag : "none",
        "StaleEpoch"
      )
    }
    const record = yield* Effect.flatMap(Audit, (audit) => audit.read(saleId))
    assert.strictEqual(record.orders.size, 0)
    assert.strictEqual(record.available, stock)
    const outcomes = yield* Effect.flatMap(Audit, (audit) => audit.outcomes(saleId))
    assert.deepStrictEqual(outcomes, {})
  })

layer(Storage, { timeout: 60_000, excludeTestServices: true })(
  `order store on ${testDatabaseMode} PostgreSQL`,
  (it) => {
    it.effect("commits a batch in one transaction: orders, stock, attempts, sell-out time", () =>
      Effect.gen(function* () {
        const store = yield* OrderStore
        const audit = yield* Audit
        const sql = yield* SqlClient.SqlClient
        const users = yield* makeUsers(3)
        const saleId = yield* makeSale(2)
        const { epoch } = yield* store.claim(saleId)
        const orders = users.slice(0, 2).map(newOrder)
        const receipt = yield* store.commit({
          batchId: crypto.randomUUID(),
          saleId,
          epoch,
          orders,
          attempts: orders.map((o) => ({ userId: o.userId, outcome: "accepted", at: o.at })),
          refusals: [{ outcome: "sold_out", count: 1, firstAt: Date.now(), lastAt: Date.now() }]
        })
        assert.deepStrictEqual([...receipt.orderIds].sort(), orders.map((o) => o.orderId).sort())
        const record = yield* audit.read(saleId)
        assert.strictEqual(record.available, 0)
        assert.deepStrictEqual(
          [...record.orders.entries()].sort(),
          orders.map((o) => [o.orderId, o.userId] as [OrderId, UserId]).sort()
        )
        assert.deepStrictEqual(yield* audit.outcomes(saleId), { accepted: 2, sold_out: 1 })
        const sale = yield* sql<{ soldOut: boolean }>`
          SELECT sold_out_at IS NOT NULL AS "soldOut" FROM flash_sales WHERE id = ${saleId}`
        assert.isTrue(sale[0]!.soldOut)
      })
    )

    it.effect("rolls a whole batch back when one order breaks a constraint", () =>
      Effect.gen(function* () {
        const store = yield* OrderStore
        const audit = yield* Audit
        const [buyer] = yield* makeUsers(1)
        const saleId = yield* makeSale(5)
        const { epoch } = yield* store.claim(saleId)
        // The same buyer twice: UNIQUE (sale_id, user_id) is the backstop for I2.
        const exit = yield* Effect.exit(
          store.commit({
            batchId: crypto.randomUUID(),
            saleId,
            epoch,
            orders: [newOrder(buyer!), newOrder(buyer!)],
            attempts: [],
            refusals: []
          })
        )
        assert.isTrue(Exit.isFailure(exit))
        const record = yield* audit.read(saleId)
        assert.strictEqual(record.orders.size, 0)
        assert.strictEqual(record.available, 5)
      })
    )

    it.effect("rejects a batch carrying an older epoch, writing nothing (I4)", () =>
      Effect.gen(function* () {
        const store = yield* OrderStore
        const [buyer] = yield* makeUsers(1)
        const saleId = yield* makeSale(10)
        const old = yield* store.claim(saleId)
        const current = yield* store.claim(saleId)
        assert.isAbove(current.epoch, old.epoch)
        const stale = yield* Effect.exit(
          store.commit({
            batchId: crypto.randomUUID(),
            saleId,
            epoch: old.epoch,
            orders: [newOrder(buyer!)],
            attempts: [{ userId: buyer!, outcome: "accepted", at: Date.now() }],
            refusals: []
          })
        )
        yield* assertFencedCleanly(stale, saleId, 10)
      })
    )

    // A second backend must hold the stock row while the batch runs: PGlite has only one.
    if (testDatabaseMode === "server") {
      it.effect(
        "fences a batch whose owner is replaced mid-commit: its inserts roll back (server only)",
        () =>
          Effect.gen(function* () {
            const store = yield* OrderStore
            const sql = yield* SqlClient.SqlClient
            const users = yield* makeUsers(3)
            const saleId = yield* makeSale(10)
            const { epoch } = yield* store.claim(saleId)
            // A newer owner's claim, held open: it has minted the next epoch but not committed it.
            const locked = yield* Deferred.make<void>()
            const release = yield* Deferred.make<void>()
            const claim = yield* Effect.forkChild(
              sql.withTransaction(
                Effect.gen(function* () {
                  yield* sql`UPDATE stocks SET owner_epoch = owner_epoch + 1 WHERE sale_id = ${saleId}`
                  yield* Deferred.succeed(locked, undefined)
                  yield* Deferred.await(release)
                })
              )
            )
            yield* Deferred.await(locked)
            // The batch passes the unlocked epoch check (the claim is not committed), inserts,
            // then waits for the stock row.
            const orders = users.map(newOrder)
            const batch = yield* Effect.forkChild(
              Effect.exit(
                store.commit({
                  batchId: crypto.randomUUID(),
                  saleId,
                  epoch,
                  orders,
                  attempts: orders.map((o) => ({ userId: o.userId, outcome: "accepted", at: o.at })),
                  refusals: []
                })
              )
            )
            const waiting = sql<{ n: number }>`
            SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE NOT l.granted AND a.query LIKE '%commit_batch%'`
            while ((yield* waiting)[0]!.n === 0) yield* Effect.sleep("10 millis")
            yield* Deferred.succeed(release, undefined)
            yield* Fiber.join(claim)
            yield* assertFencedCleanly(yield* Fiber.join(batch), saleId, 10)
          })
      )
    }

    it.effect("loads what is committed and tells whether a batch made it", () =>
      Effect.gen(function* () {
        const store = yield* OrderStore
        const users = yield* makeUsers(2)
        const saleId = yield* makeSale(4)
        const { epoch } = yield* store.claim(saleId)
        const committed = newOrder(users[0]!)
        const batch = {
          batchId: crypto.randomUUID(),
          saleId,
          epoch,
          orders: [committed],
          attempts: [],
          refusals: []
        }
        yield* store.commit(batch)
        const snapshot = yield* store.load(saleId)
        assert.strictEqual(snapshot.available, 3)
        assert.strictEqual(snapshot.buyers.get(users[0]!), committed.orderId)
        const receipt = yield* store.outcomeOf(batch)
        assert.isTrue(receipt?.orderIds.has(committed.orderId))
        // A batch whose transaction never committed, with or without orders, has no receipt.
        const lost = { ...batch, batchId: crypto.randomUUID(), orders: [newOrder(users[1]!)] }
        assert.isUndefined(yield* store.outcomeOf(lost))
        assert.isUndefined(yield* store.outcomeOf({ ...lost, orders: [] }))
      })
    )

    it.effect("commits two batches of one owner side by side, and each is told apart afterwards", () =>
      Effect.gen(function* () {
        const store = yield* OrderStore
        const audit = yield* Audit
        const users = yield* makeUsers(600)
        const saleId = yield* makeSale(500)
        const { epoch } = yield* store.claim(saleId)
        const batchOf = (buyers: ReadonlyArray<UserId>) => {
          const orders = buyers.map(newOrder)
          return {
            batchId: crypto.randomUUID(),
            saleId,
            epoch,
            orders,
            attempts: orders.map((o) => ({ userId: o.userId, outcome: "accepted", at: o.at })),
            refusals: []
          }
        }
        const first = batchOf(users.slice(0, 250))
        const second = batchOf(users.slice(250, 500))
        yield* Effect.all([store.commit(first), store.commit(second)], { concurrency: 2 })
        const record = yield* audit.read(saleId)
        assert.strictEqual(record.available, 0)
        assert.strictEqual(record.orders.size, 500)
        assert.isDefined(yield* store.outcomeOf(first))
        assert.isDefined(yield* store.outcomeOf(second))
        // The stock row stays the arbiter: a third batch finds no unit left and writes nothing.
        const third = batchOf(users.slice(500, 501))
        const over = yield* Effect.exit(store.commit(third))
        assert.isTrue(Exit.isFailure(over))
        assert.isUndefined(yield* store.outcomeOf(third))
        assert.strictEqual((yield* audit.read(saleId)).orders.size, 500)
      })
    )

    it.effect("fences the sale's owner when an admin cancels it or changes it before the start", () =>
      Effect.gen(function* () {
        const store = yield* OrderStore
        const sales = yield* Sales
        const batchFor = (saleId: SaleId, epoch: number) => ({
          batchId: crypto.randomUUID(),
          saleId,
          epoch,
          orders: [],
          attempts: [],
          refusals: [{ outcome: "not_started", count: 1, firstAt: Date.now(), lastAt: Date.now() }]
        })
        const later = yield* makeSale(5, { startsAt: Date.now() + 3_600_000, endsAt: Date.now() + 7_200_000 })
        const before = yield* store.claim(later)
        // Fails unless the sale was updated.
        yield* sales.update(later, { stock: 8 })
        const stale = yield* Effect.flip(store.commit(batchFor(later, before.epoch)))
        assert.strictEqual(stale._tag, "StaleEpoch")
        // The next owner sees the change.
        const after = yield* store.claim(later)
        assert.strictEqual(after.snapshot.total, 8)
        yield* store.commit(batchFor(later, after.epoch))

        assert.isTrue(yield* sales.cancel(later))
        const cancelled = yield* Effect.flip(store.commit(batchFor(later, after.epoch)))
        assert.strictEqual(cancelled._tag, "StaleEpoch")
        assert.isTrue((yield* store.claim(later)).snapshot.cancelled)
      })
    )

    it.effect("fails to claim or load a sale that does not exist", () =>
      Effect.gen(function* () {
        const store = yield* OrderStore
        const unknown = crypto.randomUUID() as never
        const claimed = yield* Effect.flip(store.claim(unknown))
        assert.strictEqual(claimed._tag, "SaleNotFound")
        const loaded = yield* Effect.flip(store.load(unknown))
        assert.strictEqual(loaded._tag, "SaleNotFound")
      })
    )

    it.effect("creates each user once, whatever the order of emails", () =>
      Effect.gen(function* () {
        const users = yield* Users
        const first = yield* users.byEmails(["ann@example.test", "bob@example.test"])
        const again = yield* users.byEmails(["bob@example.test", "cid@example.test", "ann@example.test"])
        assert.strictEqual(again[0], first[1])
        assert.strictEqual(again[2], first[0])
        assert.notInclude(first, again[1])
        assert.strictEqual(yield* users.byEmail("ann@example.test"), first[0])
      })
    )
  }
)

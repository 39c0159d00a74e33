import { assert, layer } from "@effect/vitest"
import { Cause, Effect, Exit, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { draw } from "../../src/domain/Draw.ts"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import { Audit, checkInvariants, violations } from "../../src/storage/Audit.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { OrderStore, type EntryToCommit } from "../../src/storage/OrderStore.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"
import { TestDatabase, testDatabaseMode } from "../support/TestDatabase.ts"

const Storage = Layer.mergeAll(Catalog.layer, OrderStore.layer, Audit.layer).pipe(
  Layer.provideMerge(TestDatabase.layer)
)

const newEntry = (userId: UserId): EntryToCommit => ({
  entryId: crypto.randomUUID() as OrderId,
  userId,
  at: Date.now()
})

const entriesBatch = (saleId: SaleId, epoch: number, entries: ReadonlyArray<EntryToCommit>) => ({
  batchId: crypto.randomUUID(),
  saleId,
  epoch,
  orders: [],
  attempts: entries.map((e) => ({ userId: e.userId, outcome: "entered", at: e.at })),
  refusals: [],
  entries
})

const failureTag = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit)) return "success"
  const error = Cause.findErrorOption(exit.cause)
  return error._tag === "Some" ? (error.value as { readonly _tag?: string })._tag : "defect"
}

/** The seed, as only PostgreSQL has it before the draw. */
const seedOf = (saleId: SaleId) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<{ seed: string }>`SELECT seed FROM sale_draws WHERE sale_id = ${saleId}`
  ).pipe(Effect.map((rows) => rows[0]?.seed ?? ""))

layer(Storage, { timeout: 60_000, excludeTestServices: true })(
  `draws on ${testDatabaseMode} PostgreSQL`,
  (it) => {
    it.effect("commits entries in fenced batches, draws once, and a new owner reloads all of it", () =>
      Effect.gen(function* () {
        const store = yield* OrderStore
        const users = yield* makeUsers(12)
        const saleId = yield* makeSale(5, { entryWindowMillis: 60_000 })
        const first = yield* store.claim(saleId)
        assert.isDefined(first.snapshot.draw)
        assert.strictEqual(first.snapshot.draw?.entries.size, 0)
        const entries = users.map(newEntry)
        const receipt = yield* store.commit(entriesBatch(saleId, first.epoch, entries.slice(0, 8)))
        assert.strictEqual(receipt.entryIds.size, 8)
        // A stale owner's entries are refused whole.
        const second = yield* store.claim(saleId)
        const stale = yield* Effect.exit(store.commit(entriesBatch(saleId, first.epoch, entries.slice(8))))
        assert.strictEqual(failureTag(stale), "StaleEpoch")
        yield* store.commit(entriesBatch(saleId, second.epoch, entries.slice(8, 10)))
        assert.strictEqual(second.snapshot.draw?.entries.size, 8)

        // A stale owner's draw writes nothing.
        const fencedDraw = yield* Effect.exit(store.draw(saleId, first.epoch))
        assert.strictEqual(failureTag(fencedDraw), "StaleEpoch")
        const before = yield* (yield* Audit).read(saleId)
        assert.strictEqual(before.orders.size, 0)

        const outcome = yield* store.draw(saleId, second.epoch)
        assert.strictEqual(outcome.winners.length, 5)
        assert.strictEqual(outcome.waitingList.size, 5)
        // The same function of the revealed seed and the published entries.
        const expected = draw(yield* seedOf(saleId), entries.slice(0, 10), 5)
        assert.deepStrictEqual(
          outcome.winners.map((w) => w.userId),
          expected.winners.map((w) => w.userId)
        )
        assert.deepStrictEqual(
          outcome.winners.map((w) => w.orderId),
          expected.winners.map((w) => w.entryId)
        )
        expected.waitingList.forEach((e, i) =>
          assert.strictEqual(outcome.waitingList.get(e.userId as UserId), i + 1)
        )

        // Drawn once: asking again returns the same result, and entries are refused from now on.
        const again = yield* store.draw(saleId, second.epoch)
        assert.deepStrictEqual(again.winners, outcome.winners)
        const late = yield* Effect.exit(store.commit(entriesBatch(saleId, second.epoch, entries.slice(10))))
        assert.strictEqual(failureTag(late), "SqlError")

        const third = yield* store.claim(saleId)
        assert.strictEqual(third.snapshot.buyers.size, 5)
        assert.strictEqual(third.snapshot.available, 0)
        assert.strictEqual(third.snapshot.draw?.entries.size, 10)
        assert.deepStrictEqual(third.snapshot.draw?.waitingList, outcome.waitingList)
        const report = checkInvariants(
          yield* (yield* Audit).read(saleId),
          new Map(outcome.winners.map((w) => [w.orderId, w.userId]))
        )
        assert.strictEqual(violations(report), 0)
        assert.strictEqual(report.committed, 5)
      })
    )

    it.effect("a draw with fewer entries than units gives every entrant an order", () =>
      Effect.gen(function* () {
        const store = yield* OrderStore
        const users = yield* makeUsers(3)
        const saleId = yield* makeSale(10, { entryWindowMillis: 1_000 })
        const { epoch } = yield* store.claim(saleId)
        yield* store.commit(entriesBatch(saleId, epoch, users.map(newEntry)))
        const outcome = yield* store.draw(saleId, epoch)
        assert.strictEqual(outcome.winners.length, 3)
        assert.strictEqual(outcome.waitingList.size, 0)
        const record = yield* (yield* Audit).read(saleId)
        assert.strictEqual(record.available, 7)
      })
    )
  }
)

import { assert, layer } from "@effect/vitest"
import { Cause, Effect, Exit, Layer, Stream, SubscriptionRef } from "effect"
import { SqlClient } from "effect/sql"
import type { SaleActor } from "../../src/actors/SaleActor.ts"
import { SaleRegistry, type RegistryOptions } from "../../src/actors/SaleRegistry.ts"
import { draw } from "../../src/domain/Draw.ts"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import type { Outcome } from "../../src/domain/Outcome.ts"
import { awaitReply, type Refusal } from "../../src/domain/Reply.ts"
import { Audit, checkInvariants, violations } from "../../src/storage/Audit.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { OrderStore } from "../../src/storage/OrderStore.ts"
import { makeSale, makeUsers, twiceShuffled } from "../support/Fixtures.ts"
import { TestDatabase, testDatabaseMode } from "../support/TestDatabase.ts"
import { faultyStore, type Fault } from "./Faults.ts"

const options: RegistryOptions = { mailboxCapacity: 50_000, maxBatchSize: 500, idleMillis: 60_000 }

const Storage = Layer.mergeAll(Catalog.layer, OrderStore.layer, Audit.layer).pipe(
  Layer.provideMerge(TestDatabase.layer)
)

const enter = (saleId: SaleId, userId: UserId) =>
  Effect.gen(function* () {
    const actor = yield* (yield* SaleRegistry).actor(saleId)
    return yield* awaitReply<Refusal>((reply) => actor.offer(userId, reply))
  })

const enterAll = (saleId: SaleId, buyers: ReadonlyArray<UserId>) =>
  Effect.forEach(
    buyers,
    (userId) => Effect.exit(enter(saleId, userId)).pipe(Effect.map((reply) => [userId, reply] as const)),
    { concurrency: "unbounded" }
  )

/** Buyers told "entered" (202), with their entry id; a buyer told twice must hear the same id. */
const enteredOf = (replies: ReadonlyArray<readonly [UserId, Exit.Exit<Outcome, unknown>]>) => {
  const entered = new Map<UserId, OrderId>()
  for (const [userId, reply] of replies) {
    if (!Exit.isSuccess(reply) || reply.value._tag !== "Entered") continue
    const known = entered.get(userId)
    assert.isTrue(known === undefined || known === reply.value.entryId, "one entry per buyer")
    entered.set(userId, reply.value.entryId)
  }
  return entered
}

const awaitDrawn = (actor: SaleActor) =>
  SubscriptionRef.changes(actor.figures).pipe(
    Stream.filter((f) => f.drawn),
    Stream.runHead
  )

/** What PostgreSQL holds of the draw: the seed, the entries, and the stored draw order. */
const drawRecord = (saleId: SaleId) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [setup] = yield* sql<{ seed: string; units: number | null; drawn: boolean }>`
      SELECT seed, units, drawn_at IS NOT NULL AS drawn FROM sale_draws WHERE sale_id = ${saleId}`
    const entries = yield* sql<{ userId: UserId; entryId: OrderId; place: number | null }>`
      SELECT user_id AS "userId", entry_id AS "entryId", place FROM sale_entries WHERE sale_id = ${saleId}`
    return { seed: setup?.seed ?? "", units: setup?.units ?? 0, drawn: setup?.drawn ?? false, entries }
  })

layer(Storage, { timeout: 120_000, excludeTestServices: true })(
  `a draw sale's actor on ${testDatabaseMode} PostgreSQL`,
  (it) => {
    it.effect(
      "takes one entry per buyer, answers only committed entries, and draws once at the window's close",
      () =>
        Effect.gen(function* () {
          const users = yield* makeUsers(1_000)
          const saleId = yield* makeSale(100, { startsAt: Date.now() - 100, entryWindowMillis: 3_000 })
          const replies = yield* enterAll(saleId, twiceShuffled(users))
          const entered = enteredOf(replies)
          assert.strictEqual(entered.size, 1_000)
          const actor = yield* (yield* SaleRegistry).actor(saleId)
          // Nothing is drawn before the window closes.
          assert.isFalse((yield* SubscriptionRef.get(actor.figures)).drawn)
          yield* awaitDrawn(actor)

          const record = yield* drawRecord(saleId)
          assert.isTrue(record.drawn)
          assert.strictEqual(record.entries.length, 1_000)
          // Every 202 has its entry row, with the id the buyer was told.
          for (const [userId, entryId] of entered)
            assert.isTrue(record.entries.some((e) => e.userId === userId && e.entryId === entryId))
          // The winners are those the pure draw gives from the revealed seed and the entries.
          const expected = draw(record.seed, record.entries, 100)
          const confirmed = new Map(expected.winners.map((w) => [w.entryId as OrderId, w.userId as UserId]))
          const report = checkInvariants(yield* (yield* Audit).read(saleId), confirmed)
          assert.strictEqual(violations(report), 0)
          assert.strictEqual(report.committed, 100)
          assert.strictEqual(report.unconfirmedRows, 0)

          // Afterwards each entrant hears their result: the order, or the waiting-list place.
          const after = yield* enterAll(saleId, users.slice(0, 200))
          const places = new Map(expected.waitingList.map((e, i) => [e.userId, i + 1]))
          for (const [userId, reply] of after) {
            assert.isTrue(Exit.isSuccess(reply))
            if (!Exit.isSuccess(reply)) continue
            const outcome = reply.value
            if (outcome._tag === "AlreadyPurchased")
              assert.strictEqual(confirmed.get(outcome.orderId), userId)
            else assert.deepStrictEqual(outcome, { _tag: "NotDrawn", place: places.get(userId) ?? -1 })
          }
          const late = yield* makeUsers(1)
          const lateReply = yield* Effect.exit(enter(saleId, late[0]!))
          assert.isTrue(Exit.isSuccess(lateReply) && lateReply.value._tag === "Ended")
          // Stopped here, not by the layer's scope: a batch staged while the actor's scope is
          // already closing would be forked into a closed scope and never commit.
          yield* (yield* SaleRegistry).stop(saleId)
        }).pipe(Effect.provide(SaleRegistry.make(options)))
    )

    it.effect("a new actor reloads the entries and draws; a stale one's draw commits nothing", () =>
      Effect.gen(function* () {
        const registry = yield* SaleRegistry
        const store = yield* OrderStore
        const users = yield* makeUsers(300)
        const saleId = yield* makeSale(50, { startsAt: Date.now() - 100, entryWindowMillis: 2_500 })
        const first = enteredOf(yield* enterAll(saleId, users.slice(0, 150)))
        const old = registry.running(saleId)!
        // Another owner claims the sale: the running actor's epoch is stale from now on.
        const newer = yield* store.claim(saleId)
        assert.isAbove(newer.epoch, old.epoch)
        assert.strictEqual(newer.snapshot.draw?.entries.size, 150)
        // The stale actor's next write, entries or the draw, is fenced; it stops, writing nothing.
        yield* enterAll(saleId, users.slice(150, 160))
        assert.strictEqual(yield* old.stopped, "fenced")
        const fenced = yield* drawRecord(saleId)
        assert.isFalse(fenced.drawn)
        assert.strictEqual(fenced.entries.length, 150)

        const second = enteredOf(yield* enterAll(saleId, users.slice(160)))
        const actor = yield* registry.actor(saleId)
        assert.isAbove(actor.epoch, newer.epoch)
        yield* awaitDrawn(actor)
        const record = yield* drawRecord(saleId)
        assert.strictEqual(record.entries.length, first.size + second.size)
        for (const [userId, entryId] of [...first, ...second])
          assert.isTrue(record.entries.some((e) => e.userId === userId && e.entryId === entryId))
        const expected = draw(record.seed, record.entries, 50)
        const report = checkInvariants(
          yield* (yield* Audit).read(saleId),
          new Map(expected.winners.map((w) => [w.entryId as OrderId, w.userId as UserId]))
        )
        assert.strictEqual(violations(report), 0)
        assert.strictEqual(report.committed, 50)
        // Drawn once: a later owner loads the result and draws nothing more.
        yield* registry.stop(saleId)
        const again = yield* registry.actor(saleId)
        assert.isTrue((yield* SubscriptionRef.get(again.figures)).drawn)
        assert.strictEqual((yield* (yield* Audit).read(saleId)).orders.size, 50)
      }).pipe(Effect.provide(SaleRegistry.make(options)))
    )

    it.effect(
      "an entry batch that fails is refused and may enter again; one whose answer is lost is settled and answered 202",
      () => {
        // The first entries' batch fails before it is sent; the next one is stored but its answer lost.
        const faults: Array<Fault> = ["failBeforeSending", "loseAnswer"]
        const plan = (batch: { readonly entries?: ReadonlyArray<unknown> | undefined }) =>
          Effect.sync((): Fault => ((batch.entries?.length ?? 0) > 0 ? (faults.shift() ?? "none") : "none"))
        return Effect.gen(function* () {
          const users = yield* makeUsers(3)
          const saleId = yield* makeSale(1, { startsAt: Date.now() - 100, entryWindowMillis: 2_000 })
          const first = yield* Effect.exit(enter(saleId, users[0]!))
          const refused = Exit.isFailure(first) ? Cause.findErrorOption(first.cause) : undefined
          assert.strictEqual(refused?._tag === "Some" ? refused.value._tag : "none", "PurchaseUnavailable")
          const second = yield* enter(saleId, users[1]!)
          assert.strictEqual(second._tag, "Entered")
          const retried = yield* enter(saleId, users[0]!)
          assert.strictEqual(retried._tag, "Entered")
          const actor = yield* (yield* SaleRegistry).actor(saleId)
          yield* awaitDrawn(actor)
          const record = yield* drawRecord(saleId)
          assert.deepStrictEqual(record.entries.map((e) => e.userId).sort(), [users[0]!, users[1]!].sort())
          const expected = draw(record.seed, record.entries, 1)
          const report = checkInvariants(
            yield* (yield* Audit).read(saleId),
            new Map(expected.winners.map((w) => [w.entryId as OrderId, w.userId as UserId]))
          )
          assert.strictEqual(violations(report), 0)
          assert.strictEqual(report.committed, 1)
          yield* (yield* SaleRegistry).stop(saleId)
        }).pipe(Effect.provide(SaleRegistry.make(options).pipe(Layer.provide(faultyStore(plan)))))
      }
    )
  }
)

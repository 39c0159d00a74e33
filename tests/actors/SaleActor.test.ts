import { assert, layer } from "@effect/vitest"
import { PgClient } from "@effect/sql-pg"
import { Cause, Deferred, Effect, Exit, Fiber, Layer, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
import { SqlClient } from "effect/sql"
import { SaleRegistry, type RegistryOptions } from "../../src/actors/SaleRegistry.ts"
import type { Overloaded, PurchaseUnavailable } from "../../src/domain/Errors.ts"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import type { Outcome } from "../../src/domain/Outcome.ts"
import { awaitReply, isRefusal, type Refusal, type Reply as ActorReply } from "../../src/domain/Reply.ts"
import { Audit, checkInvariants, violations } from "../../src/storage/Audit.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { OrderStore } from "../../src/storage/OrderStore.ts"
import { makeSale, makeUsers, twiceShuffled } from "../support/Fixtures.ts"
import { adminUrl, TestDatabase, testDatabaseMode } from "../support/TestDatabase.ts"

const options: RegistryOptions = { mailboxCapacity: 50_000, maxBatchSize: 2_000, idleMillis: 60_000 }

const withRegistry = (opts: RegistryOptions = options) => Effect.provide(SaleRegistry.make(opts))

type Reply = Exit.Exit<Outcome, Overloaded | PurchaseUnavailable | { readonly _tag: string }>

/** The order ids each buyer was told about (accepted, or already purchased). */
const confirmedOrders = (replies: ReadonlyArray<readonly [UserId, Reply]>) => {
  const confirmed = new Map<OrderId, UserId>()
  for (const [userId, reply] of replies) {
    if (
      Exit.isSuccess(reply) &&
      (reply.value._tag === "Accepted" || reply.value._tag === "AlreadyPurchased")
    ) {
      confirmed.set(reply.value.orderId, userId)
    }
  }
  return confirmed
}

const countTags = (replies: ReadonlyArray<readonly [UserId, Reply]>) => {
  const counts: Record<string, number> = {}
  for (const [, reply] of replies) {
    const tag = Exit.isSuccess(reply)
      ? reply.value._tag
      : (Cause.findErrorOption(reply.cause).pipe((o) =>
          o._tag === "Some" ? o.value._tag : "Defect"
        ) as string)
    counts[tag] = (counts[tag] ?? 0) + 1
  }
  return counts
}

/** One purchase through the sale's actor (started if need be), in the Effect form. */
const purchase = (saleId: SaleId, userId: UserId) =>
  Effect.gen(function* () {
    const actor = yield* (yield* SaleRegistry).actor(saleId)
    return yield* awaitReply<Refusal>((reply) => actor.offer(userId, reply))
  })

const purchaseAll = (saleId: SaleId, buyers: ReadonlyArray<UserId>) =>
  Effect.forEach(
    buyers,
    (userId) => Effect.exit(purchase(saleId, userId)).pipe(Effect.map((reply) => [userId, reply] as const)),
    { concurrency: "unbounded" }
  )

const auditSale = (saleId: SaleId, confirmed: ReadonlyMap<OrderId, UserId>) =>
  Effect.gen(function* () {
    const audit = yield* Audit
    return checkInvariants(yield* audit.read(saleId), confirmed)
  })

const Storage = Layer.mergeAll(Catalog.layer, OrderStore.layer, Audit.layer).pipe(
  Layer.provideMerge(TestDatabase.layer)
)

layer(Storage, { timeout: 120_000, excludeTestServices: true })(
  `sale actor on ${testDatabaseMode} PostgreSQL`,
  (it) => {
    it.effect("sells exactly the stock to 20,000 concurrent attempts from 10,000 users", () =>
      Effect.gen(function* () {
        const users = yield* makeUsers(10_000)
        const saleId = yield* makeSale(1_000)
        const replies = yield* purchaseAll(saleId, twiceShuffled(users))
        const tags = countTags(replies)
        assert.strictEqual(replies.length, 20_000)
        assert.strictEqual(tags.Accepted, 1_000)
        assert.strictEqual((tags.Accepted ?? 0) + (tags.AlreadyPurchased ?? 0) + (tags.SoldOut ?? 0), 20_000)

        const accepted = new Map<OrderId, UserId>()
        for (const [userId, reply] of replies)
          if (Exit.isSuccess(reply) && reply.value._tag === "Accepted")
            accepted.set(reply.value.orderId, userId)
        const report = yield* auditSale(saleId, accepted)
        assert.strictEqual(report.committed, 1_000)
        assert.strictEqual(violations(report), 0)
        assert.strictEqual(report.unconfirmedRows, 0) // every row had an accepted reply

        // Every attempt was recorded for audit, each with its decision, once the actor has flushed.
        yield* (yield* SaleRegistry).stop(saleId)
        const byOutcome = yield* (yield* Audit).outcomes(saleId)
        assert.strictEqual(byOutcome.accepted, 1_000)
        assert.strictEqual(
          Object.values(byOutcome).reduce((sum, n) => sum + n, 0),
          20_000
        )
      }).pipe(withRegistry())
    )

    it.effect("answers Overloaded at once when the mailbox is full, and stays exact", () =>
      Effect.gen(function* () {
        const users = yield* makeUsers(2_000)
        const saleId = yield* makeSale(500)
        const replies = yield* purchaseAll(saleId, users)
        const tags = countTags(replies)
        assert.isAbove(tags.Overloaded ?? 0, 0)
        assert.isAtMost(tags.Accepted ?? 0, 500)
        const report = yield* auditSale(saleId, confirmedOrders(replies))
        assert.strictEqual(report.committed, tags.Accepted ?? 0)
        assert.strictEqual(violations(report), 0)
      }).pipe(withRegistry({ ...options, mailboxCapacity: 50 }))
    )

    it.effect("recovers remaining stock and buyers from PostgreSQL after a stop (I5)", () =>
      Effect.gen(function* () {
        const registry = yield* SaleRegistry
        const store = yield* OrderStore
        const users = yield* makeUsers(600)
        const saleId = yield* makeSale(1_000)
        const first = yield* purchaseAll(saleId, users.slice(0, 300))
        const before = registry.running(saleId)!
        assert.strictEqual(before.view(Date.now()).remaining, 700)
        assert.strictEqual(yield* registry.stop(saleId).pipe(Effect.andThen(before.stopped)), "stopped")

        const snapshot = yield* store.load(saleId)
        assert.strictEqual(snapshot.available, 700)
        assert.strictEqual(snapshot.buyers.size, 300)

        const again = yield* registry.actor(saleId)
        assert.notStrictEqual(again, before)
        assert.isAbove(again.epoch, before.epoch)
        assert.strictEqual(again.view(Date.now()).remaining, snapshot.total - snapshot.buyers.size)
        // Every earlier buyer is still known to the new actor, with the same order.
        const retried = yield* purchaseAll(saleId, users.slice(0, 300))
        const firstOrders = confirmedOrders(first)
        for (const [userId, reply] of retried) {
          assert.isTrue(Exit.isSuccess(reply) && reply.value._tag === "AlreadyPurchased")
          if (Exit.isSuccess(reply) && reply.value._tag === "AlreadyPurchased")
            assert.strictEqual(firstOrders.get(reply.value.orderId), userId)
        }
        const rest = yield* purchaseAll(saleId, users.slice(300))
        assert.strictEqual(again.view(Date.now()).remaining, 400)
        const report = yield* auditSale(saleId, new Map([...firstOrders, ...confirmedOrders(rest)]))
        assert.strictEqual(report.committed, 600)
        assert.strictEqual(violations(report), 0)
      }).pipe(withRegistry())
    )

    it.effect(
      "stops an actor fenced by a newer owner; its buyers get a retryable error, nothing is written",
      () =>
        Effect.gen(function* () {
          const registry = yield* SaleRegistry
          const store = yield* OrderStore
          const users = yield* makeUsers(200)
          const saleId = yield* makeSale(100)
          const first = yield* purchaseAll(saleId, users.slice(0, 50))
          const actor = registry.running(saleId)!
          yield* store.claim(saleId) // another owner takes the sale
          const fenced = yield* purchaseAll(saleId, users.slice(50))
          const tags = countTags(fenced)
          // The 50 units left are taken in memory but never committed; the other 100 buyers
          // were told "sold out" from memory without any write.
          assert.strictEqual(tags.Accepted ?? 0, 0)
          assert.strictEqual(tags.PurchaseUnavailable, 50)
          assert.strictEqual(tags.SoldOut, 100)
          assert.strictEqual(yield* actor.stopped, "fenced")
          const report = yield* auditSale(saleId, confirmedOrders(first))
          assert.strictEqual(report.committed, 50)
          assert.strictEqual(violations(report), 0)
        }).pipe(withRegistry())
    )

    it.effect("drains on stop: every queued purchase is answered, and every acceptance is committed", () =>
      Effect.gen(function* () {
        const registry = yield* SaleRegistry
        const users = yield* makeUsers(3_000)
        const saleId = yield* makeSale(2_000)
        yield* registry.actor(saleId)
        const inFlight = yield* Effect.forkChild(purchaseAll(saleId, users))
        yield* Effect.yieldNow
        yield* registry.stop(saleId)
        const replies = yield* Fiber.join(inFlight)
        const tags = countTags(replies)
        assert.strictEqual(replies.length, 3_000)
        const report = yield* auditSale(saleId, confirmedOrders(replies))
        assert.strictEqual(report.committed, tags.Accepted ?? 0)
        assert.strictEqual(violations(report), 0)
        assert.strictEqual(report.unconfirmedRows, 0)
      }).pipe(withRegistry())
    )

    it.effect("starts a commit beside one in flight only while a full batch waits", () => {
      // The real store, with each commit held 20 ms and the commits under way counted.
      let committing = 0
      let most = 0
      const watched = Layer.effect(
        OrderStore,
        Effect.gen(function* () {
          const store = yield* OrderStore
          return OrderStore.of({
            ...store,
            commit: (batch) =>
              Effect.acquireUseRelease(
                Effect.sync(() => {
                  committing++
                  most = Math.max(most, committing)
                }),
                () => Effect.andThen(Effect.sleep("20 millis"), store.commit(batch)),
                () => Effect.sync(() => committing--)
              )
          })
        })
      )
      return Effect.gen(function* () {
        const users = yield* makeUsers(2_090)
        const saleId = yield* makeSale(2_090)
        // A trickle: ten more buyers every 5 ms, whatever is still committing, so purchases
        // arrive while a commit is in flight; 90 in all, so a batch of 100 never waits,
        // however slow the commits.
        const waves: Array<Fiber.Fiber<ReadonlyArray<readonly [UserId, Reply]>>> = []
        for (let wave = 0; wave < 9; wave++) {
          waves.push(yield* Effect.forkChild(purchaseAll(saleId, users.slice(wave * 10, wave * 10 + 10))))
          yield* Effect.sleep("5 millis")
        }
        const trickle = (yield* Fiber.joinAll(waves)).flat()
        assert.strictEqual(most, 1, "one commit at a time")
        // A flood: 2,000 at once, many full batches waiting.
        most = 0
        const flood = yield* purchaseAll(saleId, users.slice(90))
        assert.strictEqual(most, 3, "three commits overlap")
        const replies = [...trickle, ...flood]
        assert.deepStrictEqual(countTags(replies), { Accepted: 2_090 })
        const report = yield* auditSale(saleId, confirmedOrders(replies))
        assert.strictEqual(report.committed, 2_090)
        assert.strictEqual(violations(report), 0)
      }).pipe(
        Effect.provide(
          SaleRegistry.make({ ...options, maxBatchSize: 100, commitsInFlight: 3 }).pipe(
            Layer.provide(watched)
          )
        )
      )
    })

    it.effect("relinquishes at once: what is queued is refused undecided, what was decided is kept", () =>
      Effect.gen(function* () {
        const registry = yield* SaleRegistry
        const users = yield* makeUsers(3_000)
        const saleId = yield* makeSale(2_000)
        const actor = yield* registry.actor(saleId)
        const replies: Array<readonly [UserId, ActorReply]> = []
        // Offered without a fiber, then relinquished before the decider has run.
        for (const userId of users) actor.offer(userId, (reply) => replies.push([userId, reply]))
        const reason = yield* actor.relinquish
        assert.strictEqual(reason, "stopped")
        assert.strictEqual(replies.length, 3_000, "every buyer was answered")
        const refused = replies.filter(([, reply]) => isRefusal(reply))
        assert.isAbove(refused.length, 0, "the queue was decided before the actor let go")
        for (const [, reply] of refused) {
          assert.strictEqual(reply._tag, "PurchaseUnavailable")
          assert.strictEqual((reply as PurchaseUnavailable).reason, "stopping")
        }
        const confirmed = new Map<OrderId, UserId>()
        for (const [userId, reply] of replies)
          if (reply._tag === "Accepted") confirmed.set(reply.orderId, userId)
        const report = yield* auditSale(saleId, confirmed)
        assert.strictEqual(report.committed, confirmed.size)
        assert.strictEqual(violations(report), 0)
        assert.strictEqual(report.unconfirmedRows, 0)
        // Nothing of a refused buyer was written, not even an audit record.
        const audited = yield* (yield* Audit).outcomes(saleId)
        assert.strictEqual(
          Object.values(audited).reduce((sum, n) => sum + n, 0),
          replies.length - refused.length
        )
      }).pipe(withRegistry())
    )

    // pg_terminate_backend needs a PostgreSQL server: PGlite has no backends to kill.
    if (testDatabaseMode === "server") {
      it.effect("survives the writer's connection being killed mid-run (server only)", () =>
        Effect.gen(function* () {
          const registry = yield* SaleRegistry
          const sql = yield* SqlClient.SqlClient
          const users = yield* makeUsers(4_000)
          const saleId = yield* makeSale(1_000)
          const db = (yield* sql<{ db: string }>`SELECT current_database() AS db`)[0]!.db
          const replies: Array<readonly [UserId, Reply]> = []
          let commitFailures = 0
          let done = false
          // A buyer presses "Buy" until told something final, as a storefront retries.
          const buyer = (userId: UserId) =>
            Effect.gen(function* () {
              while (true) {
                const reply = yield* Effect.exit(purchase(saleId, userId))
                replies.push([userId, reply])
                if (Exit.isSuccess(reply)) return
                const error = Cause.findErrorOption(reply.cause)
                if (error._tag === "Some" && error.value._tag === "PurchaseUnavailable") {
                  if (error.value.reason === "commit_failed") commitFailures++
                } else if (!(error._tag === "Some" && error.value._tag === "Overloaded")) return
                yield* Effect.sleep("5 millis")
              }
            })
          // Armed before the first buyer, so even a quick run has its connections cut.
          const armed = yield* Deferred.make<void>()
          const killer = Effect.scoped(
            Effect.gen(function* () {
              const admin = yield* PgClient.make({ url: Redacted.make(adminUrl), maxConnections: 1 })
              yield* Deferred.succeed(armed, undefined)
              let kills = 0
              while ((!done || kills === 0) && (kills < 5 || commitFailures === 0) && kills < 500) {
                yield* Effect.sleep("15 millis")
                yield* admin`
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE datname = ${db} AND pid <> pg_backend_pid()`
                kills++
              }
              return kills
            })
          ).pipe(Effect.provide(Reactivity.layer))
          const killing = yield* Effect.forkChild(killer)
          yield* Deferred.await(armed)
          yield* Effect.forEach(users, buyer, { concurrency: 400, discard: true })
          done = true
          const kills = yield* Fiber.join(killing)
          assert.isAbove(kills, 0)
          assert.isAbove(commitFailures, 0, "no commit was interrupted: the fault was not exercised")

          const final = new Map<UserId, Outcome>()
          for (const [userId, reply] of replies) if (Exit.isSuccess(reply)) final.set(userId, reply.value)
          const report = yield* auditSale(saleId, confirmedOrders(replies))
          assert.strictEqual(report.committed, 1_000)
          assert.strictEqual(violations(report), 0)
          // Every buyer with a row was told so in the end.
          assert.strictEqual(report.unconfirmedRows, 0)
          assert.strictEqual(final.size, users.length)

          // Every decision is audited exactly once, failed commits included: after a flush
          // the audit log holds one row per answered decision, and the failed ones as such.
          yield* registry.stop(saleId)
          const decided = replies.filter(([, reply]) => Exit.isSuccess(reply)).length + commitFailures
          const byOutcome = yield* (yield* Audit).outcomes(saleId)
          assert.strictEqual(
            Object.values(byOutcome).reduce((sum, n) => sum + n, 0),
            decided
          )
          assert.strictEqual(byOutcome.accepted, 1_000)
          assert.strictEqual(byOutcome.commit_failed, commitFailures)
          // Small batches: many commits to cut, however fast this machine sells.
        }).pipe(withRegistry({ ...options, maxBatchSize: 50 }))
      )
    }
  }
)

/**
 * Invariant I3 for repeats: a buyer who presses "Buy" again while the first order waits for
 * its batch is answered with that batch's fate, never before it. Property: over any
 * interleaving of purchases, repeats, and commits that succeed, fail before sending, or
 * commit and lose their answer,
 * - every Accepted / AlreadyPurchased answer has its order in PostgreSQL at the end,
 * - all such answers of one buyer name the same order,
 * - the answers one buyer gets to attempts offered together are all the same,
 * - every order in PostgreSQL was told to its buyer.
 */
import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Exit, Latch, Layer } from "effect"
import { SqlClient } from "effect/sql"
import fc from "fast-check"
import { SaleRegistry, type RegistryOptions } from "../../src/actors/SaleRegistry.ts"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import type { Reply } from "../../src/domain/Reply.ts"
import { Audit } from "../../src/storage/Audit.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { OrderStore, type Batch } from "../../src/storage/OrderStore.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"
import { TestDatabase, testDatabaseMode } from "../support/TestDatabase.ts"
import { faultyStore, type Fault } from "./Faults.ts"

const Storage = Layer.mergeAll(Catalog.layer, OrderStore.layer, Audit.layer).pipe(
  Layer.provideMerge(TestDatabase.layer)
)

const options: RegistryOptions = { mailboxCapacity: 10_000, maxBatchSize: 100, idleMillis: 60_000 }

/** Waits for a condition another fiber makes true, looking every few milliseconds. */
const until = (condition: () => boolean) =>
  Effect.gen(function* () {
    while (!condition()) yield* Effect.sleep("2 millis")
  }).pipe(Effect.timeout("10 seconds"))

const storedOrders = (saleId: SaleId) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ orderId: OrderId; userId: UserId }>`
      SELECT id AS "orderId", user_id AS "userId" FROM orders WHERE sale_id = ${saleId}`
    return new Map(rows.map((row) => [row.orderId, row.userId]))
  })

/** What an answer says, for comparing two answers. */
const meaning = (reply: Reply) => {
  switch (reply._tag) {
    case "Accepted":
    case "AlreadyPurchased":
      return `purchased ${reply.orderId}`
    case "PurchaseUnavailable":
      return `unavailable ${reply.reason}`
    default:
      return reply._tag
  }
}

interface Round {
  /** Buyers (indexes) offered in one go, repeats included: they reach the decider together. */
  readonly buyers: ReadonlyArray<number>
  /** Then: 0 yields once, n waits n ms, so commits land between rounds or do not. */
  readonly pause: number
}

interface Schedule {
  readonly stock: number
  readonly rounds: ReadonlyArray<Round>
  /** The fault of each commit in turn, cycled. */
  readonly faults: ReadonlyArray<Fault>
}

const schedule: fc.Arbitrary<Schedule> = fc.record({
  stock: fc.integer({ min: 1, max: 6 }),
  rounds: fc.array(
    fc.record({
      buyers: fc.array(fc.nat(5), { minLength: 1, maxLength: 6 }),
      pause: fc.constantFrom(0, 0, 1, 3)
    }),
    { minLength: 1, maxLength: 10 }
  ),
  faults: fc.array(fc.constantFrom<Fault>("none", "failBeforeSending", "loseAnswer"), {
    minLength: 1,
    maxLength: 8
  })
})

layer(Storage, { timeout: 180_000, excludeTestServices: true })(
  `repeat purchases on ${testDatabaseMode} PostgreSQL`,
  (it) => {
    it.effect(
      "a repeat during a failing commit is refused like the original, never told it purchased",
      () => {
        const inCommit = Deferred.makeUnsafe<void>()
        const gate = Latch.makeUnsafe(false)
        let commits = 0
        // The first commit is held in flight, then fails before anything is sent.
        const plan = (_batch: Batch) =>
          Effect.gen(function* () {
            if (commits++ > 0) return "none" as const
            Deferred.doneUnsafe(inCommit, Exit.void)
            yield* gate.await
            return "failBeforeSending" as const
          })
        return Effect.gen(function* () {
          const registry = yield* SaleRegistry
          const [buyer] = yield* makeUsers(1)
          const userId = buyer as UserId
          const saleId = yield* makeSale(5)
          const actor = yield* registry.actor(saleId)
          const answers: Array<Reply> = []
          actor.offer(userId, (answer) => answers.push(answer))
          yield* Deferred.await(inCommit)
          actor.offer(userId, (answer) => answers.push(answer))
          yield* until(() => actor.view(Date.now()).mailboxDepth === 0)
          assert.deepStrictEqual(answers, [], "the repeat waits for the original's batch")
          yield* gate.open
          yield* until(() => answers.length === 2)
          assert.deepStrictEqual(answers.map(meaning), [
            "unavailable commit_failed",
            "unavailable commit_failed"
          ])
          // The unit went back: the buyer's next attempt is a new order, and it is stored.
          actor.offer(userId, (answer) => answers.push(answer))
          yield* until(() => answers.length === 3)
          const third = answers[2]
          assert.strictEqual(third?._tag, "Accepted")
          const stored = yield* storedOrders(saleId)
          assert.strictEqual(stored.size, 1)
          if (third?._tag === "Accepted") assert.strictEqual(stored.get(third.orderId), userId)
        }).pipe(
          // A failed assertion must not leave the held commit (and the actor's drain) waiting.
          Effect.ensuring(gate.open),
          Effect.provide(SaleRegistry.make(options).pipe(Layer.provide(faultyStore(plan))))
        )
      }
    )

    it.effect("every purchased answer has its row, and one buyer's answers agree (property)", () => {
      let faults: ReadonlyArray<Fault> = ["none"]
      let commits = 0
      const plan = (_batch: Batch) => Effect.sync(() => faults[commits++ % faults.length] ?? "none")

      const runOnce = (run: Schedule) =>
        Effect.gen(function* () {
          faults = run.faults
          commits = 0
          const registry = yield* SaleRegistry
          const users = yield* makeUsers(6)
          const saleId = yield* makeSale(run.stock)
          const actor = yield* registry.actor(saleId)
          const answers: Array<{ readonly round: number; readonly userId: UserId; reply?: Reply }> = []
          for (const [round, { buyers, pause }] of run.rounds.entries()) {
            for (const index of buyers) {
              const asked: { readonly round: number; readonly userId: UserId; reply?: Reply } = {
                round,
                userId: users[index] as UserId
              }
              answers.push(asked)
              actor.offer(asked.userId, (reply) => {
                assert.isUndefined(asked.reply, "answered twice")
                asked.reply = reply
              })
            }
            yield* pause === 0 ? Effect.yieldNow : Effect.sleep(`${pause} millis`)
          }
          yield* until(() => answers.every((a) => a.reply !== undefined))
          yield* registry.stop(saleId)
          const stored = yield* storedOrders(saleId)

          const orderOf = new Map<UserId, OrderId>()
          const together = new Map<string, string>()
          for (const { round, userId, reply } of answers) {
            if (reply === undefined) continue
            if (reply._tag === "Accepted" || reply._tag === "AlreadyPurchased") {
              assert.strictEqual(stored.get(reply.orderId), userId, "a purchased answer without its row")
              assert.strictEqual(
                orderOf.get(userId) ?? reply.orderId,
                reply.orderId,
                "two orders for one buyer"
              )
              orderOf.set(userId, reply.orderId)
            }
            const key = `${round} ${userId}`
            assert.strictEqual(
              together.get(key) ?? meaning(reply),
              meaning(reply),
              "attempts offered together disagree"
            )
            together.set(key, meaning(reply))
          }
          for (const [orderId, userId] of stored)
            assert.strictEqual(orderOf.get(userId), orderId, "a row nobody was told")
          assert.isAtMost(stored.size, run.stock)
        })

      return Effect.gen(function* () {
        const services = yield* Effect.context<Effect.Services<ReturnType<typeof runOnce>>>()
        const run = Effect.runPromiseWith(services)
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(schedule, (s) => run(runOnce(s))),
            { numRuns: 30 }
          )
        )
      }).pipe(Effect.provide(SaleRegistry.make(options).pipe(Layer.provide(faultyStore(plan)))))
    })
  }
)

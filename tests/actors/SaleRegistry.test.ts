import { assert, describe, it as plain, layer } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { SaleView } from "../../src/actors/SaleActor.ts"
import { isIdle, SaleRegistry, type RegistryOptions } from "../../src/actors/SaleRegistry.ts"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import { awaitReply, type Refusal, type Reply } from "../../src/domain/Reply.ts"
import { Audit, checkInvariants, violations } from "../../src/storage/Audit.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { OrderStore } from "../../src/storage/OrderStore.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"
import { TestDatabase, testDatabaseMode } from "../support/TestDatabase.ts"

const Storage = Layer.mergeAll(Catalog.layer, OrderStore.layer, Audit.layer).pipe(
  Layer.provideMerge(TestDatabase.layer)
)

// Idle after 500 ms without an offer, looked for every 50 ms.
const idle: RegistryOptions = {
  mailboxCapacity: 1_000,
  maxBatchSize: 100,
  idleMillis: 500,
  sweepMillis: 50
}

const ownerEpoch = (saleId: SaleId) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{
      epoch: number
    }>`SELECT owner_epoch AS epoch FROM stocks WHERE sale_id = ${saleId}`
    return rows[0]?.epoch
  })

/** Waits for a condition another fiber makes true, looking every few milliseconds. */
const until = (condition: () => boolean) =>
  Effect.gen(function* () {
    while (!condition()) yield* Effect.sleep("5 millis")
  }).pipe(Effect.timeout("5 seconds"))

/** Offers straight to the actor, the way the router and the fast path do. */
const offer = (saleId: SaleId, userId: UserId) =>
  Effect.gen(function* () {
    const actor = yield* (yield* SaleRegistry).actor(saleId)
    return yield* Effect.exit(awaitReply<Refusal>((reply) => actor.offer(userId, reply)))
  })

layer(Storage, { timeout: 60_000, excludeTestServices: true })(
  `sale registry on ${testDatabaseMode} PostgreSQL`,
  (it) => {
    it.effect("keeps a sale with a steady trickle of offers under one epoch, past several idle periods", () =>
      Effect.gen(function* () {
        const registry = yield* SaleRegistry
        const users = yield* makeUsers(20)
        const saleId = yield* makeSale(100)
        const actor = yield* registry.actor(saleId)
        const epoch = yield* ownerEpoch(saleId)
        assert.strictEqual(epoch, actor.epoch)
        // One offer every 100 ms for 2.6 s, each answered in its own time (a slow commit does
        // not delay the next): five idle periods, never 500 ms without an offer. Half of them
        // are repeats, which count as use as much as new buyers do.
        const answered: Array<Fiber.Fiber<unknown, unknown>> = []
        for (let i = 0; i < 26; i++) {
          answered.push(yield* Effect.forkChild(offer(saleId, users[i % 13]!)))
          yield* Effect.sleep("100 millis")
          assert.strictEqual(registry.running(saleId), actor, `restarted after ${i + 1} offers`)
        }
        yield* Fiber.joinAll(answered)
        assert.strictEqual(yield* ownerEpoch(saleId), epoch, "one epoch for the whole trickle")
        assert.strictEqual(registry.running(saleId), actor)
      }).pipe(Effect.provide(SaleRegistry.make(idle)))
    )

    it.effect("stops a sale that nobody offers to, and starts it again under a new epoch on demand", () =>
      Effect.gen(function* () {
        const registry = yield* SaleRegistry
        const users = yield* makeUsers(2)
        const saleId = yield* makeSale(10)
        yield* offer(saleId, users[0]!)
        const actor = registry.running(saleId)
        assert.isDefined(actor)
        assert.strictEqual(yield* actor?.stopped ?? Effect.never, "stopped")
        assert.isAtLeast(Date.now() - (actor?.view(Date.now()).lastActiveAt ?? 0), idle.idleMillis)
        yield* until(() => registry.running(saleId) === undefined)
        yield* offer(saleId, users[1]!)
        const again = registry.running(saleId)
        assert.isDefined(again)
        assert.notStrictEqual(again, actor)
        assert.strictEqual(yield* ownerEpoch(saleId), again?.epoch)
        assert.isAbove(again?.epoch ?? 0, actor?.epoch ?? 0)
      }).pipe(Effect.provide(SaleRegistry.make(idle)))
    )

    it.effect(
      "closing with purchases and repeats still queued answers each one, stores each accepted order, and ends",
      () =>
        Effect.gen(function* () {
          const users = yield* makeUsers(150)
          const saleId = yield* makeSale(100)
          const answers: Array<{ readonly userId: UserId; readonly reply: Reply }> = []
          // Every buyer twice, then the registry's scope closes at once: the actor drains while
          // it closes, with its first batches staged and not yet taken by a commit.
          const closing = yield* Effect.gen(function* () {
            const actor = yield* (yield* SaleRegistry).actor(saleId)
            for (const userId of [...users, ...users])
              actor.offer(userId, (reply) => answers.push({ userId, reply }))
          }).pipe(Effect.provide(SaleRegistry.make(idle)), Effect.forkDetach)
          // An actor that never stops holds the close for ever, and a close cannot be
          // interrupted: it is awaited from outside, with a bound.
          const closed = yield* Effect.timeoutOption(Fiber.await(closing), "10 seconds")
          assert.isTrue(
            closed._tag === "Some" && closed.value._tag === "Success",
            "the registry did not close"
          )
          assert.strictEqual(answers.length, 2 * users.length, "every purchase is answered")
          // Every purchased answer (either of a buyer's two) names its buyer's one row, and every
          // row was told: the invariants as every purchase suite checks them.
          const confirmed = new Map<OrderId, UserId>()
          for (const { userId, reply } of answers)
            if (reply._tag === "Accepted" || reply._tag === "AlreadyPurchased")
              confirmed.set(reply.orderId, userId)
          assert.isAbove(confirmed.size, 0)
          const report = checkInvariants(yield* (yield* Audit).read(saleId), confirmed)
          assert.strictEqual(violations(report), 0, JSON.stringify(report))
          assert.strictEqual(report.unconfirmedRows, 0, "a row nobody was told")
        })
    )
  }
)

describe("isIdle", () => {
  const view = (over: Partial<SaleView>): SaleView => ({
    saleId: "00000000-0000-4000-8000-000000000001" as SaleId,
    epoch: 1,
    total: 10,
    remaining: 5,
    startsAt: 0,
    endsAt: 10_000,
    status: "active",
    mailboxDepth: 0,
    heldOrders: 0,
    holdsDueAt: undefined,
    lastActiveAt: 1_000,
    ...over
  })

  plain("stops a running sale only after idleMillis without an offer", () => {
    assert.isFalse(isIdle(view({}), 1_000 + idle.idleMillis - 1, idle))
    assert.isTrue(isIdle(view({}), 1_000 + idle.idleMillis, idle))
  })

  plain("counts a queued purchase as activity, however old the last decision", () => {
    assert.isFalse(isIdle(view({ mailboxDepth: 3 }), 1_000_000, idle))
  })

  plain("keeps a sale with orders held for payment, ended or idle: their deadlines are its to keep", () => {
    assert.isFalse(isIdle(view({ heldOrders: 1 }), 1_000_000, idle))
    assert.isFalse(isIdle(view({ heldOrders: 2, status: "ended" }), 1_000_000, idle))
  })

  plain("stops an ended or cancelled sale after one sweep without offers", () => {
    assert.isTrue(isIdle(view({ status: "ended" }), 1_000 + (idle.sweepMillis ?? 0), idle))
    assert.isTrue(isIdle(view({ status: "cancelled" }), 1_000 + (idle.sweepMillis ?? 0), idle))
    assert.isFalse(isIdle(view({ status: "ended" }), 1_000 + (idle.sweepMillis ?? 0) - 1, idle))
  })
})

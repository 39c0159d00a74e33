import { assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { SaleRegistry, type RegistryOptions } from "../../src/actors/SaleRegistry.ts"
import type { SaleId, UserId } from "../../src/domain/Ids.ts"
import { awaitReply, type Refusal } from "../../src/domain/Reply.ts"
import { Audit } from "../../src/storage/Audit.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { OrderStore } from "../../src/storage/OrderStore.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"
import { TestDatabase, testDatabaseMode } from "../support/TestDatabase.ts"

const Storage = Layer.mergeAll(Catalog.layer, OrderStore.layer, Audit.layer).pipe(
  Layer.provideMerge(TestDatabase.layer)
)

// Idle after 300 ms without an offer, looked for every 50 ms.
const idle: RegistryOptions = {
  mailboxCapacity: 1_000,
  maxBatchSize: 100,
  idleMillis: 300,
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
        // One offer every 100 ms for 1.6 s: five idle periods, never 300 ms without an offer.
        // Half of them repeats, which count as use as much as new buyers do.
        for (let i = 0; i < 16; i++) {
          yield* offer(saleId, users[i % 10]!)
          assert.strictEqual(registry.running(saleId), actor, `restarted after ${i} offers`)
          yield* Effect.sleep("100 millis")
        }
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
  }
)

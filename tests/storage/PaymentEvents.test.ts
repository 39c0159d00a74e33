import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { randomUUID } from "node:crypto"
import type { OrderId } from "../../src/domain/Ids.ts"
import type { PaymentEvent } from "../../src/domain/Payments.ts"
import { PaymentEvents } from "../../src/storage/PaymentEvents.ts"
import { TestDatabase } from "../support/TestDatabase.ts"

// Migration 0012 is the node's own: the test database has it like every other.
const Migrated = TestDatabase.layer

const eventFor = (orderId: OrderId, kind: PaymentEvent["kind"], at: number): PaymentEvent => ({
  eventId: `evt_${randomUUID()}`,
  intentId: "pi_test",
  orderId,
  kind,
  at
})

describe("PaymentEvents", () => {
  it.layer(PaymentEvents.layer.pipe(Layer.provideMerge(Migrated)), { timeout: 60_000 })((it) => {
    it.effect("an event is new once: a replay of its id is not, and changes nothing", () =>
      Effect.gen(function* () {
        const events = yield* PaymentEvents
        const orderId = randomUUID() as OrderId
        const paid = eventFor(orderId, "succeeded", 1_764_500_000_123)
        assert.isTrue(yield* events.record(paid))
        assert.isFalse(yield* events.record(paid))
        // Even a replay claiming something else under the same id is the same event.
        assert.isFalse(yield* events.record({ ...paid, kind: "failed" }))
        const recorded = yield* events.ofOrder(orderId)
        assert.strictEqual(recorded.length, 1)
        assert.deepInclude(recorded[0], { eventId: paid.eventId, kind: "succeeded", at: paid.at })
      })
    )

    it.effect("deliveries racing each other: exactly one of them finds the event new", () =>
      Effect.gen(function* () {
        const events = yield* PaymentEvents
        const orderId = randomUUID() as OrderId
        const paid = eventFor(orderId, "succeeded", Date.now())
        const answers = yield* Effect.all(
          Array.from({ length: 8 }, () => events.record(paid)),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(answers.filter((isNew) => isNew).length, 1)
      })
    )

    it.effect("inside a transaction that rolls back, the receipt goes too: the event is new again", () =>
      Effect.gen(function* () {
        const events = yield* PaymentEvents
        const sql = yield* SqlClient.SqlClient
        const paid = eventFor(randomUUID() as OrderId, "succeeded", Date.now())
        const failed = yield* Effect.flip(
          sql.withTransaction(
            Effect.gen(function* () {
              assert.isTrue(yield* events.record(paid))
              return yield* Effect.fail("the state change failed" as const)
            })
          )
        )
        assert.strictEqual(failed, "the state change failed")
        assert.isTrue(yield* events.record(paid))
      })
    )

    it.effect("an order's events come back oldest first", () =>
      Effect.gen(function* () {
        const events = yield* PaymentEvents
        const orderId = randomUUID() as OrderId
        const refunded = eventFor(orderId, "refunded", 2_000)
        const paid = eventFor(orderId, "succeeded", 1_000)
        yield* events.record(refunded)
        yield* events.record(paid)
        yield* events.record(eventFor(randomUUID() as OrderId, "failed", 1_500))
        const kinds = (yield* events.ofOrder(orderId)).map((event) => event.kind)
        assert.deepStrictEqual(kinds, ["succeeded", "refunded"])
      })
    )
  })
})

import { Context, Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import type { OrderId } from "../domain/Ids.ts"
import type { PaymentEvent, PaymentEventKind } from "../domain/Payments.ts"

/**
 * Migration "0012_payments": every provider event the node received, keyed by the provider's
 * own event id, so that a delivery repeated by the provider (or replayed by anyone within the
 * signature's tolerance) finds its id taken and changes nothing. No foreign key to orders:
 * orders carry none either (see 0003), and an event is kept even when its order is not known.
 */
export const paymentEventsMigration = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE payment_events (
      event_id text PRIMARY KEY CHECK (length(event_id) BETWEEN 1 AND 255),
      intent_id text NOT NULL CHECK (length(intent_id) BETWEEN 1 AND 255),
      order_id uuid NOT NULL,
      kind text NOT NULL CHECK (kind IN ('succeeded', 'failed', 'refunded')),
      occurred_at timestamptz NOT NULL,
      received_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`CREATE INDEX payment_events_order ON payment_events (order_id, occurred_at)`
})

/**
 * Stores the event unless its id is taken: true the first time. Run in the transaction of the
 * change the event causes (Checkout.apply), so the event changes state at most once.
 */
export const recordEvent = (sql: SqlClient.SqlClient, event: PaymentEvent) =>
  Effect.map(
    sql`
      INSERT INTO payment_events (event_id, intent_id, order_id, kind, occurred_at)
      VALUES (${event.eventId}, ${event.intentId}, ${event.orderId}, ${event.kind},
              to_timestamp(${event.at}::float8 / 1000.0))
      ON CONFLICT (event_id) DO NOTHING
      RETURNING event_id`,
    (inserted) => inserted.length === 1
  )

/** A received event, as recorded. */
export interface ReceivedEvent {
  readonly eventId: string
  readonly intentId: string
  readonly orderId: OrderId
  readonly kind: PaymentEventKind
  readonly at: number
  readonly receivedAt: Date
}

/**
 * The receipts of provider events. `record` is the gate that makes each event change state at
 * most once: run it in the same transaction as the change the event causes, and apply the
 * change only when it says the event is new; the webhook is answered 2xx after that commit.
 */
export class PaymentEvents extends Context.Service<
  PaymentEvents,
  {
    /** Stores the event; true the first time its id is seen, false for every repeat. */
    readonly record: (event: PaymentEvent) => Effect.Effect<boolean, SqlError.SqlError>
    /** An order's events, oldest first. */
    readonly ofOrder: (orderId: OrderId) => Effect.Effect<ReadonlyArray<ReceivedEvent>, SqlError.SqlError>
  }
>()("mincommerce/storage/PaymentEvents") {
  static readonly layer = Layer.effect(
    PaymentEvents,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient

      const record = Effect.fn("PaymentEvents.record")(function* (event: PaymentEvent) {
        return yield* recordEvent(sql, event)
      })

      const ofOrder = Effect.fn("PaymentEvents.ofOrder")(function* (orderId: OrderId) {
        const rows = yield* sql<{
          eventId: string
          intentId: string
          orderId: OrderId
          kind: PaymentEventKind
          at: number
          receivedAt: Date
        }>`
          SELECT event_id AS "eventId", intent_id AS "intentId", order_id AS "orderId", kind,
                 (extract(epoch FROM occurred_at) * 1000)::float8 AS at, received_at AS "receivedAt"
          FROM payment_events WHERE order_id = ${orderId}
          ORDER BY occurred_at, received_at`
        return rows.map((row) => ({ ...row, at: Math.round(Number(row.at)) }))
      })

      return PaymentEvents.of({ record, ofOrder })
    })
  )
}

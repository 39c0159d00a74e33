import { Context, Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import type { OrderId, SaleId, UserId } from "../domain/Ids.ts"
import type { PaymentEvent } from "../domain/Payments.ts"
import { recordEvent } from "./PaymentEvents.ts"

/**
 * Migration "0013_checkout". The order row is the arbiter between a payment and the hold's
 * end: each is a conditional UPDATE of a row still 'reserved', so PostgreSQL's row lock puts
 * them in one order and the second sees what the first did. A payment may therefore be applied
 * by whichever node the provider's webhook reaches, owner or not, alive owner or not:
 *
 * - `end_holds` is the owner's expiry: fenced by its epoch, it expires the due rows still
 *   'reserved', gives their units back on the stock row, and tells the owner what became of
 *   every due row, so it frees in memory exactly what ended (a row paid or cancelled meanwhile
 *   is not expired).
 * - A buyer's cancellation ends the row and gives its unit back on the stock row at once, in
 *   one transaction, unfenced: it changes nothing the owner could have decided, and the owner's
 *   memory, which frees the unit when it learns, only ever undersells meanwhile.
 * - `refunds` keeps each payment that found its hold ended until the provider took it back:
 *   the webhook that brought it is answered 2xx only once the refund is made, so a failed
 *   refund call is tried again with the provider's next delivery.
 * - One live (reserved or paid) order per buyer and sale is what the unique index holds now,
 *   so a buyer whose hold lapsed can buy again where the sale allows it.
 * - `orders.payment_intent` names the intent that paid, so a second delivery of that payment
 *   under another event id changes nothing, and another intent's payment is refunded.
 */
export const checkoutMigration = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE flash_sales ADD COLUMN repurchase_after_lapse boolean NOT NULL DEFAULT false`
  yield* sql`ALTER TABLE orders ADD COLUMN payment_intent text`
  // One live order per buyer and sale, where it was one order at all: a buyer whose hold
  // lapsed may buy again in a sale that allows it, and both rows stay.
  yield* sql`ALTER TABLE orders DROP CONSTRAINT orders_sale_id_user_id_key`
  yield* sql`
    CREATE UNIQUE INDEX orders_one_live_per_buyer ON orders (sale_id, user_id)
    WHERE status IN ('reserved', 'paid')`
  yield* sql`
    CREATE TABLE refunds (
      intent_id text PRIMARY KEY,
      order_id uuid NOT NULL,
      event_id text NOT NULL,
      reason text NOT NULL,
      requested_at timestamptz NOT NULL DEFAULT now(),
      refund_id text,
      refunded_at timestamptz
    )`
  yield* sql`CREATE INDEX refunds_order ON refunds (order_id)`
  // A hold sale's batch (migration 0011's overload, its signature kept): the orders go in as
  // they are, reserved until their pay_by, in one insert, where 0011 wrote them final through
  // the inner batch and then changed each row. The inner batch records the attempts, refusals
  // and entries and fences the stock row; the units are then taken from it here.
  yield* sql`
    CREATE OR REPLACE FUNCTION commit_batch(
      p_batch uuid, p_sale uuid, p_epoch integer,
      p_order_ids uuid[], p_order_users uuid[], p_order_at float8[],
      p_attempt_users uuid[], p_attempt_outcomes text[], p_attempt_at float8[],
      p_refusal_outcomes text[], p_refusal_counts integer[],
      p_refusal_first float8[], p_refusal_last float8[],
      p_entry_ids uuid[], p_entry_users uuid[], p_entry_at float8[],
      p_order_pay_by float8[],
      p_paid_ids uuid[], p_paid_at float8[],
      p_ended_ids uuid[], p_ended_status text[]
    ) RETURNS integer LANGUAGE plpgsql AS $$
    DECLARE
      left_over integer;
      freed integer := 0;
      taken integer := coalesce(cardinality(p_order_ids), 0);
    BEGIN
      -- Ended holds: the order rows first, then the stock row, as end_holds and cancellations
      -- take them; a stale epoch found there rolls the whole batch back.
      IF coalesce(cardinality(p_ended_ids), 0) > 0 THEN
        WITH ended AS (
          UPDATE orders o SET status = e.status
          FROM unnest(p_ended_ids, p_ended_status) AS e (id, status)
          WHERE o.id = e.id AND o.sale_id = p_sale AND o.status = 'reserved'
            AND e.status IN ('expired', 'cancelled')
          RETURNING o.id)
        SELECT count(*) INTO freed FROM ended;
        UPDATE stocks SET available = available + freed, updated_at = now()
        WHERE sale_id = p_sale AND owner_epoch = p_epoch;
        IF NOT FOUND THEN
          RAISE EXCEPTION 'sale %: epoch % is stale', p_sale, p_epoch USING ERRCODE = 'MCSTL';
        END IF;
      END IF;
      IF taken > 0 THEN
        INSERT INTO orders (id, sale_id, user_id, price_cents, owner_epoch, created_at, status, pay_by)
        SELECT o.id, f.id, o.user_id, f.price_cents, p_epoch, to_timestamp(o.at / 1000.0),
               CASE WHEN o.pay_by IS NULL THEN 'paid' ELSE 'reserved' END, to_timestamp(o.pay_by / 1000.0)
        FROM unnest(p_order_ids, p_order_users, p_order_at, p_order_pay_by) AS o (id, user_id, at, pay_by)
        CROSS JOIN flash_sales f WHERE f.id = p_sale;
      END IF;
      left_over := commit_batch(
        p_batch, p_sale, p_epoch, '{}'::uuid[], '{}'::uuid[], '{}'::float8[],
        p_attempt_users, p_attempt_outcomes, p_attempt_at,
        p_refusal_outcomes, p_refusal_counts, p_refusal_first, p_refusal_last,
        p_entry_ids, p_entry_users, p_entry_at);
      -- Fenced from here on: the inner call's UPDATE holds the stock row under our epoch.
      IF taken > 0 THEN
        UPDATE stocks SET available = available - taken, updated_at = now()
        WHERE sale_id = p_sale AND owner_epoch = p_epoch AND available >= taken
        RETURNING available INTO left_over;
        IF NOT FOUND THEN
          RAISE EXCEPTION 'sale %: batch of % exceeds the stock', p_sale, taken USING ERRCODE = 'MCOVR';
        END IF;
        UPDATE commit_batches SET orders = taken WHERE batch_id = p_batch;
        IF left_over = 0 THEN
          UPDATE flash_sales SET sold_out_at = now() WHERE id = p_sale AND sold_out_at IS NULL;
        END IF;
      END IF;
      IF coalesce(cardinality(p_paid_ids), 0) > 0 THEN
        UPDATE orders o SET status = 'paid', paid_at = to_timestamp(p.at / 1000.0)
        FROM unnest(p_paid_ids, p_paid_at) AS p (id, at)
        WHERE o.id = p.id AND o.sale_id = p_sale AND o.status = 'reserved';
      END IF;
      RETURN left_over;
    END
    $$`
  yield* sql`
    CREATE FUNCTION end_holds(p_sale uuid, p_epoch integer, p_ids uuid[])
    RETURNS TABLE (order_id uuid, order_status text) LANGUAGE plpgsql AS $$
    DECLARE
      freed integer;
    BEGIN
      -- The order rows first, the stock row last (as batches and cancellations take them), so
      -- purchase batches queue for the stock row only for the end of this one; a stale epoch
      -- found there rolls the expiries back with it.
      WITH ended AS (
        UPDATE orders o SET status = 'expired'
        WHERE o.id = ANY (p_ids) AND o.sale_id = p_sale AND o.status = 'reserved'
        RETURNING o.id)
      SELECT count(*) INTO freed FROM ended;
      UPDATE stocks SET available = available + freed, updated_at = now()
      WHERE sale_id = p_sale AND owner_epoch = p_epoch;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'sale %: epoch % is stale', p_sale, p_epoch USING ERRCODE = 'MCSTL';
      END IF;
      RETURN QUERY SELECT o.id, o.status FROM orders o WHERE o.id = ANY (p_ids) AND o.sale_id = p_sale;
    END
    $$`
})

export type OrderStatus = "reserved" | "paid" | "expired" | "cancelled" | "refunded"

/** One order as its buyer (or an admin) sees it; times in epoch ms. */
export interface OrderRecord {
  readonly orderId: OrderId
  readonly saleId: SaleId
  readonly userId: UserId
  readonly status: OrderStatus
  readonly priceCents: number
  readonly createdAt: number
  readonly payBy: number | null
  readonly paidAt: number | null
}

/** What a provider event did. */
export type Applied =
  /** The hold was paid in time: the order is final. */
  | { readonly _tag: "Paid"; readonly saleId: SaleId; readonly userId: UserId }
  /** A payment for a hold that had ended (or was paid by another intent): to refund. */
  | { readonly _tag: "Late"; readonly reason: string }
  /** The event id was seen before: nothing changed. */
  | { readonly _tag: "Duplicate" }
  /** Recorded, nothing else to change (a declined payment, a refund confirmed, a known payment again). */
  | { readonly _tag: "Recorded" }

/** What a cancellation did. */
export type Cancellation =
  | { readonly _tag: "Cancelled"; readonly order: OrderRecord }
  | { readonly _tag: "NotCancellable"; readonly order: OrderRecord }
  | { readonly _tag: "NotFound" }

export interface RefundDue {
  readonly intentId: string
  readonly orderId: OrderId
  readonly reason: string
}

export interface StatusCounts {
  readonly reserved: number
  readonly paid: number
  readonly expired: number
  readonly cancelled: number
  readonly refunded: number
}

/** Orders through checkout: reads, provider events, cancellations, refunds. */
export class Checkout extends Context.Service<
  Checkout,
  {
    readonly order: (orderId: OrderId) => Effect.Effect<OrderRecord | undefined, SqlError.SqlError>
    /**
     * Records the event and applies it, in one transaction: at most once per event id. The
     * payment time is the provider's, never later than now.
     */
    readonly apply: (event: PaymentEvent) => Effect.Effect<Applied, SqlError.SqlError>
    /** The buyer's held order ends now and its unit goes back on the stock row. */
    readonly cancel: (orderId: OrderId, userId: UserId) => Effect.Effect<Cancellation, SqlError.SqlError>
    /** Payments of this order still to be given back. */
    readonly refundsDue: (orderId: OrderId) => Effect.Effect<ReadonlyArray<RefundDue>, SqlError.SqlError>
    readonly refunded: (intentId: string, refundId: string) => Effect.Effect<void, SqlError.SqlError>
    readonly counts: (saleId: SaleId) => Effect.Effect<StatusCounts, SqlError.SqlError>
    /** Sales with a hold still reserved this long past its deadline: their owner is gone. */
    readonly overdue: (graceMillis: number) => Effect.Effect<ReadonlyArray<SaleId>, SqlError.SqlError>
  }
>()("mincommerce/storage/Checkout") {
  static readonly layer = Layer.effect(
    Checkout,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const columns = sql`
        id AS "orderId", sale_id AS "saleId", user_id AS "userId", status,
        price_cents AS "priceCents",
        (extract(epoch FROM created_at) * 1000)::float8 AS "createdAt",
        (extract(epoch FROM pay_by) * 1000)::float8 AS "payBy",
        (extract(epoch FROM paid_at) * 1000)::float8 AS "paidAt"`
      const toRecord = (row: OrderRecord): OrderRecord => ({
        ...row,
        createdAt: Math.round(Number(row.createdAt)),
        payBy: row.payBy === null ? null : Math.round(Number(row.payBy)),
        paidAt: row.paidAt === null ? null : Math.round(Number(row.paidAt))
      })

      const order = Effect.fn("Checkout.order")(function* (orderId: OrderId) {
        const rows = yield* sql<OrderRecord>`SELECT ${columns} FROM orders WHERE id = ${orderId}`
        return rows[0] === undefined ? undefined : toRecord(rows[0])
      })

      const late = (event: PaymentEvent, reason: string) =>
        sql`
          INSERT INTO refunds (intent_id, order_id, event_id, reason)
          VALUES (${event.intentId}, ${event.orderId}, ${event.eventId}, ${reason})
          ON CONFLICT (intent_id) DO NOTHING`.pipe(Effect.as<Applied>({ _tag: "Late", reason }))

      const succeeded = Effect.fnUntraced(function* (event: PaymentEvent) {
        const paid = yield* sql<{ saleId: SaleId; userId: UserId }>`
          UPDATE orders SET status = 'paid', payment_intent = ${event.intentId},
                 paid_at = least(to_timestamp(${event.at}::float8 / 1000.0), now())
          WHERE id = ${event.orderId} AND status = 'reserved'
            AND pay_by > least(to_timestamp(${event.at}::float8 / 1000.0), now())
          RETURNING sale_id AS "saleId", user_id AS "userId"`
        const row = paid[0]
        if (row !== undefined) return { _tag: "Paid", saleId: row.saleId, userId: row.userId } as Applied
        const found = yield* sql<{ status: OrderStatus; intent: string | null }>`
          SELECT status, payment_intent AS intent FROM orders WHERE id = ${event.orderId}`
        const current = found[0]
        if (current === undefined) return yield* late(event, "unknown_order")
        // The same payment delivered again under another event id: it paid already.
        if (current.status === "paid" && current.intent === event.intentId)
          return { _tag: "Recorded" } as Applied
        return yield* late(event, current.status === "reserved" ? "after_deadline" : current.status)
      })

      const apply = Effect.fn("Checkout.apply")(function* (event: PaymentEvent) {
        if (!(yield* recordEvent(sql, event))) return { _tag: "Duplicate" } as Applied
        switch (event.kind) {
          case "succeeded":
            return yield* succeeded(event)
          case "refunded":
            // The money of a late payment is back: the order, ended already, says so.
            yield* sql`
                UPDATE refunds SET refunded_at = coalesce(refunded_at, now())
                WHERE intent_id = ${event.intentId}`
            yield* sql`
                UPDATE orders SET status = 'refunded'
                WHERE id = ${event.orderId} AND status IN ('expired', 'cancelled')
                  AND EXISTS (SELECT 1 FROM refunds WHERE intent_id = ${event.intentId})`
            return { _tag: "Recorded" } as Applied
          case "failed":
            return { _tag: "Recorded" } as Applied
        }
      }, sql.withTransaction)

      const cancel = Effect.fn("Checkout.cancel")(function* (orderId: OrderId, userId: UserId) {
        // The order row, then the stock row, as the owner's expiry (end_holds) takes them.
        const ended = yield* sql<{ saleId: SaleId }>`
            UPDATE orders SET status = 'cancelled'
            WHERE id = ${orderId} AND user_id = ${userId} AND status = 'reserved' AND pay_by > now()
            RETURNING sale_id AS "saleId"`
        const row = ended[0]
        if (row !== undefined)
          yield* sql`
              UPDATE stocks SET available = available + 1, updated_at = now() WHERE sale_id = ${row.saleId}`
        const current = yield* order(orderId)
        if (current === undefined || current.userId !== userId) return { _tag: "NotFound" } as Cancellation
        return (
          row === undefined
            ? { _tag: "NotCancellable", order: current }
            : { _tag: "Cancelled", order: current }
        ) as Cancellation
      }, sql.withTransaction)

      const refundsDue = Effect.fn("Checkout.refundsDue")(function* (orderId: OrderId) {
        return yield* sql<RefundDue>`
          SELECT intent_id AS "intentId", order_id AS "orderId", reason FROM refunds
          WHERE order_id = ${orderId} AND refund_id IS NULL`
      })

      const refunded = Effect.fn("Checkout.refunded")(function* (intentId: string, refundId: string) {
        yield* sql`UPDATE refunds SET refund_id = ${refundId} WHERE intent_id = ${intentId}`
      })

      const counts = Effect.fn("Checkout.counts")(function* (saleId: SaleId) {
        const rows = yield* sql<{ status: OrderStatus; n: number }>`
          SELECT status, count(*)::int AS n FROM orders WHERE sale_id = ${saleId} GROUP BY status`
        const of = (status: OrderStatus) => rows.find((r) => r.status === status)?.n ?? 0
        return {
          reserved: of("reserved"),
          paid: of("paid"),
          expired: of("expired"),
          cancelled: of("cancelled"),
          refunded: of("refunded")
        }
      })

      // The partial index of pending holds (migration 0011) holds only reserved rows.
      const overdue = Effect.fn("Checkout.overdue")(function* (graceMillis: number) {
        const rows = yield* sql<{ saleId: SaleId }>`
          SELECT DISTINCT sale_id AS "saleId" FROM orders
          WHERE status = 'reserved' AND pay_by < now() - make_interval(secs => ${graceMillis / 1_000})
          LIMIT 100`
        return rows.map((row) => row.saleId)
      })

      return Checkout.of({ order, apply, cancel, refundsDue, refunded, counts, overdue })
    })
  )
}

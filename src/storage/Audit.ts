import { Context, Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import type { OrderId, SaleId, UserId } from "../domain/Ids.ts"
import type { OrderStatus } from "./Checkout.ts"
import { outcomeTotals } from "./SaleStats.ts"

// Reserved and paid orders are live (each holds a unit); the others hold none.
export type { OrderStatus }

const lapsedStatuses: ReadonlySet<OrderStatus> = new Set(["expired", "cancelled", "refunded"])

/** A payment that succeeded for an order (a `succeeded` payment event), by its intent. */
export interface Payment {
  readonly intentId: string
  /**
   * Its money was given back: the provider accepted the refund (`refunds.refund_id`), or
   * confirmed it (`refunds.refunded_at`, a `refunded` event for the intent).
   */
  readonly refunded: boolean
}

/** One order row of a sale, whatever its status, with the payments received for it. */
export interface OrderLifecycle {
  readonly userId: UserId
  readonly status: OrderStatus
  /** The hold's deadline, epoch ms; null for a purchase that was final at once. */
  readonly payBy: number | null
  /** When its payment was taken, epoch ms; null if none was. */
  readonly paidAt: number | null
  /** The intent whose payment made it paid (`orders.payment_intent`), if one did. */
  readonly paymentIntent: string | null
  readonly payments: ReadonlyArray<Payment>
}

/** What PostgreSQL holds for one sale, read back to check the invariants. */
export interface SaleRecord {
  readonly saleId: SaleId
  readonly stock: number
  readonly available: number
  /**
   * Committed live orders (reserved or paid), by id, with their buyer: each holds a unit, so
   * reserved + paid <= stock is I1. An expired or cancelled hold gave its unit back.
   */
  readonly orders: ReadonlyMap<OrderId, UserId>
  /**
   * Every order row of the sale, live or not, with its lifecycle (Audit.read fills it in). A
   * record without it is checked on its live orders alone.
   */
  readonly lifecycle?: ReadonlyMap<OrderId, OrderLifecycle>
}

/** The invariants of a sale's holds and payments: each count is a violation. */
export interface HoldInvariants {
  /** Orders that hold no unit any more: expired, cancelled or refunded (a count, not a violation). */
  readonly lapsed: number
  /**
   * H3: an order that took a payment (paid_at set) and then expired or was cancelled: the
   * buyer paid and lost the unit.
   */
  readonly expiredPaid: number
  /**
   * Succeeded payments the order did not keep (its hold had lapsed or its deadline passed, or
   * another payment paid it) with no refund recorded: buyers who paid for nothing. A refund is
   * recorded once the provider accepted it (`refunds.refund_id`) or confirmed it (a `refunded`
   * event). Counted while the refund is under way, so audit once webhooks have settled.
   */
  readonly paidAfterLapse: number
  /** A paid hold whose payment was taken at or after its deadline: a payment that should have lost. */
  readonly paidLate: number
}

/**
 * A sale's invariants. `checkInvariants` fills in every count; a report summarised elsewhere
 * (a bench's worst case over designs without holds) may leave the hold counts out.
 */
export interface InvariantReport extends Partial<HoldInvariants> {
  /** Live orders (reserved or paid). */
  readonly committed: number
  /** I1: live orders beyond the stock. */
  readonly oversold: number
  /** I2: users with more than one live order. */
  readonly duplicateBuyers: number
  /** The stock row disagrees with the orders (available != stock - live). */
  readonly stockMismatch: number
  /**
   * I3: answered "purchased" (or "reserved"), but no such order for that buyer in PostgreSQL,
   * in any status: a hold that expired since is not a lost order.
   */
  readonly lostConfirmed: number
  /** Orders no caller was told about (allowed only where a reply could be lost). */
  readonly unconfirmedRows: number
}

export const violations = (report: InvariantReport): number =>
  report.oversold +
  report.duplicateBuyers +
  report.stockMismatch +
  report.lostConfirmed +
  (report.expiredPaid ?? 0) +
  (report.paidAfterLapse ?? 0) +
  (report.paidLate ?? 0)

/** The buyer of `orderId` in PostgreSQL, whatever the order's status; undefined if there is no such row. */
export const buyerOf = (record: SaleRecord, orderId: OrderId): UserId | undefined =>
  record.orders.get(orderId) ?? record.lifecycle?.get(orderId)?.userId

/** Every order row's buyer, live or not. */
export const allOrders = (record: SaleRecord): ReadonlyMap<OrderId, UserId> => {
  if (record.lifecycle === undefined) return record.orders
  const all = new Map(record.orders)
  for (const [orderId, order] of record.lifecycle) all.set(orderId, order.userId)
  return all
}

/** H3: it took a payment (paid_at set), then expired or was cancelled: the buyer paid and lost the unit. */
export const paidThenLapsed = (order: OrderLifecycle): boolean =>
  order.paidAt !== null && (order.status === "expired" || order.status === "cancelled")

/**
 * Payments of the order it did not keep and nobody gave back: every succeeded payment either
 * paid the order (it is paid, by that intent) or must be refunded (the hold had lapsed or its
 * deadline passed, or another intent paid it first).
 */
export const unrefundedPayments = (order: OrderLifecycle): number =>
  order.payments.filter(
    (payment) => !(order.status === "paid" && payment.intentId === order.paymentIntent) && !payment.refunded
  ).length

/** A hold marked paid by a payment taken at or after its deadline: that payment should have lost. */
export const paidPastDeadline = (order: OrderLifecycle): boolean =>
  order.status === "paid" && order.payBy !== null && order.paidAt !== null && order.paidAt >= order.payBy

/**
 * Checks a sale's committed rows against the purchases that were answered "accepted"
 * (order id → buyer). Pure, so benchmarks and tests share it and it can be tested alone.
 */
export const checkInvariants = (
  record: SaleRecord,
  confirmed: ReadonlyMap<OrderId, UserId>
): InvariantReport & HoldInvariants => {
  const perUser = new Map<UserId, number>()
  for (const userId of record.orders.values()) perUser.set(userId, (perUser.get(userId) ?? 0) + 1)
  let duplicateBuyers = 0
  for (const count of perUser.values()) if (count > 1) duplicateBuyers++
  let lostConfirmed = 0
  for (const [orderId, userId] of confirmed) if (buyerOf(record, orderId) !== userId) lostConfirmed++
  const rows = allOrders(record)
  let unconfirmedRows = 0
  for (const orderId of rows.keys()) if (!confirmed.has(orderId)) unconfirmedRows++
  let lapsed = 0
  let expiredPaid = 0
  let paidAfterLapse = 0
  let paidLate = 0
  for (const order of record.lifecycle?.values() ?? []) {
    if (lapsedStatuses.has(order.status)) lapsed++
    if (paidThenLapsed(order)) expiredPaid++
    paidAfterLapse += unrefundedPayments(order)
    if (paidPastDeadline(order)) paidLate++
  }
  const committed = record.orders.size
  return {
    committed,
    lapsed,
    oversold: Math.max(0, committed - record.stock),
    duplicateBuyers,
    stockMismatch: record.available === record.stock - committed ? 0 : 1,
    lostConfirmed,
    unconfirmedRows,
    expiredPaid,
    paidAfterLapse,
    paidLate
  }
}

/** Reads back what PostgreSQL has committed for a sale. */
export class Audit extends Context.Service<
  Audit,
  {
    /** The sale's stock row and every order row, with the payments of each and their refunds. */
    readonly read: (saleId: SaleId) => Effect.Effect<SaleRecord, SqlError.SqlError>
    /** Decisions recorded by outcome: a buyer's rows plus the counted refusals. */
    readonly outcomes: (saleId: SaleId) => Effect.Effect<Readonly<Record<string, number>>, SqlError.SqlError>
  }
>()("mincommerce/storage/Audit") {
  static readonly layer = Layer.effect(
    Audit,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const read = Effect.fn("Audit.read")(function* (saleId: SaleId) {
        const stock = yield* sql<{ total: number; available: number }>`
          SELECT total, available FROM stocks WHERE sale_id = ${saleId}`
        const rows = yield* sql<{
          id: OrderId
          userId: UserId
          status: OrderStatus
          payBy: number | null
          paidAt: number | null
          paymentIntent: string | null
        }>`
          SELECT id, user_id AS "userId", status, payment_intent AS "paymentIntent",
                 (extract(epoch FROM pay_by) * 1000)::float8 AS "payBy",
                 (extract(epoch FROM paid_at) * 1000)::float8 AS "paidAt"
          FROM orders WHERE sale_id = ${saleId}`
        const payments = yield* sql<{ orderId: OrderId; intentId: string; refunded: boolean }>`
          WITH events AS (
            SELECT e.order_id, e.intent_id, e.kind
            FROM payment_events e JOIN orders o ON o.id = e.order_id
            WHERE o.sale_id = ${saleId})
          SELECT DISTINCT p.order_id AS "orderId", p.intent_id AS "intentId",
                 (EXISTS (SELECT 1 FROM refunds r WHERE r.intent_id = p.intent_id
                            AND (r.refund_id IS NOT NULL OR r.refunded_at IS NOT NULL))
                  OR EXISTS (SELECT 1 FROM events x WHERE x.intent_id = p.intent_id AND x.kind = 'refunded'))
                   AS refunded
          FROM events p WHERE p.kind = 'succeeded'`
        const paymentsOf = new Map<OrderId, Array<Payment>>()
        for (const payment of payments)
          paymentsOf.set(payment.orderId, [
            ...(paymentsOf.get(payment.orderId) ?? []),
            { intentId: payment.intentId, refunded: payment.refunded }
          ])
        const live = rows.filter((row) => row.status === "reserved" || row.status === "paid")
        const millis = (value: number | null) => (value === null ? null : Number(value))
        return {
          saleId,
          stock: stock[0]?.total ?? 0,
          available: stock[0]?.available ?? 0,
          orders: new Map(live.map((row) => [row.id, row.userId])),
          lifecycle: new Map(
            rows.map((row) => [
              row.id,
              {
                userId: row.userId,
                status: row.status,
                payBy: millis(row.payBy),
                paidAt: millis(row.paidAt),
                paymentIntent: row.paymentIntent,
                payments: paymentsOf.get(row.id) ?? []
              }
            ])
          )
        }
      })
      const outcomes = Effect.fn("Audit.outcomes")(function* (saleId: SaleId) {
        const rows = yield* outcomeTotals(sql, saleId)
        return Object.fromEntries(rows.map((row) => [row.outcome, row.n]))
      })
      return Audit.of({ read, outcomes })
    })
  )
}

import { Context, Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import type { OrderId, SaleId, UserId } from "../domain/Ids.ts"
import { outcomeTotals } from "./SaleStats.ts"

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
}

export interface InvariantReport {
  readonly committed: number
  /** I1: committed orders beyond the stock. */
  readonly oversold: number
  /** I2: users with more than one order. */
  readonly duplicateBuyers: number
  /** The stock row disagrees with the orders (available != stock - committed). */
  readonly stockMismatch: number
  /** I3: answered "purchased", but no such order in PostgreSQL. */
  readonly lostConfirmed: number
  /** Orders no caller was told about (allowed only where a reply could be lost). */
  readonly unconfirmedRows: number
}

export const violations = (report: InvariantReport): number =>
  report.oversold + report.duplicateBuyers + report.stockMismatch + report.lostConfirmed

/**
 * Checks a sale's committed rows against the purchases that were answered "accepted"
 * (order id → buyer). Pure, so benchmarks and tests share it and it can be tested alone.
 */
export const checkInvariants = (
  record: SaleRecord,
  confirmed: ReadonlyMap<OrderId, UserId>
): InvariantReport => {
  const perUser = new Map<UserId, number>()
  for (const userId of record.orders.values()) perUser.set(userId, (perUser.get(userId) ?? 0) + 1)
  let duplicateBuyers = 0
  for (const count of perUser.values()) if (count > 1) duplicateBuyers++
  let lostConfirmed = 0
  for (const [orderId, userId] of confirmed) if (record.orders.get(orderId) !== userId) lostConfirmed++
  let unconfirmedRows = 0
  for (const orderId of record.orders.keys()) if (!confirmed.has(orderId)) unconfirmedRows++
  const committed = record.orders.size
  return {
    committed,
    oversold: Math.max(0, committed - record.stock),
    duplicateBuyers,
    stockMismatch: record.available === record.stock - committed ? 0 : 1,
    lostConfirmed,
    unconfirmedRows
  }
}

/** Reads back what PostgreSQL has committed for a sale. */
export class Audit extends Context.Service<
  Audit,
  {
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
        const rows = yield* sql<{ id: OrderId; userId: UserId }>`
          SELECT id, user_id AS "userId" FROM orders
          WHERE sale_id = ${saleId} AND status IN ('reserved', 'paid')`
        return {
          saleId,
          stock: stock[0]?.total ?? 0,
          available: stock[0]?.available ?? 0,
          orders: new Map(rows.map((row) => [row.id, row.userId]))
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

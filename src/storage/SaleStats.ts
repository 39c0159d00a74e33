import { Context, Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import type { SaleId } from "../domain/Ids.ts"

/** What happened in a sale, from its audit records, orders and commits. */
export interface SaleFigures {
  readonly attempts: number
  readonly byOutcome: Readonly<Record<string, number>>
  readonly committed: number
  readonly soldOutAt: number | null
  /** Orders committed over the last ten seconds, per second. */
  readonly recentPerSecond: number
  /** Server-side duration of the sale's batch transactions, in ms; null before any commit. */
  readonly commitMillis: { readonly p50: number; readonly p99: number } | null
}

/**
 * Every decision of a sale by outcome. A buyer's decisions are rows (purchase_attempts),
 * refusals no history needs are counts per batch (purchase_refusals): both are attempts.
 */
export const outcomeTotals = (sql: SqlClient.SqlClient, saleId: SaleId) =>
  sql<{ outcome: string; n: number }>`
    SELECT outcome, sum(n)::int AS n FROM (
      SELECT outcome, count(*) AS n FROM purchase_attempts WHERE sale_id = ${saleId} GROUP BY outcome
      UNION ALL
      SELECT outcome, sum(count) AS n FROM purchase_refusals WHERE sale_id = ${saleId} GROUP BY outcome
    ) AS recorded GROUP BY outcome`

/** A sale's figures for its admins: read only, never on the purchase path. */
export class SaleStats extends Context.Service<
  SaleStats,
  { readonly of: (saleId: SaleId) => Effect.Effect<SaleFigures, SqlError.SqlError> }
>()("mincommerce/storage/SaleStats") {
  static readonly layer = Layer.effect(
    SaleStats,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient

      const of = Effect.fn("SaleStats.of")(function* (saleId: SaleId) {
        const outcomes = yield* outcomeTotals(sql, saleId)
        const [orders] = yield* sql<{ committed: number; recent: number; soldOutAt: number | null }>`
          SELECT count(*)::int AS committed,
                 count(*) FILTER (WHERE o.created_at > now() - interval '10 seconds')::int AS recent,
                 (SELECT (extract(epoch FROM sold_out_at) * 1000)::float8 FROM flash_sales WHERE id = ${saleId})
                   AS "soldOutAt"
          FROM orders o WHERE o.sale_id = ${saleId} AND o.status IN ('reserved', 'paid')`
        const [latency] = yield* sql<{ p50: number | null; p99: number | null }>`
          SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY millis)::float8 AS p50,
                 percentile_cont(0.99) WITHIN GROUP (ORDER BY millis)::float8 AS p99
          FROM commit_batches WHERE sale_id = ${saleId} AND millis IS NOT NULL`
        const p50 = latency?.p50 ?? null
        const p99 = latency?.p99 ?? null
        const figures: SaleFigures = {
          commitMillis: p50 === null || p99 === null ? null : { p50, p99 },
          attempts: outcomes.reduce((sum, row) => sum + row.n, 0),
          byOutcome: Object.fromEntries(outcomes.map((row) => [row.outcome, row.n])),
          committed: orders?.committed ?? 0,
          soldOutAt: orders?.soldOutAt ?? null,
          recentPerSecond: (orders?.recent ?? 0) / 10
        }
        return figures
      })

      return SaleStats.of({ of })
    })
  )
}

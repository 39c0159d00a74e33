import { Context, Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import type { OrderId, SaleId, UserId } from "../domain/Ids.ts"

/** A draw sale's setup and, once drawn, its outcome's figures. */
export interface DrawSetup {
  readonly drawAt: number
  readonly commitment: string
  /** Revealed only once drawn. */
  readonly seed: string | null
  readonly drawnAt: number | null
  readonly units: number | null
  readonly entriesHash: string | null
}

/** One buyer's entry, as the buyer may see it. */
export interface BuyerEntry {
  readonly entryId: OrderId
  readonly enteredAt: number
  /** Place in draw order (1 = drawn first); null before the draw. */
  readonly place: number | null
  /** Whether the entry became an order (a win, or a place on the waiting list come up). */
  readonly ordered: boolean
}

/** Everything needed to recompute a draw: published only once it is done. */
export interface PublishedDraw extends DrawSetup {
  /** Every entry, by buyer id (the canonical order), with its place in draw order. */
  readonly entries: ReadonlyArray<{
    readonly userId: UserId
    readonly entryId: OrderId
    readonly place: number | null
  }>
}

/** Reads of draws and entries, for buyers and verifiers; the owner alone writes them. */
export class DrawRecords extends Context.Service<
  DrawRecords,
  {
    /** The sale's draw setup; undefined for a first-come sale (or none). */
    readonly setup: (saleId: SaleId) => Effect.Effect<DrawSetup | undefined, SqlError.SqlError>
    readonly entryOf: (
      saleId: SaleId,
      userId: UserId
    ) => Effect.Effect<BuyerEntry | undefined, SqlError.SqlError>
    /** The draw with its entries; the entries are read only once the draw is done. */
    readonly published: (
      saleId: SaleId
    ) => Effect.Effect<
      { readonly setup: DrawSetup; readonly draw: PublishedDraw | undefined } | undefined,
      SqlError.SqlError
    >
  }
>()("mincommerce/storage/DrawRecords") {
  static readonly layer = Layer.effect(
    DrawRecords,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient

      const setup = Effect.fn("DrawRecords.setup")(function* (saleId: SaleId) {
        const rows = yield* sql<DrawSetup>`
          SELECT (extract(epoch FROM f.starts_at) * 1000)::float8 + d.entry_window_ms::float8 AS "drawAt",
                 d.commitment,
                 CASE WHEN d.drawn_at IS NOT NULL THEN d.seed END AS seed,
                 (extract(epoch FROM d.drawn_at) * 1000)::float8 AS "drawnAt",
                 d.units, d.entries_hash AS "entriesHash"
          FROM sale_draws d JOIN flash_sales f ON f.id = d.sale_id
          WHERE d.sale_id = ${saleId} AND f.allocation = 'draw'`
        return rows[0]
      })

      const entryOf = Effect.fn("DrawRecords.entryOf")(function* (saleId: SaleId, userId: UserId) {
        const rows = yield* sql<BuyerEntry>`
          SELECT e.entry_id AS "entryId", e.entered_at AS "enteredAt", e.place,
                 EXISTS (SELECT 1 FROM orders o WHERE o.id = e.entry_id) AS ordered
          FROM sale_entries e WHERE e.sale_id = ${saleId} AND e.user_id = ${userId}`
        return rows[0]
      })

      const published = Effect.fn("DrawRecords.published")(function* (saleId: SaleId) {
        const found = yield* setup(saleId)
        if (found === undefined) return undefined
        if (found.drawnAt === null) return { setup: found, draw: undefined }
        const entries = yield* sql<{ userId: UserId; entryId: OrderId; place: number | null }>`
          SELECT user_id AS "userId", entry_id AS "entryId", place
          FROM sale_entries WHERE sale_id = ${saleId} ORDER BY user_id`
        return { setup: found, draw: { ...found, entries } }
      })

      return DrawRecords.of({ setup, entryOf, published })
    })
  )
}

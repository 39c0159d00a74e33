import { Context, Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import type { ProductId, SaleId, UserId } from "../domain/Ids.ts"

/** A sale as stored, with its stock row. */
export interface SaleRow {
  readonly saleId: SaleId
  readonly productName: string
  readonly priceCents: number
  readonly startsAt: number
  readonly endsAt: number
  readonly cancelled: boolean
  readonly total: number
  readonly available: number
}

export interface SaleChanges {
  readonly priceCents?: number | undefined
  readonly stock?: number | undefined
  readonly startsAt?: number | undefined
  readonly endsAt?: number | undefined
}

export interface SaleStats {
  readonly attempts: number
  readonly byOutcome: Readonly<Record<string, number>>
  readonly committed: number
  readonly soldOutAt: number | null
  /** Orders committed over the last ten seconds, per second. */
  readonly recentPerSecond: number
  /** Server-side duration of the sale's batch transactions, in ms; null before any commit. */
  readonly commitMillis: { readonly p50: number; readonly p99: number } | null
}

export interface NewSale {
  readonly productId: ProductId
  readonly priceCents: number
  readonly stock: number
  readonly startsAt: number
  readonly endsAt: number
}

/** Users, products and sales: everything but the orders, which only a sale's owner writes. */
export class Catalog extends Context.Service<
  Catalog,
  {
    /** The user with this email, created on first sight. */
    readonly userByEmail: (email: string) => Effect.Effect<UserId, SqlError.SqlError>
    /** Creates one user per email (existing ones are kept) and returns all their ids, in order. */
    readonly usersByEmail: (
      emails: ReadonlyArray<string>
    ) => Effect.Effect<ReadonlyArray<UserId>, SqlError.SqlError>
    readonly createProduct: (name: string, description: string) => Effect.Effect<ProductId, SqlError.SqlError>
    /** Creates the sale and its stock row in one transaction. */
    readonly createSale: (sale: NewSale) => Effect.Effect<SaleId, SqlError.SqlError>
    readonly sale: (saleId: SaleId) => Effect.Effect<SaleRow | undefined, SqlError.SqlError>
    /** The sale running now, else the next one to start (the seed API's "current" sale). */
    readonly currentSale: () => Effect.Effect<SaleRow | undefined, SqlError.SqlError>
    /** Every sale, newest start first. */
    readonly sales: () => Effect.Effect<ReadonlyArray<SaleRow>, SqlError.SqlError>
    readonly updateProduct: (
      productId: ProductId,
      changes: { readonly name?: string | undefined; readonly description?: string | undefined }
    ) => Effect.Effect<boolean, SqlError.SqlError>
    /**
     * Changes a sale that has not started (schedule, price, stock). "missing" when there is no
     * such sale, "started" when it is running, over or cancelled: then nothing changes.
     */
    readonly updateSale: (
      saleId: SaleId,
      changes: SaleChanges
    ) => Effect.Effect<"updated" | "missing" | "started" | "cancelled", SqlError.SqlError>
    readonly saleStats: (saleId: SaleId) => Effect.Effect<SaleStats, SqlError.SqlError>
    /** Marks the sale cancelled; true when it existed and was not cancelled yet. */
    readonly cancelSale: (saleId: SaleId) => Effect.Effect<boolean, SqlError.SqlError>
  }
>()("mincommerce/storage/Catalog") {
  static readonly layer = Layer.effect(
    Catalog,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient

      const usersByEmail = Effect.fn("Catalog.usersByEmail")(function* (emails: ReadonlyArray<string>) {
        const rows = yield* sql<{ id: UserId }>`
          WITH input AS (
            SELECT email, ordinality FROM unnest(${emails}::text[]) WITH ORDINALITY AS e (email, ordinality)
          ), inserted AS (
            INSERT INTO users (email) SELECT email FROM input ON CONFLICT (email) DO NOTHING RETURNING id, email
          )
          SELECT coalesce(i.id, u.id) AS id
          FROM input
          LEFT JOIN inserted i ON i.email = input.email
          LEFT JOIN users u ON u.email = input.email
          ORDER BY input.ordinality`
        return rows.map((row) => row.id)
      })

      const userByEmail = Effect.fn("Catalog.userByEmail")(function* (email: string) {
        const [id] = yield* usersByEmail([email])
        if (id === undefined) return yield* Effect.die(new Error("user upsert returned no row"))
        return id
      })

      const createProduct = Effect.fn("Catalog.createProduct")(function* (name: string, description: string) {
        const rows = yield* sql<{ id: ProductId }>`
          INSERT INTO products (name, description) VALUES (${name}, ${description}) RETURNING id`
        return rows[0]!.id
      })

      const createSale = Effect.fn("Catalog.createSale")(function* (sale: NewSale) {
        const rows = yield* sql<{ id: SaleId }>`
            INSERT INTO flash_sales (product_id, price_cents, starts_at, ends_at)
            VALUES (${sale.productId}, ${sale.priceCents},
                    to_timestamp(${sale.startsAt} / 1000.0), to_timestamp(${sale.endsAt} / 1000.0))
            RETURNING id`
        const saleId = rows[0]!.id
        yield* sql`INSERT INTO stocks (sale_id, total, available) VALUES (${saleId}, ${sale.stock}, ${sale.stock})`
        return saleId
      }, sql.withTransaction)

      // A sale's owner holds its schedule and stock in memory, possibly on another node.
      // Changing them mints a new epoch, as a new owner would: the current owner's next
      // commit is fenced, it stops, and whoever serves the sale next reloads it from here.
      const fenceOwner = (saleId: SaleId) =>
        sql`UPDATE stocks SET owner_epoch = owner_epoch + 1, updated_at = now() WHERE sale_id = ${saleId}`

      const cancelSale = Effect.fn("Catalog.cancelSale")(function* (saleId: SaleId) {
        const rows = yield* sql`
          UPDATE flash_sales SET status = 'cancelled', updated_at = now()
          WHERE id = ${saleId} AND status <> 'cancelled' RETURNING id`
        if (rows.length > 0) yield* fenceOwner(saleId)
        return rows.length > 0
      }, sql.withTransaction)

      const saleFrom = sql`flash_sales f JOIN products p ON p.id = f.product_id JOIN stocks s ON s.sale_id = f.id`
      const saleColumns = sql`
        f.id AS "saleId", p.name AS "productName", f.price_cents AS "priceCents",
        (extract(epoch FROM f.starts_at) * 1000)::float8 AS "startsAt",
        (extract(epoch FROM f.ends_at) * 1000)::float8 AS "endsAt",
        f.status = 'cancelled' AS cancelled, s.total, s.available`

      const sale = Effect.fn("Catalog.sale")(function* (saleId: SaleId) {
        const rows = yield* sql<SaleRow>`
          SELECT ${saleColumns}
          FROM ${saleFrom}
          WHERE f.id = ${saleId}`
        return rows[0]
      })

      const sales = Effect.fn("Catalog.sales")(function* () {
        return yield* sql<SaleRow>`
          SELECT ${saleColumns}
          FROM ${saleFrom}
          ORDER BY f.starts_at DESC LIMIT 500`
      })

      const currentSale = Effect.fn("Catalog.currentSale")(function* () {
        const rows = yield* sql<SaleRow>`
          SELECT ${saleColumns}
          FROM ${saleFrom}
          WHERE f.status = 'scheduled' AND f.ends_at > now()
          ORDER BY f.starts_at <= now() DESC, f.starts_at
          LIMIT 1`
        return rows[0]
      })

      const updateProduct = Effect.fn("Catalog.updateProduct")(function* (
        productId: ProductId,
        changes: { readonly name?: string | undefined; readonly description?: string | undefined }
      ) {
        const rows = yield* sql`
          UPDATE products SET name = coalesce(${changes.name ?? null}, name),
                 description = coalesce(${changes.description ?? null}, description), updated_at = now()
          WHERE id = ${productId} RETURNING id`
        return rows.length > 0
      })

      const updateSale = Effect.fn("Catalog.updateSale")(function* (saleId: SaleId, changes: SaleChanges) {
        const current = yield* sql<{ cancelled: boolean; upcoming: boolean }>`
            SELECT status = 'cancelled' AS cancelled, starts_at > now() AS upcoming
            FROM flash_sales WHERE id = ${saleId} FOR UPDATE`
        if (current[0] === undefined) return "missing" as const
        if (current[0].cancelled) return "cancelled" as const
        if (!current[0].upcoming) return "started" as const
        const toTime = (ms: number | undefined) => (ms === undefined ? null : ms / 1_000)
        yield* sql`
            UPDATE flash_sales SET
              price_cents = coalesce(${changes.priceCents ?? null}::int, price_cents),
              starts_at = coalesce(to_timestamp(${toTime(changes.startsAt)}::float8), starts_at),
              ends_at = coalesce(to_timestamp(${toTime(changes.endsAt)}::float8), ends_at),
              updated_at = now()
            WHERE id = ${saleId}`
        if (changes.stock !== undefined) {
          // Nobody buys before the start, but the stock row stays the arbiter: units already
          // taken stay taken, never handed out a second time.
          const restocked = yield* sql`
              UPDATE stocks SET total = ${changes.stock},
                     available = ${changes.stock} - (total - available), updated_at = now()
              WHERE sale_id = ${saleId} AND ${changes.stock} >= total - available
              RETURNING sale_id`
          if (restocked.length === 0) {
            // Rolls the whole change back: units were taken before the start.
            return yield* Effect.die(new Error(`sale ${saleId}: units taken before the start`))
          }
        }
        yield* fenceOwner(saleId)
        return "updated" as const
      }, sql.withTransaction)

      const saleStats = Effect.fn("Catalog.saleStats")(function* (saleId: SaleId) {
        const outcomes = yield* sql<{ outcome: string; n: number }>`
          SELECT outcome, count(*)::int AS n FROM purchase_attempts WHERE sale_id = ${saleId} GROUP BY outcome`
        const orders = yield* sql<{ committed: number; recent: number; soldOutAt: number | null }>`
          SELECT count(*)::int AS committed,
                 count(*) FILTER (WHERE o.created_at > now() - interval '10 seconds')::int AS recent,
                 (SELECT (extract(epoch FROM sold_out_at) * 1000)::float8 FROM flash_sales WHERE id = ${saleId})
                   AS "soldOutAt"
          FROM orders o WHERE o.sale_id = ${saleId}`
        const latency = yield* sql<{ p50: number | null; p99: number | null }>`
          SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY millis)::float8 AS p50,
                 percentile_cont(0.99) WITHIN GROUP (ORDER BY millis)::float8 AS p99
          FROM commit_batches WHERE sale_id = ${saleId} AND millis IS NOT NULL`
        const p50 = latency[0]?.p50 ?? null
        const p99 = latency[0]?.p99 ?? null
        const byOutcome = Object.fromEntries(outcomes.map((row) => [row.outcome, row.n]))
        return {
          commitMillis: p50 === null || p99 === null ? null : { p50, p99 },
          attempts: outcomes.reduce((sum, row) => sum + row.n, 0),
          byOutcome,
          committed: orders[0]?.committed ?? 0,
          soldOutAt: orders[0]?.soldOutAt ?? null,
          recentPerSecond: (orders[0]?.recent ?? 0) / 10
        }
      })

      return Catalog.of({
        updateProduct,
        updateSale,
        saleStats,
        userByEmail,
        usersByEmail,
        createProduct,
        createSale,
        cancelSale,
        sale,
        sales,
        currentSale
      })
    })
  )
}

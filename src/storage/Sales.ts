import { Context, Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import {
  ProductNotFound,
  SaleCancelled,
  SaleNotFound,
  SaleStarted,
  StockBelowSold
} from "../domain/Errors.ts"
import { firstCome, type Allocation } from "../domain/Allocation.ts"
import { commitmentOf } from "../domain/Draw.ts"
import type { ProductId, SaleId } from "../domain/Ids.ts"
import type { PurchaseRules } from "../domain/PurchaseRules.ts"
import { sqlState } from "./Database.ts"

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
  /** The proof-of-work difficulty; null: none asked. */
  readonly powDifficulty: number | null
  /** Only accounts created before this instant (the sale's creation) may buy; null: any. */
  readonly accountsCreatedBefore: number | null
  readonly allocation: Allocation
  /** How long an accepted unit is held for its buyer to pay; 0: a purchase is final. */
  readonly holdSeconds: number
}

/** A draw sale's setup: its entry window, and the secret seed the node made for it. */
export interface NewDraw {
  readonly entryWindowMillis: number
  readonly seed: string
}

export interface NewSale {
  readonly productId: ProductId
  readonly priceCents: number
  readonly stock: number
  readonly startsAt: number
  readonly endsAt: number
  readonly powDifficulty?: number | undefined
  /** Only accounts created before the sale (its publication) may buy. */
  readonly olderAccountsOnly?: boolean | undefined
  /** Absent: first come, first served. */
  readonly draw?: NewDraw | undefined
  /** How long an accepted unit is held for payment; absent or 0: a purchase is final. */
  readonly holdSeconds?: number | undefined
  /** Whether a buyer whose hold lapsed may buy again. */
  readonly repurchaseAfterLapse?: boolean | undefined
}

/** A sale row as read, before its allocation's columns are put together. */
interface RawSaleRow extends Omit<SaleRow, "allocation"> {
  readonly allocation: "first_come" | "draw"
  readonly entryWindowMillis: number | null
  readonly commitment: string | null
  readonly seed: string | null
  readonly drawnAt: number | null
}

const saleRowOf = (raw: RawSaleRow): SaleRow => {
  const { entryWindowMillis, commitment, seed, drawnAt, allocation, ...sale } = raw
  if (allocation === "first_come" || entryWindowMillis === null || commitment === null)
    return { ...sale, allocation: firstCome }
  return {
    ...sale,
    allocation: {
      mode: "draw",
      entryWindowMillis,
      drawAt: sale.startsAt + entryWindowMillis,
      commitment,
      seed,
      drawnAt
    }
  }
}

/** A row's purchase rules as the domain states them. */
export const rulesOf = (row: Pick<SaleRow, "powDifficulty" | "accountsCreatedBefore">): PurchaseRules => ({
  powDifficulty: row.powDifficulty ?? undefined,
  accountsCreatedBefore: row.accountsCreatedBefore ?? undefined
})

export interface SaleChanges {
  readonly priceCents?: number | undefined
  readonly stock?: number | undefined
  readonly startsAt?: number | undefined
  readonly endsAt?: number | undefined
}

/** Sales and their stock rows, as the admins set them up; the orders are the owner's to write. */
export class Sales extends Context.Service<
  Sales,
  {
    /** Creates the sale and its stock row in one transaction. */
    readonly create: (sale: NewSale) => Effect.Effect<SaleId, ProductNotFound | SqlError.SqlError>
    readonly find: (saleId: SaleId) => Effect.Effect<SaleRow | undefined, SqlError.SqlError>
    /** The sale's purchase rules (fixed at creation), or undefined for no such sale. */
    readonly rules: (saleId: SaleId) => Effect.Effect<PurchaseRules | undefined, SqlError.SqlError>
    /** The sale running now, else the next one to start (the seed API's "current" sale). */
    readonly current: Effect.Effect<SaleRow | undefined, SqlError.SqlError>
    /** Every sale, newest start first. */
    readonly list: Effect.Effect<ReadonlyArray<SaleRow>, SqlError.SqlError>
    /** Changes a sale that has not started (schedule, price, stock); on any error nothing changes. */
    readonly update: (
      saleId: SaleId,
      changes: SaleChanges
    ) => Effect.Effect<void, SaleNotFound | SaleStarted | SaleCancelled | StockBelowSold | SqlError.SqlError>
    /** Marks the sale cancelled; true when it existed and was not cancelled yet. */
    readonly cancel: (saleId: SaleId) => Effect.Effect<boolean, SqlError.SqlError>
  }
>()("mincommerce/storage/Sales") {
  static readonly layer = Layer.effect(
    Sales,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const create = createSale(sql)
      const update = updateSale(sql)

      const cancel = Effect.fn("Sales.cancel")(function* (saleId: SaleId) {
        const rows = yield* sql`
          UPDATE flash_sales SET status = 'cancelled', updated_at = now()
          WHERE id = ${saleId} AND status <> 'cancelled' RETURNING id`
        if (rows.length > 0) yield* fenceOwner(sql, saleId)
        return rows.length > 0
      }, sql.withTransaction)

      const ruleColumns = sql`
        f.pow_difficulty AS "powDifficulty",
        CASE WHEN f.older_accounts_only THEN (extract(epoch FROM f.created_at) * 1000)::float8 END
          AS "accountsCreatedBefore"`
      const saleFrom = sql`
        flash_sales f JOIN products p ON p.id = f.product_id JOIN stocks s ON s.sale_id = f.id
        LEFT JOIN sale_draws d ON d.sale_id = f.id`
      // The seed leaves the database only once the draw is done.
      const saleColumns = sql`
        f.id AS "saleId", p.name AS "productName", f.price_cents AS "priceCents",
        (extract(epoch FROM f.starts_at) * 1000)::float8 AS "startsAt",
        (extract(epoch FROM f.ends_at) * 1000)::float8 AS "endsAt",
        f.status = 'cancelled' AS cancelled, s.total, s.available, ${ruleColumns},
        f.allocation, d.entry_window_ms::float8 AS "entryWindowMillis", d.commitment,
        CASE WHEN d.drawn_at IS NOT NULL THEN d.seed END AS seed,
        (extract(epoch FROM d.drawn_at) * 1000)::float8 AS "drawnAt", f.hold_seconds AS "holdSeconds"`

      const find = Effect.fn("Sales.find")(function* (saleId: SaleId) {
        const rows = yield* sql<RawSaleRow>`SELECT ${saleColumns} FROM ${saleFrom} WHERE f.id = ${saleId}`
        const row = rows[0]
        return row === undefined ? undefined : saleRowOf(row)
      })

      const rules = Effect.fn("Sales.rules")(function* (saleId: SaleId) {
        const rows = yield* sql<Pick<SaleRow, "powDifficulty" | "accountsCreatedBefore">>`
          SELECT ${ruleColumns} FROM flash_sales f WHERE f.id = ${saleId}`
        return rows[0] === undefined ? undefined : rulesOf(rows[0])
      })

      const list =
        sql<RawSaleRow>`SELECT ${saleColumns} FROM ${saleFrom} ORDER BY f.starts_at DESC LIMIT 500`.pipe(
          Effect.map((rows) => rows.map(saleRowOf)),
          Effect.withSpan("Sales.list")
        )

      const current = sql<RawSaleRow>`
          SELECT ${saleColumns}
          FROM ${saleFrom}
          WHERE f.status = 'scheduled' AND f.ends_at > now()
          ORDER BY f.starts_at <= now() DESC, f.starts_at
          LIMIT 1`.pipe(
        Effect.map((rows) => (rows[0] === undefined ? undefined : saleRowOf(rows[0]))),
        Effect.withSpan("Sales.current")
      )

      return Sales.of({ create, find, rules, current, list, update, cancel })
    })
  )
}

const createSale = (sql: SqlClient.SqlClient) =>
  Effect.fn("Sales.create")(function* (sale: NewSale) {
    const [row] = yield* sql<{ id: SaleId }>`
        INSERT INTO flash_sales
          (product_id, price_cents, starts_at, ends_at, pow_difficulty, older_accounts_only, allocation,
           hold_seconds, repurchase_after_lapse)
        VALUES (${sale.productId}, ${sale.priceCents},
                to_timestamp(${sale.startsAt} / 1000.0), to_timestamp(${sale.endsAt} / 1000.0),
                ${sale.powDifficulty ?? null}::int, ${sale.olderAccountsOnly ?? false},
                ${sale.draw === undefined ? "first_come" : "draw"}, ${sale.holdSeconds ?? 0},
                ${sale.repurchaseAfterLapse ?? false})
        RETURNING id`.pipe(
      Effect.catchTag("SqlError", (error): Effect.Effect<never, ProductNotFound | SqlError.SqlError> =>
        // SQLSTATE 23503, foreign_key_violation: the only foreign key of a sale is its product's.
        sqlState(error) === "23503"
          ? Effect.fail(new ProductNotFound({ productId: sale.productId }))
          : Effect.fail(error)
      )
    )
    if (row === undefined) return yield* Effect.die(new Error("sale insert returned no row"))
    yield* sql`INSERT INTO stocks (sale_id, total, available) VALUES (${row.id}, ${sale.stock}, ${sale.stock})`
    if (sale.draw !== undefined)
      yield* sql`
        INSERT INTO sale_draws (sale_id, entry_window_ms, seed, commitment)
        VALUES (${row.id}, ${sale.draw.entryWindowMillis}, ${sale.draw.seed}, ${commitmentOf(sale.draw.seed)})`
    return row.id
  }, sql.withTransaction)

// A sale's owner holds its schedule and stock in memory, possibly on another node.
// Changing them mints a new epoch, as a new owner would: the current owner's next
// commit is fenced, it stops, and whoever serves the sale next reloads it from here.
const fenceOwner = (sql: SqlClient.SqlClient, saleId: SaleId) =>
  sql`UPDATE stocks SET owner_epoch = owner_epoch + 1, updated_at = now() WHERE sale_id = ${saleId}`

const updateSale = (sql: SqlClient.SqlClient) =>
  Effect.fn("Sales.update")(function* (saleId: SaleId, changes: SaleChanges) {
    const [found] = yield* sql<{ cancelled: boolean; upcoming: boolean }>`
        SELECT status = 'cancelled' AS cancelled, starts_at > now() AS upcoming
        FROM flash_sales WHERE id = ${saleId} FOR UPDATE`
    if (found === undefined) return yield* new SaleNotFound({ saleId })
    if (found.cancelled) return yield* new SaleCancelled({ saleId })
    if (!found.upcoming) return yield* new SaleStarted({ saleId })
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
      // Failing rolls the whole change back.
      if (restocked.length === 0) return yield* new StockBelowSold({ saleId, stock: changes.stock })
    }
    yield* fenceOwner(sql, saleId)
  }, sql.withTransaction)

import { Effect } from "effect"
import type { SqlClient } from "effect/sql"
import { draw } from "../domain/Draw.ts"
import { SaleNotFound, StaleEpoch } from "../domain/Errors.ts"
import type { OrderId, SaleId, UserId } from "../domain/Ids.ts"

/** A committed entry, as a new owner reloads it. */
export interface EntrySnapshot {
  readonly entryId: OrderId
  readonly at: number
}

/** A draw sale's state in PostgreSQL: what an owner rebuilds its draw from (invariant I5). */
export interface DrawSnapshot {
  readonly drawAt: number
  /** Every committed entry, by buyer. */
  readonly entries: ReadonlyMap<UserId, EntrySnapshot>
  /** Once drawn, the waiting-list place (1, 2, …) of each entrant not drawn; undefined before. */
  readonly waitingList: ReadonlyMap<UserId, number> | undefined
}

/** What the draw decided, as the owner applies it: winners' orders and the waiting list. */
export interface DrawOutcome {
  readonly winners: ReadonlyArray<{ readonly userId: UserId; readonly orderId: OrderId }>
  readonly waitingList: ReadonlyMap<UserId, number>
}

interface PlacedEntry {
  readonly userId: UserId
  readonly entryId: OrderId
  readonly at: number
  readonly place: number | null
}

const placedEntries = (sql: SqlClient.SqlClient, saleId: SaleId) =>
  sql<PlacedEntry>`
    SELECT user_id AS "userId", entry_id AS "entryId", entered_at AS at, place
    FROM sale_entries WHERE sale_id = ${saleId} ORDER BY place NULLS LAST, user_id`

const outcomeOf = (entries: ReadonlyArray<PlacedEntry>, units: number): DrawOutcome => {
  const winners: Array<{ userId: UserId; orderId: OrderId }> = []
  const waitingList = new Map<UserId, number>()
  for (const e of entries) {
    if (e.place === null) continue
    if (e.place <= units) winners.push({ userId: e.userId, orderId: e.entryId })
    else waitingList.set(e.userId, e.place - units)
  }
  return { winners, waitingList }
}

/** The sale's draw state, or undefined for a first-come sale. */
export const readDrawSnapshot = Effect.fnUntraced(function* (
  sql: SqlClient.SqlClient,
  saleId: SaleId,
  startsAt: number
) {
  const [setup] = yield* sql<{ windowMillis: number; drawn: boolean; units: number | null }>`
    SELECT entry_window_ms::float8 AS "windowMillis", drawn_at IS NOT NULL AS drawn, units
    FROM sale_draws d JOIN flash_sales f ON f.id = d.sale_id
    WHERE d.sale_id = ${saleId} AND f.allocation = 'draw'`
  if (setup === undefined) return undefined
  const rows = yield* placedEntries(sql, saleId)
  const entries = new Map<UserId, EntrySnapshot>()
  for (const row of rows) entries.set(row.userId, { entryId: row.entryId, at: row.at })
  const snapshot: DrawSnapshot = {
    drawAt: startsAt + setup.windowMillis,
    entries,
    waitingList: setup.drawn ? outcomeOf(rows, setup.units ?? 0).waitingList : undefined
  }
  return snapshot
})

/**
 * The draw, in one transaction fenced like a batch: the stock row is locked and must carry
 * the caller's epoch, so a stale owner's draw writes nothing. Drawn already (by this owner,
 * whose reply was lost, or by one before it), it returns the stored result instead: the row
 * in sale_draws switches once. Otherwise it reads every committed entry (entries committing
 * now wait for the stock row and are refused after, see migration 0009), runs the pure draw
 * over the units still available, gives each winner an order (its entry id), records each
 * entrant's place in draw order, and marks the sale drawn. In a sale that holds units for
 * payment, each winner's order is held from `at` (the owner's clock, as its memory has it).
 */
export const drawSale = (sql: SqlClient.SqlClient) =>
  Effect.fn("OrderStore.draw")(function* (saleId: SaleId, epoch: number, at: number = Date.now()) {
    const [stock] = yield* sql<{ epoch: number; available: number }>`
        SELECT owner_epoch AS epoch, available FROM stocks WHERE sale_id = ${saleId} FOR UPDATE`
    if (stock === undefined) return yield* new SaleNotFound({ saleId })
    if (stock.epoch !== epoch) return yield* new StaleEpoch({ saleId, epoch })
    const [setup] = yield* sql<{ seed: string; drawn: boolean; units: number | null }>`
        SELECT seed, drawn_at IS NOT NULL AS drawn, units FROM sale_draws WHERE sale_id = ${saleId}`
    if (setup === undefined) return yield* Effect.die(new Error(`sale ${saleId} is not a draw sale`))
    if (setup.drawn) return outcomeOf(yield* placedEntries(sql, saleId), setup.units ?? 0)
    const entries = yield* placedEntries(sql, saleId)
    const result = draw(setup.seed, entries, stock.available)
    const winners = result.winners.map((w) => ({ userId: w.userId as UserId, orderId: w.entryId as OrderId }))
    if (winners.length > 0) {
      yield* sql`
          INSERT INTO orders (id, sale_id, user_id, price_cents, owner_epoch, created_at, status, pay_by)
          SELECT w.id, f.id, w.user_id, f.price_cents, ${epoch}, now(),
                 CASE WHEN f.hold_seconds > 0 THEN 'reserved' ELSE 'paid' END,
                 CASE WHEN f.hold_seconds > 0
                   THEN to_timestamp((${at}::float8 + f.hold_seconds * 1000.0) / 1000.0) END
          FROM unnest(${winners.map((w) => w.orderId)}::uuid[], ${winners.map((w) => w.userId)}::uuid[])
            AS w (id, user_id)
          CROSS JOIN flash_sales f WHERE f.id = ${saleId}`
      yield* sql`
          UPDATE stocks SET available = available - ${winners.length}, updated_at = now()
          WHERE sale_id = ${saleId} AND owner_epoch = ${epoch}`
      if (winners.length === stock.available)
        yield* sql`UPDATE flash_sales SET sold_out_at = now() WHERE id = ${saleId} AND sold_out_at IS NULL`
    }
    const ordered = result.order.map((e) => e.userId)
    yield* sql`
        UPDATE sale_entries e SET place = p.place
        FROM unnest(${ordered}::uuid[]) WITH ORDINALITY AS p (user_id, place)
        WHERE e.sale_id = ${saleId} AND e.user_id = p.user_id`
    yield* sql`
        UPDATE sale_draws SET drawn_at = now(), drawn_epoch = ${epoch}, units = ${stock.available},
          entries = ${entries.length}, entries_hash = ${result.entriesHash}
        WHERE sale_id = ${saleId} AND drawn_at IS NULL`
    const waitingList = new Map<UserId, number>()
    result.waitingList.forEach((e, i) => waitingList.set(e.userId as UserId, i + 1))
    const outcome: DrawOutcome = { winners, waitingList }
    return outcome
  }, sql.withTransaction)

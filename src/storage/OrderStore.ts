import { Context, Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { SaleNotFound, StaleEpoch } from "../domain/Errors.ts"
import type { OrderId, SaleId, UserId } from "../domain/Ids.ts"

/** A sale as PostgreSQL has it: what an owner rebuilds its state from (invariant I5). */
export interface SaleSnapshot {
  readonly saleId: SaleId
  readonly total: number
  /** The stock row's counter; always `total - buyers.size` (checked on load). */
  readonly available: number
  readonly startsAt: number
  readonly endsAt: number
  readonly cancelled: boolean
  /** Every committed order of the sale, by buyer. */
  readonly buyers: ReadonlyMap<UserId, OrderId>
}

export interface Claim {
  /** The fencing token this owner passes to every commit. */
  readonly epoch: number
  readonly snapshot: SaleSnapshot
}

export interface OrderToCommit {
  readonly orderId: OrderId
  readonly userId: UserId
  readonly at: number
}

export interface AttemptRecord {
  readonly userId: UserId
  /** A value of `attemptReason`. */
  readonly outcome: string
  readonly at: number
}

/**
 * Proof that a batch is durably committed. Only `OrderStore.commit` makes one, and a
 * purchase can be answered "accepted" only by presenting it.
 */
export class CommitReceipt {
  readonly saleId: SaleId
  /** The orders known to be in PostgreSQL. */
  readonly orderIds: ReadonlySet<OrderId>
  constructor(saleId: SaleId, orderIds: ReadonlySet<OrderId>) {
    this.saleId = saleId
    this.orderIds = orderIds
  }
}

export interface Batch {
  /** A fresh UUID per commit attempt: recorded in commit_batches by the transaction. */
  readonly batchId: string
  readonly saleId: SaleId
  readonly epoch: number
  readonly orders: ReadonlyArray<OrderToCommit>
  readonly attempts: ReadonlyArray<AttemptRecord>
}

/**
 * The orders of a sale, written only by its owner. Knows nothing of actors: it mints
 * epochs, loads snapshots and commits batches, each in one transaction.
 */
export class OrderStore extends Context.Service<
  OrderStore,
  {
    /**
     * Becomes the sale's writer: mints a new epoch on the stock row (fencing every earlier
     * owner), then reads back the committed state under it.
     */
    readonly claim: (saleId: SaleId) => Effect.Effect<Claim, SaleNotFound | SqlError.SqlError>
    /** The committed state, without claiming anything. */
    readonly load: (saleId: SaleId) => Effect.Effect<SaleSnapshot, SaleNotFound | SqlError.SqlError>
    /**
     * One transaction: check the epoch and take the units on the stock row, insert every
     * order, record every attempt. A stale epoch rolls the whole batch back.
     */
    readonly commit: (batch: Batch) => Effect.Effect<CommitReceipt, StaleEpoch | SqlError.SqlError>
    /**
     * Whether a batch whose commit lost its reply went through: its receipt, or undefined.
     * It first locks the stock row, so a commit of ours still in flight on a broken
     * connection has finished (or aborted) before the stamp is read.
     */
    readonly outcomeOf: (batch: Batch) => Effect.Effect<CommitReceipt | undefined, SqlError.SqlError>
  }
>()("mincommerce/storage/OrderStore") {
  static readonly layer = Layer.effect(
    OrderStore,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient

      const readSnapshot = Effect.fnUntraced(function* (saleId: SaleId) {
        const sales = yield* sql<{
          total: number
          available: number
          startsAt: number
          endsAt: number
          cancelled: boolean
        }>`
          SELECT s.total, s.available,
                 (extract(epoch FROM f.starts_at) * 1000)::float8 AS "startsAt",
                 (extract(epoch FROM f.ends_at) * 1000)::float8 AS "endsAt",
                 f.status = 'cancelled' AS cancelled
          FROM flash_sales f JOIN stocks s ON s.sale_id = f.id
          WHERE f.id = ${saleId}`
        const sale = sales[0]
        if (sale === undefined) return yield* new SaleNotFound({ saleId })
        const rows = yield* sql<{ userId: UserId; orderId: OrderId }>`
          SELECT user_id AS "userId", id AS "orderId" FROM orders WHERE sale_id = ${saleId}`
        const buyers = new Map<UserId, OrderId>()
        for (const row of rows) buyers.set(row.userId, row.orderId)
        if (sale.available !== sale.total - buyers.size) {
          return yield* Effect.die(
            new Error(
              `sale ${saleId}: stock row says ${sale.available} available, orders say ${sale.total - buyers.size}`
            )
          )
        }
        return { saleId, ...sale, buyers } satisfies SaleSnapshot
      })

      const claim = Effect.fn("OrderStore.claim")(function* (saleId: SaleId) {
        const minted = yield* sql<{ epoch: number }>`
          UPDATE stocks SET owner_epoch = owner_epoch + 1, updated_at = now()
          WHERE sale_id = ${saleId} RETURNING owner_epoch AS epoch`
        const epoch = minted[0]?.epoch
        if (epoch === undefined) return yield* new SaleNotFound({ saleId })
        // Read after minting: any commit of an older owner has finished or will be fenced,
        // so nothing can be committed that this snapshot misses.
        const snapshot = yield* readSnapshot(saleId)
        return { epoch, snapshot }
      })

      const load = Effect.fn("OrderStore.load")(function* (saleId: SaleId) {
        return yield* readSnapshot(saleId)
      })

      // The stock row is taken last, so two batches of one owner insert side by side and
      // only queue for that row's lock at the very end. The epoch is read first, unlocked, to
      // turn a stale owner away before it writes anything; the locking UPDATE is what decides.
      const commit = Effect.fnUntraced(function* (batch: Batch) {
        const taken = batch.orders.length
        const current = yield* sql<{ epoch: number }>`
          SELECT owner_epoch AS epoch FROM stocks WHERE sale_id = ${batch.saleId}`
        if (current[0]?.epoch !== batch.epoch) {
          return yield* new StaleEpoch({ saleId: batch.saleId, epoch: batch.epoch })
        }
        const ids = batch.orders.map((o) => o.orderId)
        if (taken > 0) {
          const users = batch.orders.map((o) => o.userId)
          const times = batch.orders.map((o) => o.at)
          yield* sql`
            INSERT INTO orders (id, sale_id, user_id, price_cents, owner_epoch, created_at)
            SELECT o.id, f.id, o.user_id, f.price_cents, ${batch.epoch}, to_timestamp(o.at / 1000.0)
            FROM unnest(${ids}::uuid[], ${users}::uuid[], ${times}::float8[]) AS o (id, user_id, at)
            CROSS JOIN flash_sales f WHERE f.id = ${batch.saleId}`
        }
        if (batch.attempts.length > 0) {
          const users = batch.attempts.map((a) => a.userId)
          const outcomes = batch.attempts.map((a) => a.outcome)
          const times = batch.attempts.map((a) => a.at)
          yield* sql`
            INSERT INTO purchase_attempts (sale_id, user_id, outcome, attempted_at)
            SELECT ${batch.saleId}, a.user_id, a.outcome, to_timestamp(a.at / 1000.0)
            FROM unnest(${users}::uuid[], ${outcomes}::text[], ${times}::float8[]) AS a (user_id, outcome, at)`
        }
        const fenced = yield* sql<{ available: number }>`
          UPDATE stocks SET available = available - ${taken}, updated_at = now()
          WHERE sale_id = ${batch.saleId} AND owner_epoch = ${batch.epoch} AND available >= ${taken}
          RETURNING available`
        const after = fenced[0]
        if (after === undefined) {
          const now = yield* sql<{ epoch: number; available: number }>`
            SELECT owner_epoch AS epoch, available FROM stocks WHERE sale_id = ${batch.saleId}`
          if (now[0]?.epoch === batch.epoch) {
            return yield* Effect.die(
              new Error(`sale ${batch.saleId}: batch of ${taken} exceeds ${now[0].available} available`)
            )
          }
          return yield* new StaleEpoch({ saleId: batch.saleId, epoch: batch.epoch })
        }
        // Last, so its clock reading covers the whole transaction but the COMMIT itself.
        yield* sql`
          INSERT INTO commit_batches (batch_id, sale_id, owner_epoch, orders, millis)
          VALUES (${batch.batchId}, ${batch.saleId}, ${batch.epoch}, ${taken},
                  extract(epoch FROM clock_timestamp() - now()) * 1000)`
        if (taken > 0 && after.available === 0) {
          yield* sql`
            UPDATE flash_sales SET sold_out_at = now()
            WHERE id = ${batch.saleId} AND sold_out_at IS NULL`
        }
        return new CommitReceipt(batch.saleId, new Set(ids))
      }, sql.withTransaction)

      // A commit that reached COMMIT holds the stock row's lock until it ends: waiting for
      // that lock first means the batch log below is final for this batch.
      const outcomeOf = Effect.fn("OrderStore.outcomeOf")(function* (batch: Batch) {
        yield* sql`SELECT 1 FROM stocks WHERE sale_id = ${batch.saleId} FOR UPDATE`
        const rows = yield* sql`SELECT 1 FROM commit_batches WHERE batch_id = ${batch.batchId}`
        return rows.length > 0
          ? new CommitReceipt(batch.saleId, new Set(batch.orders.map((o) => o.orderId)))
          : undefined
      }, sql.withTransaction)

      return OrderStore.of({ claim, load, commit, outcomeOf })
    })
  )
}

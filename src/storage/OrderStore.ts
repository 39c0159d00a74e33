import { Context, Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { SaleNotFound, StaleEpoch } from "../domain/Errors.ts"
import type { OrderId, SaleId, UserId } from "../domain/Ids.ts"
import { sqlState } from "./Database.ts"
import { drawSale, readDrawSnapshot, type DrawOutcome, type DrawSnapshot } from "./DrawQueries.ts"

export type { DrawOutcome, DrawSnapshot, EntrySnapshot } from "./DrawQueries.ts"

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
  /** A draw sale's entries and result; undefined for a first-come sale. */
  readonly draw: DrawSnapshot | undefined
  /**
   * The sale's hold length (0: purchases are final), its buyers' orders still held (each in
   * `buyers`), and buyers whose hold expired or was cancelled. A draw sale's winners are held
   * from the draw, and entrants promoted from its waiting list from their promotion.
   */
  readonly holdMillis?: number | undefined
  readonly pendingHolds?: ReadonlyArray<PendingHold> | undefined
  readonly lapsed?: ReadonlyMap<UserId, OrderId> | undefined
  /** Whether a buyer whose hold lapsed may take another unit. */
  readonly repurchaseAfterLapse?: boolean | undefined
}

/** A held order as loaded: the new owner resumes its deadline. */
export interface PendingHold {
  readonly userId: UserId
  readonly orderId: OrderId
  readonly payBy: number
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
  /** A hold sale's order is reserved until then, epoch milliseconds; absent: final (paid). */
  readonly payBy?: number | undefined
}

/** A held order paid in time: final from now. */
export interface PaymentToCommit {
  readonly orderId: OrderId
  readonly at: number
}

/** A held order that ended unpaid: its unit goes back on the stock row. */
export interface EndedHold {
  readonly orderId: OrderId
  readonly status: "expired" | "cancelled"
}

/** A draw sale's entry: its id becomes the buyer's order id if the entry wins. */
export interface EntryToCommit {
  readonly entryId: OrderId
  readonly userId: UserId
  readonly at: number
}

/** A decision a buyer's history needs (accepted, commit_failed, already_purchased): one row each. */
export interface AttemptRecord {
  readonly userId: UserId
  /** A value of `attemptReason`. */
  readonly outcome: string
  readonly at: number
}

/** Refusals of one outcome no buyer's history needs, counted: one row per batch and outcome. */
export interface RefusalCount {
  /** A value of `attemptReason`. */
  readonly outcome: string
  readonly count: number
  readonly firstAt: number
  readonly lastAt: number
}

const noEntries: ReadonlySet<OrderId> = new Set()

/**
 * Proof that a batch is durably committed. Only `OrderStore.commit` makes one, and a
 * purchase can be answered "accepted" only by presenting it.
 */
export class CommitReceipt {
  readonly saleId: SaleId
  /** The orders known to be in PostgreSQL. */
  readonly orderIds: ReadonlySet<OrderId>
  /** The entries known to be in PostgreSQL. */
  readonly entryIds: ReadonlySet<OrderId>
  constructor(saleId: SaleId, orderIds: ReadonlySet<OrderId>, entryIds: ReadonlySet<OrderId> = noEntries) {
    this.saleId = saleId
    this.orderIds = orderIds
    this.entryIds = entryIds
  }
}

export interface Batch {
  /** A fresh UUID per commit attempt: recorded in commit_batches by the transaction. */
  readonly batchId: string
  readonly saleId: SaleId
  readonly epoch: number
  readonly orders: ReadonlyArray<OrderToCommit>
  readonly attempts: ReadonlyArray<AttemptRecord>
  /** At most one per outcome. */
  readonly refusals: ReadonlyArray<RefusalCount>
  /** A draw sale's entries; absent or empty in a first-come sale's batches. */
  readonly entries?: ReadonlyArray<EntryToCommit> | undefined
  /** A hold sale's payments and ended holds; absent or empty in every other batch. */
  readonly paid?: ReadonlyArray<PaymentToCommit> | undefined
  readonly ended?: ReadonlyArray<EndedHold> | undefined
}

/** Whether the batch carries anything of a hold sale's lifecycle (migration 0011's overload). */
const carriesHolds = (batch: Batch) =>
  (batch.paid?.length ?? 0) > 0 ||
  (batch.ended?.length ?? 0) > 0 ||
  batch.orders.some((o) => o.payBy !== undefined)

const receiptOf = (batch: Batch) =>
  new CommitReceipt(
    batch.saleId,
    new Set(batch.orders.map((o) => o.orderId)),
    batch.entries === undefined || batch.entries.length === 0
      ? noEntries
      : new Set(batch.entries.map((e) => e.entryId))
  )

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
     * order, record every attempt and every refusal count. A stale epoch rolls the whole
     * batch back.
     */
    readonly commit: (batch: Batch) => Effect.Effect<CommitReceipt, StaleEpoch | SqlError.SqlError>
    /**
     * Whether a batch whose commit lost its reply went through: its receipt, or undefined.
     * It first locks the stock row, so a commit of ours still in flight on a broken
     * connection has finished (or aborted) before the stamp is read.
     */
    readonly outcomeOf: (batch: Batch) => Effect.Effect<CommitReceipt | undefined, SqlError.SqlError>
    /**
     * A draw sale's draw, once and fenced: winners get their orders in the same transaction.
     * Drawn already, it returns the stored result; a stale epoch writes nothing.
     */
    readonly draw: (
      saleId: SaleId,
      epoch: number,
      at?: number
    ) => Effect.Effect<DrawOutcome, SaleNotFound | StaleEpoch | SqlError.SqlError>
    /**
     * The owner's expiry, fenced (migration 0013's end_holds): the due orders still reserved
     * expire and give their units back; returns what every due order is now, so the owner
     * frees exactly what ended (a payment or a cancellation may have come first).
     */
    readonly endHolds: (
      saleId: SaleId,
      epoch: number,
      orderIds: ReadonlyArray<OrderId>
    ) => Effect.Effect<ReadonlyMap<OrderId, string>, StaleEpoch | SqlError.SqlError>
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
          holdMillis: number
          repurchaseAfterLapse: boolean
        }>`
          SELECT s.total, s.available, f.hold_seconds * 1000 AS "holdMillis",
                 f.repurchase_after_lapse AS "repurchaseAfterLapse",
                 (extract(epoch FROM f.starts_at) * 1000)::float8 AS "startsAt",
                 (extract(epoch FROM f.ends_at) * 1000)::float8 AS "endsAt",
                 f.status = 'cancelled' AS cancelled
          FROM flash_sales f JOIN stocks s ON s.sale_id = f.id
          WHERE f.id = ${saleId}`
        const found = sales[0]
        if (found === undefined) return yield* new SaleNotFound({ saleId })
        const sale = found
        const rows = yield* sql<{ userId: UserId; orderId: OrderId; status: string; payBy: number | null }>`
          SELECT user_id AS "userId", id AS "orderId", status,
                 (extract(epoch FROM pay_by) * 1000)::float8 AS "payBy"
          FROM orders WHERE sale_id = ${saleId}`
        // Live orders are the buyers; an expired or cancelled hold gave its unit back to the
        // stock row, and leaves its buyer without another (one unit per buyer per sale).
        const buyers = new Map<UserId, OrderId>()
        const pendingHolds: Array<PendingHold> = []
        const lapsed = new Map<UserId, OrderId>()
        for (const row of rows) {
          if (row.status === "paid") buyers.set(row.userId, row.orderId)
          else if (row.status === "reserved") {
            buyers.set(row.userId, row.orderId)
            pendingHolds.push({ userId: row.userId, orderId: row.orderId, payBy: row.payBy ?? 0 })
          } else if (!sale.repurchaseAfterLapse) lapsed.set(row.userId, row.orderId)
        }
        if (sale.available !== sale.total - buyers.size) {
          return yield* Effect.die(
            new Error(
              `sale ${saleId}: stock row says ${sale.available} available, orders say ${sale.total - buyers.size}`
            )
          )
        }
        const draw = yield* readDrawSnapshot(sql, saleId, sale.startsAt)
        return { saleId, ...sale, buyers, draw, pendingHolds, lapsed } satisfies SaleSnapshot
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

      // One statement (migration 0008's commit_batch over 0006's): the epoch read first, the
      // inserts, then the fenced UPDATE of the stock row, so two batches of one owner insert
      // side by side and only queue for that row's lock at the very end.
      // The arguments every overload of commit_batch starts with: the batch, its orders, its
      // attempts' rows and its refusal counts (migration 0008's thirteen).
      const batchArguments = (batch: Batch) => {
        const { orders, attempts, refusals } = batch
        return sql`
            ${batch.batchId}, ${batch.saleId}, ${batch.epoch},
            ${orders.map((o) => o.orderId)}::uuid[],
            ${orders.map((o) => o.userId)}::uuid[],
            ${orders.map((o) => o.at)}::float8[],
            ${attempts.map((a) => a.userId)}::uuid[],
            ${attempts.map((a) => a.outcome)}::text[],
            ${attempts.map((a) => a.at)}::float8[],
            ${refusals.map((r) => r.outcome)}::text[],
            ${refusals.map((r) => r.count)}::integer[],
            ${refusals.map((r) => r.firstAt)}::float8[],
            ${refusals.map((r) => r.lastAt)}::float8[]`
      }
      // What migration 0009's overload adds: a draw sale's entries.
      const entryArguments = (entries: ReadonlyArray<EntryToCommit>) => sql`
            ${entries.map((e) => e.entryId)}::uuid[],
            ${entries.map((e) => e.userId)}::uuid[],
            ${entries.map((e) => e.at)}::float8[]`

      // One statement (migration 0008's commit_batch over 0006's): the epoch read first, the
      // inserts, then the fenced UPDATE of the stock row, so two batches of one owner insert
      // side by side and only queue for that row's lock at the very end.
      const commit = Effect.fnUntraced(function* (batch: Batch) {
        const entries = batch.entries ?? []
        // A hold sale's lifecycle goes to the overload of migration 0011, a draw sale's entries
        // to 0009's; every other batch keeps 0008's.
        const entering = entries.length > 0
        const statement = carriesHolds(batch)
          ? holdStatement(batch)
          : entering
            ? sql`SELECT commit_batch(${batchArguments(batch)}, ${entryArguments(entries)})`
            : sql`SELECT commit_batch(${batchArguments(batch)})`
        yield* statement.pipe(
          Effect.catchTag("SqlError", (error): Effect.Effect<never, StaleEpoch | SqlError.SqlError> => {
            switch (sqlState(error)) {
              case "MCSTL":
                return Effect.fail(new StaleEpoch({ saleId: batch.saleId, epoch: batch.epoch }))
              case "MCOVR":
                return Effect.die(new Error(error.message))
              default:
                return Effect.fail(error)
            }
          })
        )
        return entering
          ? receiptOf(batch)
          : new CommitReceipt(batch.saleId, new Set(batch.orders.map((o) => o.orderId)))
      })

      const holdStatement = (batch: Batch) => {
        const paid = batch.paid ?? []
        const ended = batch.ended ?? []
        return sql`
          SELECT commit_batch(
            ${batchArguments(batch)},
            ${entryArguments(batch.entries ?? [])},
            ${batch.orders.map((o) => o.payBy ?? null)}::float8[],
            ${paid.map((p) => p.orderId)}::uuid[],
            ${paid.map((p) => p.at)}::float8[],
            ${ended.map((e) => e.orderId)}::uuid[],
            ${ended.map((e) => e.status)}::text[]
          )`
      }

      // A commit that reached COMMIT holds the stock row's lock until it ends: waiting for
      // that lock first means the batch log below is final for this batch.
      const outcomeOf = Effect.fn("OrderStore.outcomeOf")(function* (batch: Batch) {
        yield* sql`SELECT 1 FROM stocks WHERE sale_id = ${batch.saleId} FOR UPDATE`
        const rows = yield* sql`SELECT 1 FROM commit_batches WHERE batch_id = ${batch.batchId}`
        return rows.length > 0 ? receiptOf(batch) : undefined
      }, sql.withTransaction)

      const endHolds = Effect.fn("OrderStore.endHolds")(function* (
        saleId: SaleId,
        epoch: number,
        orderIds: ReadonlyArray<OrderId>
      ) {
        const rows = yield* sql<{ orderId: OrderId; status: string }>`
          SELECT order_id AS "orderId", order_status AS status
          FROM end_holds(${saleId}, ${epoch}, ${orderIds}::uuid[])`.pipe(
          Effect.catchTag("SqlError", (error): Effect.Effect<never, StaleEpoch | SqlError.SqlError> =>
            sqlState(error) === "MCSTL" ? Effect.fail(new StaleEpoch({ saleId, epoch })) : Effect.fail(error)
          )
        )
        return new Map(rows.map((row) => [row.orderId, row.status]))
      })

      return OrderStore.of({ claim, load, commit, outcomeOf, draw: drawSale(sql), endHolds })
    })
  )
}

import { Cause, Clock, Effect, Exit, Latch, Queue, Schedule, Semaphore, type Scope } from "effect"
import { randomUUID } from "node:crypto"
import { PurchaseUnavailable } from "../domain/Errors.ts"
import type { SaleId } from "../domain/Ids.ts"
import type { Outcome } from "../domain/Outcome.ts"
import type { Refusal } from "../domain/Reply.ts"
import {
  OrderStore,
  type AttemptRecord,
  type Batch,
  type CommitReceipt,
  type EntryToCommit,
  type OrderToCommit,
  type RefusalCount
} from "../storage/OrderStore.ts"
import type * as Tracing from "../Tracing.ts"

/**
 * Decisions on their way to PostgreSQL: a buyer's audit record (and for an accepted order its
 * buyer and reply), or a count of refusals no buyer's history needs. One shape for both, so
 * the staging queue stays monomorphic.
 */
export interface Staged {
  readonly attempt: AttemptRecord | undefined
  readonly refusals: RefusalCount | undefined
  readonly order: OrderToCommit | undefined
  /** A draw sale's new entry; its buyer hears `Entered` only after COMMIT. */
  readonly entry: EntryToCommit | undefined
  /** The accepted buyer's reply: called once, with `Accepted` only after COMMIT. */
  readonly reply: ((answer: Outcome | Refusal) => void) | undefined
  /** The accepted purchase's span, when its trace is kept: the batch's commit links to it. */
  readonly trace: Tracing.TraceContext | undefined
}

/**
 * What the committer tells its actor, on the committer's fibers. Every batch with orders or
 * entries is reported exactly once, after its buyers were answered, as one of the first three.
 */
export type CommitterReport =
  /** In PostgreSQL: the receipt proves it. */
  | {
      readonly _tag: "Committed"
      readonly orders: ReadonlyArray<OrderToCommit>
      readonly entries: ReadonlyArray<EntryToCommit>
      readonly receipt: CommitReceipt
    }
  /** Known not to be in PostgreSQL: its buyers were refused, and may retry. */
  | {
      readonly _tag: "NotCommitted"
      readonly orders: ReadonlyArray<OrderToCommit>
      readonly entries: ReadonlyArray<EntryToCommit>
      readonly refusal: PurchaseUnavailable
    }
  /** Whether it went through could not be learned: its buyers were refused, the committer halted. */
  | {
      readonly _tag: "Unknown"
      readonly orders: ReadonlyArray<OrderToCommit>
      readonly entries: ReadonlyArray<EntryToCommit>
      readonly refusal: PurchaseUnavailable
    }
  /** From now on every batch is refused unsent: fenced by a newer owner, or unable to commit. */
  | { readonly _tag: "Halted"; readonly reason: "fenced" | "failed" }
  /** After `end`: everything staged is answered and every audit record flushed (unless halted). */
  | { readonly _tag: "Drained" }

/** A completed commit, for metrics: how many orders and attempts, and how long it took. */
export interface CommitReport {
  readonly orders: number
  readonly attempts: number
  readonly millis: number
}

export interface CommitterOptions {
  readonly saleId: SaleId
  readonly epoch: number
  readonly maxBatchSize: number
  /** Batches committing at once, each in its own transaction; 1 commits strictly one by one. */
  readonly commitsInFlight: number
  readonly retryAfterSeconds: number
  /** A draw sale's draw time (epoch ms), told to each entrant; undefined for a first-come sale. */
  readonly drawAt?: number | undefined
  /** Called after every successful commit, on the committer's fiber: keep it cheap. */
  readonly onCommit?: ((report: CommitReport) => void) | undefined
  /** Receives every report; must not block. */
  readonly report: (report: CommitterReport) => void
  /** Spans for batch commits; undefined while tracing is off. */
  readonly startSpan?: Tracing.StartSpan | undefined
}

/**
 * The group committer of one sale. Natural batching: whatever is staged is committed, in one
 * transaction, as soon as the previous commit returns; no timer. Up to `commitsInFlight`
 * batches commit at once (each on its own connection), but a commit starts beside one already
 * in flight only while a full batch waits: under a flood the overlap is what keeps up, under
 * the load of a few hundred connections it would only split the same orders over more
 * transactions, which costs more CPU in PostgreSQL and the node than it saves in waiting.
 */
export interface GroupCommitter {
  /** Stages decided attempts; suspends while the staging queue is full (the actor's backpressure). */
  readonly stage: (attempts: ReadonlyArray<Staged>) => Effect.Effect<void>
  /** Nothing more will be staged: commit what is, then report `Drained`. */
  readonly end: Effect.Effect<void>
}

// How long the committer keeps trying to learn whether a broken commit went through before it
// halts (its orders' units stay held, so giving up can only undersell).
const settleSchedule = Schedule.spaced("200 millis").pipe(Schedule.upTo({ duration: "30 seconds" }))

// The only way a staged buyer hears "accepted" (or "entered"): by presenting the commit's
// receipt (invariant I3).
const answerAccepted = (staged: Staged, receipt: CommitReceipt, drawAt: number) => {
  if (staged.reply === undefined) return
  if (staged.order === undefined) return answerEntered(staged, receipt, drawAt)
  if (!receipt.orderIds.has(staged.order.orderId))
    throw new Error("answered an order the receipt does not hold")
  const { orderId, payBy } = staged.order
  staged.reply(payBy === undefined ? { _tag: "Accepted", orderId } : { _tag: "Accepted", orderId, payBy })
}

const answerEntered = (staged: Staged, receipt: CommitReceipt, drawAt: number) => {
  const entry = staged.entry
  if (staged.reply === undefined || entry === undefined) return
  if (!receipt.entryIds.has(entry.entryId)) throw new Error("answered an entry the receipt does not hold")
  staged.reply({ _tag: "Entered", entryId: entry.entryId, enteredAt: entry.at, drawAt })
}

const answerAll = (batch: ReadonlyArray<Staged>, refusal: PurchaseUnavailable) => {
  for (const s of batch) s.reply?.(refusal)
}

/** The committer's own state, shared by its writer and commit fibers (all on one thread). */
interface Committer {
  readonly options: CommitterOptions
  readonly store: OrderStore["Service"]
  // Bounded: when the database falls behind, `stage` waits, the actor's mailbox fills, and
  // buyers get 503s instead of the node queueing without limit.
  readonly staging: Queue.Queue<Staged, Cause.Done>
  readonly slots: Semaphore.Semaphore
  /** Opened by a finished commit or a full batch: what a writer waiting to overlap waits for. */
  readonly overlapChanged: Latch.Latch
  /** Audit records and refusal counts of a batch that failed, carried into the next one so none is lost. */
  carried: Array<AttemptRecord>
  carriedRefusals: Array<RefusalCount>
  halted: "fenced" | "failed" | undefined
  committing: number
}

const unavailable = (c: Committer, reason: "commit_failed" | "fenced" | "stopping") =>
  new PurchaseUnavailable({
    saleId: c.options.saleId,
    reason,
    retryAfterSeconds: c.options.retryAfterSeconds
  })

const halt = (c: Committer, reason: "fenced" | "failed") => {
  if (c.halted !== undefined) return
  c.halted = reason
  c.options.report({ _tag: "Halted", reason })
}

const ordersOf = (batch: ReadonlyArray<Staged>) => {
  const orders: Array<OrderToCommit> = []
  for (const s of batch) if (s.order !== undefined) orders.push(s.order)
  return orders
}

const noEntries: ReadonlyArray<EntryToCommit> = []

// Only a draw sale's batches are looked through for entries.
const entriesOf = (c: Committer, batch: ReadonlyArray<Staged>): ReadonlyArray<EntryToCommit> => {
  if (c.options.drawAt === undefined) return noEntries
  const entries: Array<EntryToCommit> = []
  for (const s of batch) if (s.entry !== undefined) entries.push(s.entry)
  return entries
}

/** Answers a batch's buyers, then reports the batch if it held orders or entries. `known`: its fate is certain. */
const settled = (
  c: Committer,
  batch: ReadonlyArray<Staged>,
  outcome: CommitReceipt | PurchaseUnavailable,
  known: boolean,
  orders: ReadonlyArray<OrderToCommit> = ordersOf(batch),
  entries: ReadonlyArray<EntryToCommit> = entriesOf(c, batch)
) => {
  if (outcome instanceof PurchaseUnavailable) answerAll(batch, outcome)
  else for (const s of batch) answerAccepted(s, outcome, c.options.drawAt ?? 0)
  if (orders.length === 0 && entries.length === 0) return
  if (outcome instanceof PurchaseUnavailable)
    c.options.report({ _tag: known ? "NotCommitted" : "Unknown", orders, entries, refusal: outcome })
  else c.options.report({ _tag: "Committed", orders, entries, receipt: outcome })
}

/**
 * A commit that did not answer: ask PostgreSQL whether that transaction went through. If it
 * did, its buyers are answered "accepted" and its audit records are in; if not, its buyers
 * are refused and every record of the batch waits for the next commit.
 */
const settle = Effect.fnUntraced(function* (
  c: Committer,
  batch: ReadonlyArray<Staged>,
  sent: Batch,
  cause: Cause.Cause<unknown>
) {
  const outcome = yield* c.store.outcomeOf(sent).pipe(
    // A connection killed mid-query surfaces as a defect; here it is just another try.
    Effect.catchCause((failure) => Effect.fail(failure)),
    Effect.retry(settleSchedule),
    Effect.option
  )
  const saleId = c.options.saleId
  if (outcome._tag === "None") {
    yield* Effect.logError("commit outcome unknown and database unreachable; halting the sale's committer", {
      saleId,
      cause: Cause.pretty(cause)
    })
    halt(c, "failed")
    return settled(c, batch, unavailable(c, "commit_failed"), false, sent.orders, sent.entries)
  }
  const receipt = outcome.value
  yield* Effect.logWarning("batch commit failed; settled against PostgreSQL", {
    saleId,
    orders: sent.orders.length,
    committed: receipt !== undefined
  })
  if (receipt !== undefined) return settled(c, batch, receipt, true, sent.orders, sent.entries)
  // Only this batch's records can say "accepted" or "entered"; those orders and entries were not stored.
  for (const a of sent.attempts)
    c.carried.push(
      a.outcome === "accepted" || a.outcome === "entered" ? { ...a, outcome: "commit_failed" } : a
    )
  for (const r of sent.refusals) c.carriedRefusals.push(r)
  settled(c, batch, unavailable(c, "commit_failed"), true, sent.orders, sent.entries)
})

// Adds a count into the batch's one count per outcome.
const addRefusals = (into: Array<RefusalCount>, count: RefusalCount) => {
  const i = into.findIndex((r) => r.outcome === count.outcome)
  const same = into[i]
  if (same === undefined) into.push(count)
  else
    into[i] = {
      outcome: count.outcome,
      count: same.count + count.count,
      firstAt: Math.min(same.firstAt, count.firstAt),
      lastAt: Math.max(same.lastAt, count.lastAt)
    }
}

const batchOf = (c: Committer, batch: ReadonlyArray<Staged>): Batch => {
  const attempts = c.carried
  const refusals: Array<RefusalCount> = []
  for (const r of c.carriedRefusals) addRefusals(refusals, r)
  c.carried = []
  c.carriedRefusals = []
  for (const s of batch) {
    if (s.attempt !== undefined) attempts.push(s.attempt)
    if (s.refusals !== undefined) addRefusals(refusals, s.refusals)
  }
  const { saleId, epoch } = c.options
  const entries = entriesOf(c, batch)
  return { batchId: randomUUID(), saleId, epoch, orders: ordersOf(batch), attempts, refusals, entries }
}

const recordedIn = (sent: Batch) => {
  let recorded = sent.attempts.length
  for (const r of sent.refusals) recorded += r.count
  return recorded
}

// A batch's commit span links at most this many of the traced purchases it carried (the
// OpenTelemetry SDKs' default limit of links per span); `batch.traced_orders` counts them all.
export const maxCommitLinks = 128

/**
 * The batch's commit span, a root linked to the spans of the traced purchases whose orders it
 * carries: kept whenever it carries one, else at the sampling ratio.
 */
const commitSpan = (
  c: Committer,
  startSpan: Tracing.StartSpan,
  batch: ReadonlyArray<Staged>,
  sent: Batch
) => {
  const links: Array<Tracing.TraceContext> = []
  let traced = 0
  for (const s of batch) {
    if (s.trace === undefined) continue
    traced++
    if (links.length < maxCommitLinks) links.push(s.trace)
  }
  return startSpan("GroupCommitter.commit", {
    links,
    attributes: {
      "sale.id": c.options.saleId,
      "sale.epoch": c.options.epoch,
      "batch.id": sent.batchId,
      "batch.orders": sent.orders.length,
      "batch.attempts": sent.attempts.length,
      "batch.traced_orders": traced
    }
  })
}

const isFenced = (cause: Cause.Cause<{ readonly _tag: string }>) =>
  cause.reasons.some((r) => Cause.isFailReason(r) && r.error._tag === "StaleEpoch")

const commitOutcome = (exit: Exit.Exit<unknown, { readonly _tag: string }>) =>
  Exit.isSuccess(exit) ? "committed" : isFenced(exit.cause) ? "fenced" : "failed"

// Traced, the store's own spans (the statement's) are the commit span's children.
const commitTraced = Effect.fnUntraced(function* (c: Committer, batch: ReadonlyArray<Staged>, sent: Batch) {
  const span = c.options.startSpan === undefined ? undefined : commitSpan(c, c.options.startSpan, batch, sent)
  if (span === undefined) return yield* Effect.exit(c.store.commit(sent))
  const exit = yield* Effect.exit(Effect.withParentSpan(c.store.commit(sent), span.span))
  span.end({ "commit.outcome": commitOutcome(exit) })
  return exit
})

const commitBatch = Effect.fnUntraced(function* (c: Committer, batch: ReadonlyArray<Staged>) {
  if (c.halted !== undefined)
    return settled(c, batch, unavailable(c, c.halted === "fenced" ? "fenced" : "stopping"), true)
  const { saleId, epoch } = c.options
  const sent = batchOf(c, batch)
  const started = yield* Clock.currentTimeMillis
  const exit = yield* commitTraced(c, batch, sent)
  if (Exit.isSuccess(exit)) {
    settled(c, batch, exit.value, true, sent.orders, sent.entries)
    const finished = yield* Clock.currentTimeMillis
    c.options.onCommit?.({
      orders: sent.orders.length,
      attempts: recordedIn(sent),
      millis: finished - started
    })
    return
  }
  if (isFenced(exit.cause)) {
    yield* Effect.logWarning("fenced: another owner holds a newer epoch; halting", { saleId, epoch })
    halt(c, "fenced")
    // The fence rolled the whole batch back: nothing of it is stored.
    return settled(c, batch, unavailable(c, "fenced"), true, sent.orders, sent.entries)
  }
  yield* settle(c, batch, sent, exit.cause)
})

// Whatever goes wrong in a commit, its buyers are answered: a bug must not leave them waiting.
const commitOrHalt = (c: Committer, batch: ReadonlyArray<Staged>) =>
  commitBatch(c, batch).pipe(
    Effect.catchCause((cause) =>
      Effect.gen(function* () {
        yield* Effect.logError("sale committer failed; halting", {
          saleId: c.options.saleId,
          cause: Cause.pretty(cause)
        })
        halt(c, "failed")
        settled(c, batch, unavailable(c, "stopping"), false)
      })
    )
  )

const mayOverlap = (c: Committer) =>
  c.committing === 0 || Queue.sizeUnsafe(c.staging) >= c.options.maxBatchSize

// Checked and closed in one synchronous step, so no signal can fall between them.
const awaitOverlap = (c: Committer) =>
  Effect.whileLoop({
    while: () => !mayOverlap(c),
    body: () => Effect.suspend(() => (c.overlapChanged.closeUnsafe(), c.overlapChanged.await)),
    step: () => {}
  })

const finished = (c: Committer) =>
  Effect.suspend(() => {
    c.committing--
    c.overlapChanged.openUnsafe()
    return Semaphore.release(c.slots, 1)
  })

// A batch is taken only when a slot is free, so batches keep growing while all are busy.
// Each commit is the writer's child, not a fiber of the actor's scope: the actor drains while
// that scope closes, and a fiber forked into a closing scope never starts, so its buyers were
// never answered and the drain waited for its slot for ever. The writer outlives its commits
// (its drain takes every slot back first).
const writer = (c: Committer) =>
  Effect.gen(function* () {
    while (true) {
      yield* Semaphore.take(c.slots, 1)
      yield* awaitOverlap(c)
      const batch = yield* Queue.takeBetween(c.staging, 1, c.options.maxBatchSize).pipe(
        Effect.onError(() => Semaphore.release(c.slots, 1))
      )
      c.committing++
      yield* Effect.forkChild(commitOrHalt(c, batch).pipe(Effect.ensuring(finished(c))))
    }
  })

// Tries to flush audit records carried from failed batches at the end; a database that keeps
// failing must not keep an actor from stopping, and these records are audit, not orders.
const flushAttempts = 3

const carrying = (c: Committer) => c.carried.length > 0 || c.carriedRefusals.length > 0

// Ended: every batch in flight is answered, and audit records carried from a failed batch get
// a commit of their own, before the committer reports itself drained.
const drain = (c: Committer) =>
  Effect.gen(function* () {
    yield* Semaphore.take(c.slots, c.options.commitsInFlight)
    for (let attempt = 0; attempt < flushAttempts && carrying(c) && c.halted === undefined; attempt++)
      yield* commitOrHalt(c, [])
    if (carrying(c) && c.halted === undefined)
      yield* Effect.logError("audit records of failed batches could not be flushed", {
        saleId: c.options.saleId,
        records: c.carried.length,
        refusalCounts: c.carriedRefusals.length
      })
    c.options.report({ _tag: "Drained" })
  })

export const make = Effect.fnUntraced(function* (
  options: CommitterOptions
): Effect.fn.Return<GroupCommitter, never, OrderStore | Scope.Scope> {
  const c: Committer = {
    options,
    store: yield* OrderStore,
    staging: yield* Queue.bounded<Staged, Cause.Done>(Math.max(options.maxBatchSize * 4, 1024)),
    slots: yield* Semaphore.make(options.commitsInFlight),
    overlapChanged: yield* Latch.make(false),
    carried: [],
    carriedRefusals: [],
    halted: undefined,
    committing: 0
  }
  yield* Effect.forkIn(writer(c).pipe(Effect.catchIf(Cause.isDone, () => drain(c))), yield* Effect.scope)
  const wakeIfFull = Effect.sync(() => {
    if (Queue.sizeUnsafe(c.staging) >= options.maxBatchSize) c.overlapChanged.openUnsafe()
  })
  return {
    stage: (attempts) => Effect.andThen(Queue.offerAll(c.staging, attempts), wakeIfFull),
    end: Effect.asVoid(Queue.end(c.staging))
  }
})

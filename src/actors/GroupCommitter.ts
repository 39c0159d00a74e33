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
  type OrderToCommit
} from "../storage/OrderStore.ts"

/** One decided attempt on its way to PostgreSQL: its audit record, and for an accepted order its buyer. */
export interface Staged {
  readonly attempt: AttemptRecord
  readonly order: OrderToCommit | undefined
  /** The accepted buyer's reply: called once, with `Accepted` only after COMMIT. */
  readonly reply: ((answer: Outcome | Refusal) => void) | undefined
}

/**
 * What the committer tells its actor, on the committer's fibers. Every batch with orders is
 * reported exactly once, after its buyers were answered, as one of the first three.
 */
export type CommitterReport =
  /** In PostgreSQL: the receipt proves it. */
  | {
      readonly _tag: "Committed"
      readonly orders: ReadonlyArray<OrderToCommit>
      readonly receipt: CommitReceipt
    }
  /** Known not to be in PostgreSQL: its buyers were refused, and may retry. */
  | {
      readonly _tag: "NotCommitted"
      readonly orders: ReadonlyArray<OrderToCommit>
      readonly refusal: PurchaseUnavailable
    }
  /** Whether it went through could not be learned: its buyers were refused, the committer halted. */
  | {
      readonly _tag: "Unknown"
      readonly orders: ReadonlyArray<OrderToCommit>
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
  /** Called after every successful commit, on the committer's fiber: keep it cheap. */
  readonly onCommit?: ((report: CommitReport) => void) | undefined
  /** Receives every report; must not block. */
  readonly report: (report: CommitterReport) => void
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

// The only way a staged buyer hears "accepted": by presenting the commit's receipt (invariant I3).
const answerAccepted = (staged: Staged, receipt: CommitReceipt) => {
  if (staged.reply === undefined || staged.order === undefined) return
  if (!receipt.orderIds.has(staged.order.orderId))
    throw new Error("answered an order the receipt does not hold")
  staged.reply({ _tag: "Accepted", orderId: staged.order.orderId })
}

const answerAll = (batch: ReadonlyArray<Staged>, refusal: PurchaseUnavailable) => {
  for (const s of batch) s.reply?.(refusal)
}

export const make = Effect.fnUntraced(function* (
  options: CommitterOptions
): Effect.fn.Return<GroupCommitter, never, OrderStore | Scope.Scope> {
  const store = yield* OrderStore
  const scope = yield* Effect.scope
  const { saleId, epoch, maxBatchSize, report } = options
  // Bounded: when the database falls behind, `stage` waits, the actor's mailbox fills, and
  // buyers get 503s instead of the node queueing without limit.
  const staging = yield* Queue.bounded<Staged, Cause.Done>(Math.max(maxBatchSize * 4, 1024))
  // Audit records of a batch that failed, carried into the next one so none is lost.
  let carried: Array<AttemptRecord> = []
  let halted: "fenced" | "failed" | undefined
  let committing = 0
  const slots = yield* Semaphore.make(options.commitsInFlight)
  // Opened by a finished commit or a full batch: what a writer waiting to overlap waits for.
  const overlapChanged = yield* Latch.make(false)

  const unavailable = (reason: "commit_failed" | "fenced" | "stopping") =>
    new PurchaseUnavailable({ saleId, reason, retryAfterSeconds: options.retryAfterSeconds })

  const halt = (reason: "fenced" | "failed") => {
    if (halted !== undefined) return
    halted = reason
    report({ _tag: "Halted", reason })
  }

  const ordersOf = (batch: ReadonlyArray<Staged>) => {
    const orders: Array<OrderToCommit> = []
    for (const s of batch) if (s.order !== undefined) orders.push(s.order)
    return orders
  }

  const settled = (
    batch: ReadonlyArray<Staged>,
    outcome: CommitReceipt | PurchaseUnavailable,
    known: boolean
  ) => {
    const orders = ordersOf(batch)
    if (outcome instanceof PurchaseUnavailable) answerAll(batch, outcome)
    else for (const s of batch) answerAccepted(s, outcome)
    if (orders.length === 0) return
    if (outcome instanceof PurchaseUnavailable)
      report({ _tag: known ? "NotCommitted" : "Unknown", orders, refusal: outcome })
    else report({ _tag: "Committed", orders, receipt: outcome })
  }

  /**
   * A commit that did not answer: ask PostgreSQL whether that transaction went through. If it
   * did, its buyers are answered "accepted" and its audit records are in; if not, its buyers
   * are refused and every record of the batch waits for the next commit, once.
   */
  const settle = Effect.fnUntraced(function* (
    batch: ReadonlyArray<Staged>,
    sent: Batch,
    cause: Cause.Cause<unknown>
  ) {
    const outcome = yield* store.outcomeOf(sent).pipe(
      // A connection killed mid-query surfaces as a defect; here it is just another try.
      Effect.catchCause((failure) => Effect.fail(failure)),
      Effect.retry(settleSchedule),
      Effect.option
    )
    if (outcome._tag === "None") {
      yield* Effect.logError(
        "commit outcome unknown and database unreachable; halting the sale's committer",
        {
          saleId,
          cause: Cause.pretty(cause)
        }
      )
      halt("failed")
      return settled(batch, unavailable("commit_failed"), false)
    }
    const receipt = outcome.value
    yield* Effect.logWarning("batch commit failed; settled against PostgreSQL", {
      saleId,
      orders: sent.orders.length,
      committed: receipt !== undefined
    })
    if (receipt !== undefined) return settled(batch, receipt, true)
    // Only this batch's records can say "accepted"; those orders were not stored.
    for (const a of sent.attempts)
      carried.push(a.outcome === "accepted" ? { ...a, outcome: "commit_failed" } : a)
    settled(batch, unavailable("commit_failed"), true)
  })

  const commitBatch = Effect.fnUntraced(function* (batch: ReadonlyArray<Staged>) {
    if (halted !== undefined)
      return settled(batch, unavailable(halted === "fenced" ? "fenced" : "stopping"), true)
    const attempts = carried
    carried = []
    for (const s of batch) attempts.push(s.attempt)
    const sent: Batch = { batchId: randomUUID(), saleId, epoch, orders: ordersOf(batch), attempts }
    const started = yield* Clock.currentTimeMillis
    const exit = yield* Effect.exit(store.commit(sent))
    if (Exit.isSuccess(exit)) {
      settled(batch, exit.value, true)
      const finished = yield* Clock.currentTimeMillis
      options.onCommit?.({
        orders: sent.orders.length,
        attempts: attempts.length,
        millis: finished - started
      })
      return
    }
    if (exit.cause.reasons.some((r) => Cause.isFailReason(r) && r.error._tag === "StaleEpoch")) {
      yield* Effect.logWarning("fenced: another owner holds a newer epoch; halting", { saleId, epoch })
      halt("fenced")
      // The fence rolled the whole batch back: nothing of it is stored.
      return settled(batch, unavailable("fenced"), true)
    }
    yield* settle(batch, sent, exit.cause)
  })

  // Whatever goes wrong in a commit, its buyers are answered: a bug must not leave them waiting.
  const commitOrHalt = (batch: ReadonlyArray<Staged>) =>
    commitBatch(batch).pipe(
      Effect.catchCause((cause) =>
        Effect.gen(function* () {
          yield* Effect.logError("sale committer failed; halting", { saleId, cause: Cause.pretty(cause) })
          halt("failed")
          settled(batch, unavailable("stopping"), false)
        })
      )
    )

  const mayOverlap = () => committing === 0 || Queue.sizeUnsafe(staging) >= maxBatchSize

  // Checked and closed in one synchronous step, so no signal can fall between them.
  const awaitOverlap = Effect.whileLoop({
    while: () => !mayOverlap(),
    body: () => Effect.suspend(() => (overlapChanged.closeUnsafe(), overlapChanged.await)),
    step: () => {}
  })

  const finished = Effect.suspend(() => {
    committing--
    overlapChanged.openUnsafe()
    return Semaphore.release(slots, 1)
  })

  // A batch is taken only when a slot is free, so batches keep growing while all are busy.
  const writer = Effect.gen(function* () {
    while (true) {
      yield* Semaphore.take(slots, 1)
      yield* awaitOverlap
      const batch = yield* Queue.takeBetween(staging, 1, maxBatchSize).pipe(
        Effect.onError(() => Semaphore.release(slots, 1))
      )
      committing++
      yield* Effect.forkIn(commitOrHalt(batch).pipe(Effect.ensuring(finished)), scope)
    }
  })

  // Ended: every batch in flight is answered, and audit records carried from a failed batch get
  // a commit of their own, before the committer reports itself drained.
  const drain = Semaphore.take(slots, options.commitsInFlight).pipe(
    Effect.andThen(
      Effect.whileLoop({
        while: () => carried.length > 0 && halted === undefined,
        body: () => commitOrHalt([]),
        step: () => {}
      })
    ),
    Effect.andThen(Effect.sync(() => report({ _tag: "Drained" })))
  )

  yield* Effect.forkIn(writer.pipe(Effect.catchIf(Cause.isDone, () => drain)), scope)

  const wakeIfFull = Effect.sync(() => {
    if (Queue.sizeUnsafe(staging) >= maxBatchSize) overlapChanged.openUnsafe()
  })

  return {
    stage: (attempts) => Effect.andThen(Queue.offerAll(staging, attempts), wakeIfFull),
    end: Effect.asVoid(Queue.end(staging))
  }
})

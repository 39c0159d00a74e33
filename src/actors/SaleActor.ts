import { Cause, Clock, Deferred, Effect, Exit, Queue, Schedule, Semaphore, type Scope } from "effect"
import { randomUUID } from "node:crypto"
import { Overloaded, PurchaseUnavailable } from "../domain/Errors.ts"
import type { OrderId, SaleId, UserId } from "../domain/Ids.ts"
import { attemptReason, type Outcome } from "../domain/Outcome.ts"
import {
  OrderStore,
  type AttemptRecord,
  type Batch,
  type Claim,
  type CommitReceipt,
  type OrderToCommit
} from "../storage/OrderStore.ts"
import * as Sale from "./SaleState.ts"

export type Accepted = Extract<Outcome, { _tag: "Accepted" }>
export type Rejection = Exclude<Outcome, Accepted>

/** Why an actor stopped: asked to (drained and flushed), or fenced by a newer owner. */
export type StopReason = "stopped" | "fenced" | "failed"

export interface SaleView {
  readonly saleId: SaleId
  readonly epoch: number
  readonly total: number
  readonly remaining: number
  readonly startsAt: number
  readonly endsAt: number
  readonly status: Sale.SaleStatus
  readonly mailboxDepth: number
}

/** A completed commit, for metrics: how many orders and attempts, and how long it took. */
export interface CommitReport {
  readonly orders: number
  readonly attempts: number
  readonly millis: number
}

export interface ActorOptions {
  readonly mailboxCapacity: number
  readonly maxBatchSize: number
  /** Batches committing at once, each in its own transaction; 1 commits strictly one by one. */
  readonly commitsInFlight?: number
  /** Seconds a caller is told to wait before retrying an overloaded or unavailable sale. */
  readonly retryAfterSeconds?: number
  /** Called after every successful commit, on the writer fiber: keep it cheap. */
  readonly onCommit?: (report: CommitReport) => void
}

/**
 * One sale's single writer. Purchases enter a bounded mailbox; one fiber takes them in
 * order and decides each in memory; accepted orders are staged for a second fiber that
 * commits everything staged in one transaction whenever the previous commit returns.
 */
export interface SaleActor {
  readonly saleId: SaleId
  readonly epoch: number
  /** Answers after the decision, and for an accepted order only after its COMMIT. */
  readonly purchase: (userId: UserId) => Effect.Effect<Outcome, Overloaded | PurchaseUnavailable>
  /**
   * `purchase` without a fiber, for the HTTP fast path: `reply` is called exactly once, at
   * once with `Overloaded` when the mailbox is full, else when `purchase` would answer.
   */
  readonly offer: (userId: UserId, reply: (answer: Reply) => void) => void
  readonly cancel: Effect.Effect<void>
  readonly view: (now: number) => SaleView
  /** Stops taking purchases, decides what is queued, commits what is staged, then ends. */
  readonly stop: Effect.Effect<StopReason>
  /**
   * Stops deciding at once, for an owner that lost its lease: what is queued is refused with
   * a retryable error, undecided; what was decided already is committed (or, fenced, refused).
   */
  readonly relinquish: Effect.Effect<StopReason>
  /** Completes when the actor has stopped, for whatever reason. */
  readonly stopped: Effect.Effect<StopReason>
}

/** What a purchase is answered with: the sale's decision, or a refusal to decide now. */
export type Reply = Outcome | Overloaded | PurchaseUnavailable

export const isRefusal = (reply: Reply): reply is Overloaded | PurchaseUnavailable =>
  reply instanceof Overloaded || reply instanceof PurchaseUnavailable

interface Envelope {
  readonly userId: UserId
  readonly orderId: OrderId
  readonly resume: (answer: Outcome | PurchaseUnavailable) => void
}

/** One decided attempt on its way to the writer: its audit record, and a waiting buyer if accepted. */
interface Staged {
  readonly attempt: AttemptRecord
  readonly order: OrderToCommit | undefined
  readonly envelope: Envelope | undefined
}

// The only two ways a buyer is answered. An acceptance needs the commit's receipt, so no
// code path can say "purchased" for an order that is not in PostgreSQL (invariant I3).
const answerRejection = (envelope: Envelope, outcome: Rejection) => envelope.resume(outcome)
const answerAccepted = (envelope: Envelope, receipt: CommitReceipt) => {
  if (!receipt.orderIds.has(envelope.orderId)) throw new Error("answered an order the receipt does not hold")
  envelope.resume({ _tag: "Accepted", orderId: envelope.orderId })
}

// How long a writer keeps trying to learn whether a broken commit went through before the
// actor gives up and stops (its reservations stay held, so giving up can only undersell).
const settleSchedule = Schedule.spaced("200 millis").pipe(Schedule.upTo({ duration: "30 seconds" }))

export const make = Effect.fnUntraced(function* (
  claim: Claim,
  options: ActorOptions
): Effect.fn.Return<SaleActor, never, OrderStore | Scope.Scope> {
  const store = yield* OrderStore
  const scope = yield* Effect.scope
  const saleId = claim.snapshot.saleId
  const epoch = claim.epoch
  const retryAfterSeconds = options.retryAfterSeconds ?? 1

  let state = Sale.initialState(claim.snapshot)
  // Set once the actor must refuse work: fenced by a newer owner, or unable to reach the database.
  let halted: "fenced" | "failed" | undefined
  let stopping = false
  // Set by `relinquish`: queued purchases are refused instead of decided.
  let relinquished = false
  const stopped = yield* Deferred.make<StopReason>()
  const mailbox = yield* Queue.dropping<Envelope, Cause.Done>(options.mailboxCapacity)
  // Bounded: when the database falls behind, the decider waits, the mailbox fills, and
  // buyers get 503s instead of the node queueing without limit.
  const staging = yield* Queue.bounded<Staged, Cause.Done>(Math.max(options.maxBatchSize * 4, 1024))
  // Audit records of a batch that failed, carried into the next one so none is lost.
  let carried: Array<AttemptRecord> = []
  // Wakes the writer when it waits to start a commit beside one in flight (see the writer).
  let wakeWriter = (): void => {}

  const unavailable = (reason: "commit_failed" | "fenced" | "stopping") =>
    new PurchaseUnavailable({ saleId, reason, retryAfterSeconds })

  const refuse = (envelope: Envelope) =>
    envelope.resume(unavailable(halted === "fenced" ? "fenced" : "stopping"))

  const halt = (reason: "fenced" | "failed") => {
    halted = reason
    Queue.endUnsafe(mailbox)
  }

  const decideAll = (envelopes: ReadonlyArray<Envelope>, now: number): Array<Staged> => {
    const staged: Array<Staged> = []
    for (const envelope of envelopes) {
      if (halted !== undefined || relinquished) {
        refuse(envelope)
        continue
      }
      const [next, outcome] = Sale.decide(state, { userId: envelope.userId, orderId: envelope.orderId, now })
      state = next
      const attempt: AttemptRecord = {
        userId: envelope.userId,
        outcome: attemptReason[outcome._tag],
        at: now
      }
      if (outcome._tag === "Accepted") {
        staged.push({
          attempt,
          order: { orderId: outcome.orderId, userId: envelope.userId, at: now },
          envelope
        })
      } else {
        answerRejection(envelope, outcome)
        staged.push({ attempt, order: undefined, envelope: undefined })
      }
    }
    return staged
  }

  const decider = Effect.gen(function* () {
    while (true) {
      const envelopes = yield* Queue.takeAll(mailbox)
      const now = yield* Clock.currentTimeMillis
      yield* Queue.offerAll(staging, decideAll(envelopes, now))
      if (Queue.sizeUnsafe(staging) >= options.maxBatchSize) wakeWriter()
    }
  }).pipe(
    Effect.catchIf(Cause.isDone, () => Effect.void),
    Effect.ensuring(Queue.end(staging))
  )

  /**
   * A commit that did not answer: ask PostgreSQL whether that transaction went through. If it
   * did, its buyers are answered "accepted" and its audit records are in; if not, the units
   * go back and every record of the batch waits for the next commit, once.
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
      yield* Effect.logError("commit outcome unknown and database unreachable; stopping the sale's actor", {
        saleId,
        cause: Cause.pretty(cause)
      })
      for (const s of batch) if (s.envelope !== undefined) s.envelope.resume(unavailable("commit_failed"))
      return halt("failed")
    }
    const receipt = outcome.value
    yield* Effect.logWarning("batch commit failed; settled against PostgreSQL", {
      saleId,
      orders: sent.orders.length,
      committed: receipt !== undefined
    })
    if (receipt !== undefined) {
      for (const s of batch) if (s.envelope !== undefined) answerAccepted(s.envelope, receipt)
      return
    }
    for (const s of batch) {
      if (s.envelope === undefined) continue
      state = Sale.release(state, s.envelope.userId, s.envelope.orderId)
      s.envelope.resume(unavailable("commit_failed"))
    }
    // Only this batch's records can say "accepted"; those orders were not stored.
    for (const a of sent.attempts)
      carried.push(a.outcome === "accepted" ? { ...a, outcome: "commit_failed" } : a)
  })

  const fence = (batch: ReadonlyArray<Staged>) =>
    Effect.gen(function* () {
      halt("fenced")
      for (const s of batch) if (s.envelope !== undefined) refuse(s.envelope)
      yield* Effect.logWarning("fenced: another owner holds a newer epoch; stopping", { saleId, epoch })
    })

  const commitBatch = Effect.fnUntraced(function* (batch: ReadonlyArray<Staged>) {
    if (halted !== undefined) {
      for (const s of batch) if (s.envelope !== undefined) refuse(s.envelope)
      return
    }
    const orders: Array<OrderToCommit> = []
    const attempts = carried
    carried = []
    for (const s of batch) {
      attempts.push(s.attempt)
      if (s.order !== undefined) orders.push(s.order)
    }
    const sent: Batch = { batchId: randomUUID(), saleId, epoch, orders, attempts }
    const started = yield* Clock.currentTimeMillis
    const exit = yield* Effect.exit(store.commit(sent))
    if (Exit.isSuccess(exit)) {
      for (const s of batch) if (s.envelope !== undefined) answerAccepted(s.envelope, exit.value)
      const finished = yield* Clock.currentTimeMillis
      options.onCommit?.({ orders: orders.length, attempts: attempts.length, millis: finished - started })
      return
    }
    const stale = exit.cause.reasons.some((r) => Cause.isFailReason(r) && r.error._tag === "StaleEpoch")
    if (stale) return yield* fence(batch)
    yield* settle(batch, sent, exit.cause)
  })

  // Whatever goes wrong in a commit, its buyers are answered: a bug must not leave them waiting.
  const commitOrHalt = (batch: ReadonlyArray<Staged>) =>
    commitBatch(batch).pipe(
      Effect.catchCause((cause) =>
        Effect.gen(function* () {
          yield* Effect.logError("sale actor failed; stopping", { saleId, cause: Cause.pretty(cause) })
          halt("failed")
          for (const s of batch) if (s.envelope !== undefined) refuse(s.envelope)
        })
      )
    )

  // Stopping, for any reason, is the same drain: the mailbox is closed, the decider answers
  // or stages what was queued and closes the staging queue, and the writer commits (or,
  // once halted, refuses) everything staged. No buyer is left without an answer.
  //
  // Up to `commitsInFlight` batches commit at once (each on its own connection): while one
  // waits for PostgreSQL, the next is built and sent, and the database's inserts overlap. A
  // batch is taken only when a slot is free, so batches keep growing while all are busy.
  // A commit starts beside one already in flight only when a full batch is waiting: under a
  // flood the overlap is what keeps up, but under the load of a few hundred connections
  // (a backlog of hundreds) it only splits the same orders over more transactions, which
  // costs more CPU in PostgreSQL and the node than it saves in waiting.
  const inFlight = options.commitsInFlight ?? 3
  const slots = yield* Semaphore.make(inFlight)
  let committing = 0
  const mayOverlap = () => committing === 0 || Queue.sizeUnsafe(staging) >= options.maxBatchSize
  const writer = Effect.gen(function* () {
    while (true) {
      yield* Semaphore.take(slots, 1)
      // Woken by a finished commit (one always is in flight while this waits) or by the decider.
      while (!mayOverlap()) {
        const nudge = Deferred.makeUnsafe<void>()
        wakeWriter = () => Deferred.doneUnsafe(nudge, Exit.void)
        yield* Deferred.await(nudge)
      }
      const batch = yield* Queue.takeBetween(staging, 1, options.maxBatchSize).pipe(
        Effect.onError(() => Semaphore.release(slots, 1))
      )
      committing++
      yield* Effect.forkIn(
        commitOrHalt(batch).pipe(
          Effect.ensuring(
            Effect.suspend(() => {
              committing--
              wakeWriter()
              return Semaphore.release(slots, 1)
            })
          )
        ),
        scope
      )
    }
  }).pipe(
    Effect.catchIf(Cause.isDone, () => Effect.void),
    // Every batch in flight is answered before the actor counts as stopped, and audit
    // records carried from a failed batch get a commit of their own.
    Effect.andThen(Semaphore.take(slots, inFlight)),
    Effect.andThen(
      Effect.whileLoop({
        while: () => carried.length > 0 && halted === undefined,
        body: () => commitOrHalt([]),
        step: () => {}
      })
    ),
    Effect.andThen(Effect.suspend(() => Deferred.succeed(stopped, halted ?? "stopped")))
  )

  yield* Effect.forkIn(decider, scope)
  yield* Effect.forkIn(writer, scope)

  const stop = Effect.suspend(() => {
    stopping = true
    Queue.endUnsafe(mailbox)
    return Deferred.await(stopped)
  })
  // Added after the fibers, so it runs before they are interrupted: closing the scope drains.
  yield* Effect.addFinalizer(() => stop)

  const relinquish = Effect.suspend(() => {
    relinquished = true
    return stop
  })

  const offer = (userId: UserId, reply: (answer: Reply) => void) => {
    const envelope: Envelope = { userId, orderId: randomUUID() as OrderId, resume: reply }
    if (Queue.offerUnsafe(mailbox, envelope)) return
    if (stopping || halted !== undefined) refuse(envelope)
    else reply(new Overloaded({ saleId, retryAfterSeconds }))
  }

  const purchase = (userId: UserId) =>
    Effect.callback<Outcome, Overloaded | PurchaseUnavailable>((resume) =>
      offer(userId, (answer) => resume(isRefusal(answer) ? Effect.fail(answer) : Effect.succeed(answer)))
    )

  const actor: SaleActor = {
    saleId,
    epoch,
    purchase,
    offer,
    cancel: Effect.sync(() => {
      state = Sale.cancel(state)
    }),
    view: (now) => ({
      saleId,
      epoch,
      total: state.total,
      remaining: state.remaining,
      startsAt: state.startsAt,
      endsAt: state.endsAt,
      status: Sale.statusAt(state, now),
      mailboxDepth: Queue.sizeUnsafe(mailbox)
    }),
    stop,
    relinquish,
    stopped: Deferred.await(stopped)
  }
  return actor
})

import { Clock, Deferred, Effect, Queue, SubscriptionRef, type Cause, type Scope } from "effect"
import { randomUUID } from "node:crypto"
import { Overloaded } from "../domain/Errors.ts"
import type { OrderId, SaleId, UserId } from "../domain/Ids.ts"
import { OrderStore, type Claim } from "../storage/OrderStore.ts"
import type * as Tracing from "../Tracing.ts"
import * as Decider from "./Decider.ts"
import * as GroupCommitter from "./GroupCommitter.ts"
import * as Phase from "./Phase.ts"
import * as Holds from "./Holds.ts"
import * as Sale from "./SaleState.ts"

export type { StopReason } from "./Phase.ts"
export type { CommitReport } from "./GroupCommitter.ts"
export type { SaleFigures } from "./Decider.ts"

export interface SaleView {
  readonly saleId: SaleId
  readonly epoch: number
  readonly total: number
  readonly remaining: number
  readonly startsAt: number
  readonly endsAt: number
  readonly status: Sale.SaleStatus
  readonly mailboxDepth: number
  /** Orders held, unpaid: their deadlines are this actor's to keep. */
  readonly heldOrders: number
  /** The next of those deadlines (a lower bound), epoch ms; undefined when none is held. */
  readonly holdsDueAt: number | undefined
  /**
   * When the decider last took an offered purchase (or the actor started), epoch ms: the
   * registry's idle sweep reads it, so every path that offers counts as use.
   */
  readonly lastActiveAt: number
}

export interface ActorOptions {
  readonly mailboxCapacity: number
  readonly maxBatchSize: number
  /** Batches committing at once, each in its own transaction; 1 commits strictly one by one. */
  readonly commitsInFlight?: number
  /** Seconds a caller is told to wait before retrying an overloaded or unavailable sale. */
  readonly retryAfterSeconds?: number
  /** Called after every successful commit, on the committer's fiber: keep it cheap. */
  readonly onCommit?: (report: GroupCommitter.CommitReport) => void
  /** Spans for traced purchases' decisions and for batch commits; undefined while tracing is off. */
  readonly startSpan?: Tracing.StartSpan | undefined
}

/**
 * One sale's single writer. Purchases enter a bounded mailbox; one fiber, the decider, takes
 * them in order, decides each in memory and is the only writer of the sale's state; accepted
 * orders go to the group committer, whose reports come back to the decider as messages.
 */
export interface SaleActor {
  readonly saleId: SaleId
  readonly epoch: number
  /**
   * The purchase primitive: `reply` is called exactly once, synchronously or later, and never
   * before the decision (for an accepted order, never before its COMMIT). It needs no fiber,
   * which is what keeps the hot path lean. `trace` is the purchase's span when its trace is
   * kept: the decision is that span's child, and the commit that carries its order links to it.
   */
  readonly offer: (userId: UserId, reply: Decider.Reply, trace?: Tracing.TraceContext) => void
  /** A message to the decider; completes when applied. */
  readonly cancel: Effect.Effect<void>
  /**
   * Tells the decider of a payment or a cancellation already applied to a held order's row,
   * so a cancelled unit is back on sale at once, not at the hold's deadline.
   */
  readonly settle: (orderId: OrderId, status: Holds.Settle["status"]) => void
  readonly view: (now: number) => SaleView
  /** Published by the decider after every committed change of remaining/cancelled: the sale watch reads it. */
  readonly figures: SubscriptionRef.SubscriptionRef<Decider.SaleFigures>
  /** Stops taking purchases, decides what is queued, commits what is staged, then ends. */
  readonly stop: Effect.Effect<Phase.StopReason>
  /**
   * Stops deciding at once, for an owner that lost its lease: what is queued is refused with
   * a retryable error, undecided; what was decided already is committed (or, fenced, refused).
   */
  readonly relinquish: Effect.Effect<Phase.StopReason>
  /** Completes when the actor has stopped, for whatever reason. */
  readonly stopped: Effect.Effect<Phase.StopReason>
}

const wake: Decider.Message = { _tag: "Wake" }

const reasonOf = (phase: Phase.Phase): Phase.StopReason =>
  phase._tag === "Stopped" ? phase.reason : "failed"

// Timers hold at most ~24.8 days: a later wake is armed again on the way.
const longestTimer = 2_000_000_000

const makeDecider = Effect.fnUntraced(function* (
  claim: Claim,
  retryAfterSeconds: number,
  startSpan: Tracing.StartSpan | undefined
) {
  const state = Sale.initialState(claim.snapshot)
  const first = Decider.figuresOf({ saleId: claim.snapshot.saleId, epoch: claim.epoch, state }, 0)
  const d: Decider.Decider = {
    saleId: claim.snapshot.saleId,
    epoch: claim.epoch,
    retryAfterSeconds,
    startSpan,
    mailbox: yield* Queue.unbounded<Decider.Message, Cause.Done>(),
    figures: yield* SubscriptionRef.make(first),
    waiters: new Map(),
    phase: Phase.running,
    state,
    lastActiveAt: yield* Clock.currentTimeMillis,
    queued: 0,
    published: first,
    ended: false,
    wakeAfter: (millis) => wakeAt(Date.now() + millis),
    drawRetryAt: 0,
    holdWakeAt: 0,
    expiryRetryAt: 0,
    expiring: false
  }
  // Unref'd: a sale's timer never keeps the process alive; a Wake to an ended mailbox is dropped.
  function wakeAt(at: number): void {
    const wait = at - Date.now()
    if (wait > longestTimer) setTimeout(() => wakeAt(at), longestTimer).unref()
    else setTimeout(() => Queue.offerUnsafe(d.mailbox, wake), Math.max(0, wait)).unref()
  }
  // A draw sale not yet drawn wakes its decider when the window closes.
  const draw = state.draw
  if (draw !== undefined && draw.waitingList === undefined)
    d.wakeAfter(Math.max(0, draw.drawAt - d.lastActiveAt) + 1)
  // A hold sale's owner resumes the deadlines of the holds it loaded: one timer, the next one.
  const deadline = state.holds === undefined ? undefined : Holds.nextDeadline(state.holds)
  if (deadline !== undefined) {
    d.holdWakeAt = deadline
    d.wakeAfter(Math.max(0, deadline - d.lastActiveAt) + 1)
  }
  return d
})

const makeOffer =
  (d: Decider.Decider, mailboxCapacity: number): SaleActor["offer"] =>
  (userId, reply, trace) => {
    if (!Phase.admits(d.phase)) return reply(Decider.refusal(d))
    if (d.queued >= mailboxCapacity)
      return reply(new Overloaded({ saleId: d.saleId, retryAfterSeconds: d.retryAfterSeconds }))
    d.queued++
    Queue.offerUnsafe(d.mailbox, { _tag: "Purchase", userId, orderId: randomUUID() as OrderId, reply, trace })
  }

const viewOf = (d: Decider.Decider, now: number): SaleView => ({
  saleId: d.saleId,
  epoch: d.epoch,
  total: d.state.total,
  remaining: d.state.remaining,
  startsAt: d.state.startsAt,
  endsAt: d.state.endsAt,
  status: Sale.statusAt(d.state, now, d.state.draw?.drawAt),
  mailboxDepth: d.queued,
  heldOrders: d.state.holds?.held ?? 0,
  holdsDueAt:
    d.state.holds === undefined || d.state.holds.held === 0 ? undefined : Holds.nextDeadline(d.state.holds),
  lastActiveAt: d.lastActiveAt
})

export const make = Effect.fnUntraced(function* (
  claim: Claim,
  options: ActorOptions
): Effect.fn.Return<SaleActor, never, OrderStore | Scope.Scope> {
  const scope = yield* Effect.scope
  const d = yield* makeDecider(claim, options.retryAfterSeconds ?? 1, options.startSpan)
  const stopped = yield* Deferred.make<Phase.StopReason>()
  const store = yield* OrderStore
  const committer = yield* GroupCommitter.make({
    saleId: d.saleId,
    epoch: d.epoch,
    drawAt: d.state.draw?.drawAt,
    maxBatchSize: options.maxBatchSize,
    commitsInFlight: options.commitsInFlight ?? 3,
    retryAfterSeconds: d.retryAfterSeconds,
    onCommit: options.onCommit,
    startSpan: options.startSpan,
    report: (report) => {
      // A halt takes effect at once, so new purchases are refused without queueing.
      if (report._tag === "Halted") Decider.advance(d, report.reason === "fenced" ? "fence" : "fail")
      Queue.offerUnsafe(d.mailbox, report)
    }
  })
  yield* Effect.forkIn(
    Decider.run(d, committer, store.draw, store.endHolds).pipe(
      Effect.ensuring(Effect.suspend(() => Deferred.succeed(stopped, reasonOf(d.phase))))
    ),
    scope
  )
  const request = (event: "stop" | "relinquish") =>
    Effect.suspend(() => {
      Decider.advance(d, event)
      Queue.offerUnsafe(d.mailbox, wake)
      return Deferred.await(stopped)
    })
  // Added after the fibers, so it runs before they are interrupted: closing the scope drains.
  yield* Effect.addFinalizer(() => request("stop"))
  return {
    saleId: d.saleId,
    epoch: d.epoch,
    offer: makeOffer(d, options.mailboxCapacity),
    cancel: Effect.callback<void>((resume) => {
      if (!Queue.offerUnsafe(d.mailbox, { _tag: "Cancel", applied: () => resume(Effect.void) }))
        resume(Effect.void)
    }),
    settle: (orderId, status) => {
      Queue.offerUnsafe(d.mailbox, { _tag: "Settle", orderId, status })
    },
    view: (now) => viewOf(d, now),
    figures: d.figures,
    stop: request("stop"),
    relinquish: request("relinquish"),
    stopped: Deferred.await(stopped)
  }
})

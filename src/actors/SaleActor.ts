import { Cause, Clock, Deferred, Effect, Queue, SubscriptionRef, type Scope } from "effect"
import { randomUUID } from "node:crypto"
import { Overloaded, PurchaseUnavailable } from "../domain/Errors.ts"
import type { OrderId, SaleId, UserId } from "../domain/Ids.ts"
import { attemptReason, type Outcome } from "../domain/Outcome.ts"
import type { Offer, Refusal } from "../domain/Reply.ts"
import type { Claim, CommitReceipt, OrderStore, OrderToCommit } from "../storage/OrderStore.ts"
import * as GroupCommitter from "./GroupCommitter.ts"
import * as Phase from "./Phase.ts"
import * as Sale from "./SaleState.ts"

export type { StopReason } from "./Phase.ts"
export type { CommitReport } from "./GroupCommitter.ts"

export interface SaleView {
  readonly saleId: SaleId
  readonly epoch: number
  readonly total: number
  readonly remaining: number
  readonly startsAt: number
  readonly endsAt: number
  readonly status: Sale.SaleStatus
  readonly mailboxDepth: number
  /** When a purchase was last offered (or the actor started), epoch milliseconds. */
  readonly lastActiveAt: number
}

/** What the sale watch shows of a sale: versioned, so a watcher can tell a newer figure. */
export interface SaleFigures {
  readonly saleId: SaleId
  readonly epoch: number
  readonly version: number
  readonly total: number
  readonly remaining: number
  readonly startsAt: number
  readonly endsAt: number
  readonly cancelled: boolean
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
}

/**
 * One sale's single writer. Purchases enter a bounded mailbox; one fiber, the decider, takes
 * them in order, decides each in memory and is the only writer of the sale's state; accepted
 * orders go to the group committer, whose reports come back to the decider as messages.
 */
export interface SaleActor {
  readonly saleId: SaleId
  readonly epoch: number
  /** The purchase primitive: answered after the decision, and for an order only after its COMMIT. */
  readonly offer: Offer
  /** A message to the decider; completes when applied. */
  readonly cancel: Effect.Effect<void>
  readonly view: (now: number) => SaleView
  /** Published by the decider after every change of total/remaining/cancelled: the sale watch reads it. */
  readonly figures: SubscriptionRef.SubscriptionRef<SaleFigures>
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

type Reply = (answer: Outcome | Refusal) => void

/** What the decider takes from its mailbox. Only purchases count against its capacity. */
type Message =
  | { readonly _tag: "Purchase"; readonly userId: UserId; readonly orderId: OrderId; readonly reply: Reply }
  | { readonly _tag: "Cancel"; readonly applied: () => void }
  /** Sent by `stop` and `relinquish`, so a decider waiting on an empty mailbox looks at the phase. */
  | { readonly _tag: "Wake" }
  | GroupCommitter.CommitterReport

type Settlement = Extract<GroupCommitter.CommitterReport, { readonly orders: unknown }>

/** A repeat of a buyer whose order is pending: answered when that order's batch is. */
interface Waiter {
  readonly userId: UserId
  readonly at: number
  readonly reply: Reply
}

const wake: Message = { _tag: "Wake" }

/** How a repeat answered with a batch's fate is audited; a refusal after a halt is not audited. */
const repeatRecord = (settlement: Settlement): string | undefined => {
  if (settlement._tag === "Committed") return attemptReason.AlreadyPurchased
  if (settlement._tag === "NotCommitted" && settlement.refusal.reason === "commit_failed")
    return "commit_failed"
  return undefined
}

// A repeat hears "already purchased" only by presenting the commit's receipt (invariant I3).
const answerRepeat = (waiter: Waiter, order: OrderToCommit, receipt: CommitReceipt) => {
  if (!receipt.orderIds.has(order.orderId)) throw new Error("answered an order the receipt does not hold")
  waiter.reply({ _tag: "AlreadyPurchased", orderId: order.orderId })
}

export const make = Effect.fnUntraced(function* (
  claim: Claim,
  options: ActorOptions
): Effect.fn.Return<SaleActor, never, OrderStore | Scope.Scope> {
  const scope = yield* Effect.scope
  const saleId = claim.snapshot.saleId
  const epoch = claim.epoch
  const retryAfterSeconds = options.retryAfterSeconds ?? 1

  // Changed only by `advance`, through the one transition table.
  let phase: Phase.Phase = Phase.running
  const advance = (event: Phase.PhaseEvent) => {
    phase = Phase.transition(phase, event)
  }
  // Written only by the decider.
  let state = Sale.initialState(claim.snapshot)
  let lastActiveAt = yield* Clock.currentTimeMillis
  const waiters = new Map<OrderId, Array<Waiter>>()
  // Purchases in the mailbox: what counts against its capacity. Control messages do not.
  let queued = 0
  const mailbox = yield* Queue.unbounded<Message, Cause.Done>()
  const stopped = yield* Deferred.make<Phase.StopReason>()
  const figuresOf = (version: number): SaleFigures => ({
    saleId,
    epoch,
    version,
    total: state.total,
    remaining: state.remaining,
    startsAt: state.startsAt,
    endsAt: state.endsAt,
    cancelled: state.cancelled
  })
  const figures = yield* SubscriptionRef.make(figuresOf(0))

  const committer = yield* GroupCommitter.make({
    saleId,
    epoch,
    maxBatchSize: options.maxBatchSize,
    commitsInFlight: options.commitsInFlight ?? 3,
    retryAfterSeconds,
    onCommit: options.onCommit,
    report: (report) => {
      // A halt takes effect at once, so new purchases are refused without queueing.
      if (report._tag === "Halted") advance(report.reason === "fenced" ? "fence" : "fail")
      Queue.offerUnsafe(mailbox, report)
    }
  })

  const refusal = () =>
    new PurchaseUnavailable({ saleId, reason: Phase.refusalReason(phase), retryAfterSeconds })

  const park = (orderId: OrderId, waiter: Waiter) => {
    const parked = waiters.get(orderId)
    if (parked === undefined) waiters.set(orderId, [waiter])
    else parked.push(waiter)
  }

  const decidePurchase = (
    message: Extract<Message, { _tag: "Purchase" }>,
    now: number,
    staged: Array<GroupCommitter.Staged>
  ) => {
    queued--
    lastActiveAt = now
    if (!Phase.decides(phase)) return message.reply(refusal())
    const { userId, orderId, reply } = message
    const [next, decision] = Sale.decide(state, { _tag: "Purchase", userId, orderId, now })
    state = next
    switch (decision._tag) {
      case "Accepted":
        staged.push({
          attempt: { userId, outcome: "accepted", at: now },
          order: { orderId, userId, at: now },
          reply
        })
        return
      case "AwaitingCommit":
        return park(decision.orderId, { userId, at: now, reply })
      default:
        reply(decision)
        staged.push({
          attempt: { userId, outcome: attemptReason[decision._tag], at: now },
          order: undefined,
          reply: undefined
        })
    }
  }

  // Repeats get the original's answer; their own audit record follows in a later batch.
  const answerWaiters = (settlement: Settlement, staged: Array<GroupCommitter.Staged>) => {
    const recorded = repeatRecord(settlement)
    for (const order of settlement.orders) {
      const parked = waiters.get(order.orderId)
      if (parked === undefined) continue
      waiters.delete(order.orderId)
      for (const waiter of parked) {
        if (settlement._tag === "Committed") answerRepeat(waiter, order, settlement.receipt)
        else waiter.reply(settlement.refusal)
        if (recorded !== undefined)
          staged.push({
            attempt: { userId: waiter.userId, outcome: recorded, at: waiter.at },
            order: undefined,
            reply: undefined
          })
      }
    }
  }

  // An order whose fate is unknown stays pending, its unit held: this can only undersell, and
  // the committer has halted, so nothing is decided any more.
  const settle = (settlement: Settlement, staged: Array<GroupCommitter.Staged>) => {
    if (settlement._tag === "Committed")
      [state] = Sale.decide(state, { _tag: "Committed", orders: settlement.orders })
    else if (settlement._tag === "NotCommitted")
      [state] = Sale.decide(state, { _tag: "Released", orders: settlement.orders })
    if (waiters.size > 0) answerWaiters(settlement, staged)
  }

  /** Handles one message; true once the committer has drained and the decider may finish. */
  const handle = (message: Message, now: number, staged: Array<GroupCommitter.Staged>) => {
    switch (message._tag) {
      case "Purchase":
        return decidePurchase(message, now, staged)
      case "Cancel":
        ;[state] = Sale.decide(state, { _tag: "Cancel" })
        return message.applied()
      case "Committed":
      case "NotCommitted":
      case "Unknown":
        return settle(message, staged)
      case "Drained":
        advance("drained")
        Queue.endUnsafe(mailbox)
        return
      case "Halted":
      case "Wake":
        return
    }
  }

  let published = SubscriptionRef.getUnsafe(figures)
  const publish = Effect.suspend(() => {
    if (state.remaining === published.remaining && state.cancelled === published.cancelled) return Effect.void
    published = figuresOf(published.version + 1)
    return SubscriptionRef.set(figures, published)
  })

  // Once nothing can be admitted, nothing is queued and no order is pending, the committer
  // has everything it will ever get, the waiters' audit records included. A halted committer
  // refuses every record, so then only the queue counts; the decider still answers every
  // waiter, as it handles messages until the committer has drained.
  let ended = false
  const endWhenIdle = Effect.suspend(() => {
    if (ended || Phase.admits(phase) || queued > 0) return Effect.void
    if (phase._tag !== "Halted" && state.pending.size > 0) return Effect.void
    ended = true
    return committer.end
  })

  const decider = Effect.gen(function* () {
    while (true) {
      const messages = yield* Queue.takeAll(mailbox)
      const now = yield* Clock.currentTimeMillis
      const staged: Array<GroupCommitter.Staged> = []
      for (const message of messages) handle(message, now, staged)
      if (staged.length > 0) yield* committer.stage(staged)
      yield* publish
      yield* endWhenIdle
    }
  })

  // A bug in the decider must not leave a buyer waiting: everyone still queued or parked is refused.
  const abandon = (cause: Cause.Cause<unknown>) =>
    Effect.gen(function* () {
      yield* Effect.logError("sale actor's decider failed; stopping", { saleId, cause: Cause.pretty(cause) })
      advance("fail")
      Queue.endUnsafe(mailbox)
      for (const parked of waiters.values()) for (const waiter of parked) waiter.reply(refusal())
      waiters.clear()
      for (const message of yield* Queue.clear(mailbox)) {
        if (message._tag === "Purchase") message.reply(refusal())
        else if (message._tag === "Cancel") message.applied()
      }
    })

  const reasonOf = (current: Phase.Phase): Phase.StopReason =>
    current._tag === "Stopped" ? current.reason : "failed"

  yield* Effect.forkIn(
    decider.pipe(
      Effect.catchIf(Cause.isDone, () => Effect.void),
      Effect.catchCause((cause) =>
        Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : abandon(cause)
      ),
      Effect.ensuring(Effect.suspend(() => Deferred.succeed(stopped, reasonOf(phase))))
    ),
    scope
  )

  const request = (event: "stop" | "relinquish") =>
    Effect.suspend(() => {
      advance(event)
      Queue.offerUnsafe(mailbox, wake)
      return Deferred.await(stopped)
    })
  // Added after the fibers, so it runs before they are interrupted: closing the scope drains.
  yield* Effect.addFinalizer(() => request("stop"))

  const offer: Offer = (userId, reply) => {
    if (!Phase.admits(phase)) return reply(refusal())
    if (queued >= options.mailboxCapacity) return reply(new Overloaded({ saleId, retryAfterSeconds }))
    queued++
    Queue.offerUnsafe(mailbox, { _tag: "Purchase", userId, orderId: randomUUID() as OrderId, reply })
  }

  return {
    saleId,
    epoch,
    offer,
    cancel: Effect.callback<void>((resume) => {
      if (!Queue.offerUnsafe(mailbox, { _tag: "Cancel", applied: () => resume(Effect.void) }))
        resume(Effect.void)
    }),
    view: (now) => ({
      saleId,
      epoch,
      total: state.total,
      remaining: state.remaining,
      startsAt: state.startsAt,
      endsAt: state.endsAt,
      status: Sale.statusAt(state, now),
      mailboxDepth: queued,
      lastActiveAt
    }),
    figures,
    stop: request("stop"),
    relinquish: request("relinquish"),
    stopped: Deferred.await(stopped)
  }
})

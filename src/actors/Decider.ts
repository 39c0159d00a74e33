import { Cause, Clock, Effect, Queue, SubscriptionRef } from "effect"
import { PurchaseUnavailable } from "../domain/Errors.ts"
import type { OrderId, SaleId, UserId } from "../domain/Ids.ts"
import { attemptReason, type Outcome } from "../domain/Outcome.ts"
import type { Refusal } from "../domain/Reply.ts"
import type { AttemptRecord, CommitReceipt, EntryToCommit, OrderToCommit } from "../storage/OrderStore.ts"
import type * as Tracing from "../Tracing.ts"
import { drawIfDue, type DrawCommit } from "./DrawStep.ts"
import { expireIfDue, settleExpiry, type ExpiryReport, type HoldCommit } from "./ExpiryStep.ts"
import type * as GroupCommitter from "./GroupCommitter.ts"
import type * as Holds from "./Holds.ts"
import * as Phase from "./Phase.ts"
import * as Sale from "./SaleState.ts"

/**
 * What the sale watch shows of a sale: versioned, so a watcher can tell a newer figure.
 * `remaining` counts the units no committed order holds: a unit reserved by an order still in
 * its batch shows as sold only once that batch has committed, so every published figure is
 * one PostgreSQL holds (or held, for a batch then rolled back, whose units come back).
 */
export interface SaleFigures {
  readonly saleId: SaleId
  readonly epoch: number
  readonly version: number
  readonly total: number
  readonly remaining: number
  readonly startsAt: number
  readonly endsAt: number
  readonly cancelled: boolean
  /** A draw sale's draw time, epoch ms; undefined for a first-come sale. */
  readonly drawAt: number | undefined
  /** Whether a draw sale's draw is done (always false for a first-come sale). */
  readonly drawn: boolean
}

export type { DrawCommit } from "./DrawStep.ts"

export type Reply = (answer: Outcome | Refusal) => void

/** What the decider takes from its mailbox. Only purchases count against its capacity. */
export type Message =
  | {
      readonly _tag: "Purchase"
      readonly userId: UserId
      readonly orderId: OrderId
      readonly reply: Reply
      /** The purchase's span, when its trace is kept; undefined whenever tracing is off. */
      readonly trace: Tracing.TraceContext | undefined
    }
  | { readonly _tag: "Cancel"; readonly applied: () => void }
  /** Sent by `stop` and `relinquish`, so a decider waiting on an empty mailbox looks at the phase. */
  | { readonly _tag: "Wake" }
  /** A payment or a cancellation PostgreSQL has already applied to a held order's row. */
  | Holds.Settle
  /** An expiry run beside the purchases is back from PostgreSQL. */
  | ExpiryReport
  | GroupCommitter.CommitterReport

type PurchaseMessage = Extract<Message, { readonly _tag: "Purchase" }>
type Settlement = Extract<GroupCommitter.CommitterReport, { readonly orders: unknown }>

/** A repeat of a buyer whose order is pending: answered when that order's batch is. */
interface Waiter {
  readonly userId: UserId
  readonly at: number
  readonly reply: Reply
}

/**
 * One sale's decider: the only fiber that writes `state`. The phase is changed by anyone,
 * but only through `advance` (the transition table); `offer` reads it to admit purchases.
 *
 * Invariant I3, kept with the committer: only the committer answers `Accepted`, and only with
 * the commit's receipt; a repeat of a buyer whose order is pending is parked here and answered
 * with that batch's settlement (`AlreadyPurchased` with the receipt, or the very refusal the
 * original got). So every answer that says "purchased" follows its COMMIT, and the answers to
 * one buyer's attempts offered together agree (a property in tests/actors/Repeats.test.ts).
 */
export interface Decider {
  readonly saleId: SaleId
  readonly epoch: number
  readonly retryAfterSeconds: number
  /** Spans for traced purchases' decisions; undefined while tracing is off. */
  readonly startSpan: Tracing.StartSpan | undefined
  readonly mailbox: Queue.Queue<Message, Cause.Done>
  readonly figures: SubscriptionRef.SubscriptionRef<SaleFigures>
  readonly waiters: Map<OrderId, Array<Waiter>>
  phase: Phase.Phase
  state: Sale.SaleState
  /** When a purchase was last taken from the mailbox (or the actor started), epoch milliseconds. */
  lastActiveAt: number
  /** Purchases in the mailbox: what counts against its capacity. */
  queued: number
  published: SaleFigures
  /** Whether the committer was told that nothing more comes. */
  ended: boolean
  /** Sends a Wake to the mailbox after this many milliseconds: the draw's timer. */
  readonly wakeAfter: (millis: number) => void
  /** Not before this time is a failed draw tried again, epoch ms. */
  drawRetryAt: number
  /** When the hold timer is armed for (the next deadline), epoch ms; 0: none armed. */
  holdWakeAt: number
  /** Not before this time is a failed expiry tried again, epoch ms. */
  expiryRetryAt: number
  /** Whether an expiry's transaction is under way (one at a time). */
  expiring: boolean
}

const committedRemaining = (state: Sale.SaleState) => state.remaining + state.reserved

export const figuresOf = (d: Pick<Decider, "saleId" | "epoch" | "state">, version: number): SaleFigures => ({
  saleId: d.saleId,
  epoch: d.epoch,
  version,
  total: d.state.total,
  remaining: committedRemaining(d.state),
  startsAt: d.state.startsAt,
  endsAt: d.state.endsAt,
  cancelled: d.state.cancelled,
  drawAt: d.state.draw?.drawAt,
  drawn: d.state.draw?.waitingList !== undefined
})

export const advance = (d: Decider, event: Phase.PhaseEvent) => {
  d.phase = Phase.transition(d.phase, event)
}

export const refusal = (d: Decider) =>
  new PurchaseUnavailable({
    saleId: d.saleId,
    reason: Phase.refusalReason(d.phase),
    retryAfterSeconds: d.retryAfterSeconds
  })

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

// And "entered" only by presenting the receipt of the entry's commit.
const answerRepeatEntry = (waiter: Waiter, entry: EntryToCommit, receipt: CommitReceipt, drawAt: number) => {
  if (!receipt.entryIds.has(entry.entryId)) throw new Error("answered an entry the receipt does not hold")
  waiter.reply({ _tag: "Entered", entryId: entry.entryId, enteredAt: entry.at, drawAt })
}

const park = (d: Decider, orderId: OrderId, waiter: Waiter) => {
  const parked = d.waiters.get(orderId)
  if (parked === undefined) d.waiters.set(orderId, [waiter])
  else parked.push(waiter)
}

/** Refusals no buyer's history needs, counted per decided chunk (they all share its `now`). */
type RefusalTag = "SoldOut" | "NotStarted" | "Ended" | "Cancelled"
type Refused = Record<RefusalTag, number>

const noRefusals = (): Refused => ({ SoldOut: 0, NotStarted: 0, Ended: 0, Cancelled: 0 })
const refusalTags: ReadonlyArray<RefusalTag> = ["SoldOut", "NotStarted", "Ended", "Cancelled"]

/** What one decided chunk hands the committer. */
interface Chunk {
  readonly staged: Array<GroupCommitter.Staged>
  readonly refused: Refused
}

const record = (attempt: AttemptRecord): GroupCommitter.Staged => ({
  attempt,
  refusals: undefined,
  order: undefined,
  entry: undefined,
  reply: undefined,
  trace: undefined
})

const decidePurchase = (d: Decider, message: PurchaseMessage, now: number, chunk: Chunk) => {
  d.queued--
  d.lastActiveAt = now
  if (!Phase.decides(d.phase)) return message.reply(refusal(d))
  if (message.trace !== undefined && d.startSpan !== undefined)
    return decideTraced(d, message, now, chunk, d.startSpan, message.trace)
  decide(d, message, now, chunk)
}

// A traced purchase's decision is a span of its own, the purchase's child.
const decideTraced = (
  d: Decider,
  message: PurchaseMessage,
  now: number,
  chunk: Chunk,
  startSpan: Tracing.StartSpan,
  trace: Tracing.TraceContext
) => {
  const span = startSpan("SaleActor.decide", { parent: trace, attributes: { "sale.id": d.saleId } })
  const decision = decide(d, message, now, chunk)
  span?.end({ "purchase.decision": decision, "sale.remaining": d.state.remaining })
}

/** Decides one purchase, answers or stages it; returns the decision's tag. */
const decide = (d: Decider, message: PurchaseMessage, now: number, chunk: Chunk) => {
  const { userId, orderId, reply, trace } = message
  const [next, decision] = Sale.decide(d.state, { _tag: "Purchase", userId, orderId, now })
  d.state = next
  switch (decision._tag) {
    case "Accepted":
      chunk.staged.push({
        attempt: { userId, outcome: "accepted", at: now },
        refusals: undefined,
        // A hold sale's order is reserved until its payBy; any other is final.
        order:
          d.state.holds === undefined
            ? { orderId, userId, at: now }
            : { orderId, userId, at: now, payBy: now + d.state.holds.holdMillis },
        entry: undefined,
        reply,
        trace
      })
      break
    case "AwaitingCommit":
      park(d, decision.orderId, { userId, at: now, reply })
      break
    case "AlreadyPurchased":
      reply(stillHeld(d, decision.orderId))
      chunk.staged.push(record({ userId, outcome: attemptReason.AlreadyPurchased, at: now }))
      break
    case "EntryAccepted":
      chunk.staged.push({
        attempt: { userId, outcome: attemptReason.Entered, at: now },
        refusals: undefined,
        order: undefined,
        entry: { entryId: decision.entryId, userId, at: decision.at },
        reply,
        trace
      })
      break
    // One unit per buyer per sale: a buyer whose hold lapsed has had theirs, and is told that
    // order (its status says expired or cancelled) like any buyer who bought.
    case "HoldLapsed":
      reply({ _tag: "AlreadyPurchased", orderId: decision.orderId, lapsed: true })
      chunk.staged.push(record({ userId, outcome: attemptReason.AlreadyPurchased, at: now }))
      break
    // A repeat of an entrant: the same answer again, nothing more to record.
    case "Entered":
    case "NotDrawn":
      reply(decision)
      break
    default:
      reply(decision)
      chunk.refused[decision._tag]++
  }
  return decision._tag
}

// A buyer told about their order again hears its payBy while it is held, unpaid.
const stillHeld = (d: Decider, orderId: OrderId): Outcome => {
  const held = d.state.holds?.orders.get(orderId)
  return held?.status === "held"
    ? { _tag: "AlreadyPurchased", orderId, payBy: held.payBy }
    : { _tag: "AlreadyPurchased", orderId }
}

const stageRefusals = (chunk: Chunk, now: number) => {
  for (const tag of refusalTags) {
    const count = chunk.refused[tag]
    if (count === 0) continue
    chunk.staged.push({
      attempt: undefined,
      refusals: { outcome: attemptReason[tag], count, firstAt: now, lastAt: now },
      order: undefined,
      entry: undefined,
      reply: undefined,
      trace: undefined
    })
  }
}

// Repeats get the original's answer; their own audit record follows in a later batch.
const answerWaiters = (d: Decider, settlement: Settlement, chunk: Chunk) => {
  const recorded = repeatRecord(settlement)
  for (const order of settlement.orders) {
    const parked = d.waiters.get(order.orderId)
    if (parked === undefined) continue
    d.waiters.delete(order.orderId)
    for (const waiter of parked) {
      if (settlement._tag === "Committed") answerRepeat(waiter, order, settlement.receipt)
      else waiter.reply(settlement.refusal)
      if (recorded === undefined) continue
      chunk.staged.push(record({ userId: waiter.userId, outcome: recorded, at: waiter.at }))
    }
  }
  for (const entry of settlement.entries) {
    const parked = d.waiters.get(entry.entryId)
    if (parked === undefined) continue
    d.waiters.delete(entry.entryId)
    for (const waiter of parked) {
      if (settlement._tag === "Committed")
        answerRepeatEntry(waiter, entry, settlement.receipt, d.state.draw?.drawAt ?? 0)
      else waiter.reply(settlement.refusal)
    }
  }
}

const entryRefs = (entries: ReadonlyArray<EntryToCommit>) =>
  entries.map((e) => ({ userId: e.userId, entryId: e.entryId }))

// An entry whose fate is unknown stays pending, like an order: the draw waits for it, and the
// committer has halted, so this owner never draws; the next one reloads what PostgreSQL has.
const settleEntries = (d: Decider, settlement: Settlement) => {
  if (settlement._tag === "Committed")
    [d.state] = Sale.decide(d.state, { _tag: "EntriesCommitted", entries: entryRefs(settlement.entries) })
  else if (settlement._tag === "NotCommitted")
    [d.state] = Sale.decide(d.state, { _tag: "EntriesReleased", entries: entryRefs(settlement.entries) })
}

// An order whose fate is unknown stays pending, its unit held: this can only undersell, and
// the committer has halted, so nothing is decided any more.
const settle = (d: Decider, settlement: Settlement, chunk: Chunk) => {
  if (settlement._tag === "Committed")
    [d.state] = Sale.decide(d.state, { _tag: "Committed", orders: settlement.orders })
  else if (settlement._tag === "NotCommitted")
    [d.state] = Sale.decide(d.state, { _tag: "Released", orders: settlement.orders })
  if (settlement.entries.length > 0) settleEntries(d, settlement)
  if (d.waiters.size > 0) answerWaiters(d, settlement, chunk)
}

const handle = (d: Decider, message: Message, now: number, chunk: Chunk) => {
  switch (message._tag) {
    case "Purchase":
      return decidePurchase(d, message, now, chunk)
    case "Cancel":
      ;[d.state] = Sale.decide(d.state, { _tag: "Cancel" })
      return message.applied()
    case "Settle":
      ;[d.state] = Sale.decide(d.state, message)
      return
    case "ExpiryReport":
      chunk.staged.push(...settleExpiry(d, message))
      return
    case "Committed":
    case "NotCommitted":
    case "Unknown":
      return settle(d, message, chunk)
    case "Drained":
      // What is left in the mailbox is still handled; then the loop ends.
      advance(d, "drained")
      Queue.endUnsafe(d.mailbox)
      return
    case "Halted":
    case "Wake":
      return
  }
}

/** At most once per decided chunk, and only when the committed figures changed. */
const publish = (d: Decider) =>
  Effect.suspend(() => {
    if (
      committedRemaining(d.state) === d.published.remaining &&
      d.state.cancelled === d.published.cancelled &&
      (d.state.draw === undefined || (d.state.draw.waitingList !== undefined) === d.published.drawn)
    )
      return Effect.void
    d.published = figuresOf(d, d.published.version + 1)
    return SubscriptionRef.set(d.figures, d.published)
  })

// Once nothing can be admitted, nothing is queued and no order is pending, the committer has
// everything it will ever get, the waiters' audit records included. A halted committer refuses
// every record, so then only the queue counts; the decider still answers every waiter, as it
// handles messages until the committer has drained.
const endWhenIdle = (d: Decider, committer: GroupCommitter.GroupCommitter) =>
  Effect.suspend(() => {
    if (d.ended || Phase.admits(d.phase) || d.queued > 0) return Effect.void
    if (d.phase._tag !== "Halted" && (d.state.reserved > 0 || (d.state.draw?.pending ?? 0) > 0))
      return Effect.void
    d.ended = true
    return committer.end
  })

// A full mailbox is decided in chunks, the other fibers run between them: the committer starts
// on the first chunk's orders while the rest are decided (a sale's first commit no longer waits
// for the whole flood to be decided), and no chunk holds the event loop for long.
const decideChunk = 1_024

const loop = (
  d: Decider,
  committer: GroupCommitter.GroupCommitter,
  commitDraw: DrawCommit,
  commitHolds: HoldCommit
) =>
  Effect.gen(function* () {
    while (true) {
      const messages = yield* Queue.takeBetween(d.mailbox, 1, decideChunk)
      const now = yield* Clock.currentTimeMillis
      const chunk: Chunk = { staged: [], refused: noRefusals() }
      // Holds past due are ended before these purchases are decided, so a unit back is theirs
      // to take (a new owner's first purchases meet the holds it loaded, expired).
      if (d.state.holds !== undefined) chunk.staged.push(...(yield* expireIfDue(d, commitHolds, now)))
      for (const message of messages) handle(d, message, now, chunk)
      stageRefusals(chunk, now)
      if (chunk.staged.length > 0) yield* committer.stage(chunk.staged)
      if (d.state.draw !== undefined) yield* drawIfDue(d, commitDraw, now)
      if (d.state.holds !== undefined) {
        const promoted = yield* expireIfDue(d, commitHolds, now)
        if (promoted.length > 0) yield* committer.stage(promoted)
      }
      yield* publish(d)
      yield* endWhenIdle(d, committer)
      if (messages.length === decideChunk) yield* Effect.yieldNow
    }
  })

// A bug in the decider must not leave a buyer waiting: everyone still queued or parked is refused.
const abandon = (d: Decider, cause: Cause.Cause<unknown>) =>
  Effect.gen(function* () {
    yield* Effect.logError("sale actor's decider failed; stopping", {
      saleId: d.saleId,
      cause: Cause.pretty(cause)
    })
    advance(d, "fail")
    Queue.endUnsafe(d.mailbox)
    for (const parked of d.waiters.values()) for (const waiter of parked) waiter.reply(refusal(d))
    d.waiters.clear()
    for (const message of yield* Queue.clear(d.mailbox)) {
      if (message._tag === "Purchase") message.reply(refusal(d))
      else if (message._tag === "Cancel") message.applied()
    }
  })

/** The decider's fiber: returns once the committer has drained and the mailbox is empty. */
export const run = (
  d: Decider,
  committer: GroupCommitter.GroupCommitter,
  commitDraw: DrawCommit,
  commitHolds: HoldCommit
): Effect.Effect<void> =>
  loop(d, committer, commitDraw, commitHolds).pipe(
    Effect.catchIf(Cause.isDone, () => Effect.void),
    Effect.catchCause((cause) =>
      Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : abandon(d, cause)
    )
  )

import { Cause, Effect, Exit, Queue } from "effect"
import type { SqlError } from "effect/sql"
import type { StaleEpoch } from "../domain/Errors.ts"
import type { OrderId, SaleId } from "../domain/Ids.ts"
import type { Decider } from "./Decider.ts"
import type * as GroupCommitter from "./GroupCommitter.ts"
import * as Holds from "./Holds.ts"
import * as Phase from "./Phase.ts"
import * as Sale from "./SaleState.ts"

/**
 * The owner's fenced expiry (OrderStore.endHolds): the due orders still reserved expire, and
 * what each due order is now comes back.
 */
export type HoldCommit = (
  saleId: SaleId,
  epoch: number,
  orderIds: ReadonlyArray<OrderId>
) => Effect.Effect<ReadonlyMap<OrderId, string>, StaleEpoch | SqlError.SqlError>

/** How an expiry's transaction ended, back in the decider's mailbox. */
export interface ExpiryReport {
  readonly _tag: "ExpiryReport"
  readonly due: ReadonlyArray<Sale.OrderRef>
  readonly now: number
  /** What PostgreSQL says each due order is now; undefined when the transaction failed. */
  readonly statuses: ReadonlyMap<OrderId, string> | undefined
  readonly fenced: boolean
}

// How long an expiry that failed on the database waits before it is tried again.
const expiryRetryMillis = 1_000

/**
 * Holds are expired at most this long after their deadline, together: under a steady flow of
 * purchases a deadline passes every moment, and one transaction per 100 ms costs the purchases
 * little where one per passing deadline would not. A payment is judged by the deadline itself.
 */
export const expiryCoalesceMillis = 100

/**
 * A hold this far past its deadline is a backlog (a new owner's, or one after an outage): it
 * is expired before the next purchases are decided, so they can have its units.
 */
const backlogMillis = 1_000

/**
 * The sale's one timer: armed at the next deadline (plus the coalescing) unless one no later
 * is armed already. Deadlines only grow (acceptance order), so this is one timer at a time,
 * not one per hold. A deadline already past is not armed: its hold waits for its commit (or
 * for the expiry in flight), whose report wakes the decider anyway.
 */
const arm = (d: Decider, now: number) => {
  const book = d.state.holds
  const next = book === undefined ? undefined : Holds.nextDeadline(book)
  if (next === undefined) return
  const deadline = next + expiryCoalesceMillis
  if (deadline <= now) return
  if (d.holdWakeAt > now && d.holdWakeAt <= deadline) return
  d.holdWakeAt = deadline
  d.wakeAfter(deadline - now + 1)
}

/**
 * Brings the state in line with what PostgreSQL says of each due order (a payment or a
 * cancellation may have reached its row first), then frees the units of exactly the orders
 * it expired; returns the promoted entrants' orders, to commit.
 */
const applyExpiry = (d: Decider, report: ExpiryReport, statuses: ReadonlyMap<OrderId, string>) => {
  const expired: Array<Sale.OrderRef> = []
  for (const order of report.due) {
    const status = statuses.get(order.orderId)
    if (status === "expired") expired.push(order)
    else if (status === "paid")
      [d.state] = Sale.decide(d.state, { _tag: "Settle", orderId: order.orderId, status })
    // A refunded order was cancelled or expired first: its unit is back on the stock row.
    else if (status === "cancelled" || status === "refunded")
      [d.state] = Sale.decide(d.state, { _tag: "Settle", orderId: order.orderId, status: "cancelled" })
    else
      throw new Error(
        `sale ${d.saleId}: a due hold ${order.orderId} is ${status ?? "missing"} after its expiry`
      )
  }
  const [next, expiry] = Sale.decide(d.state, { _tag: "ExpireOrders", orders: expired, now: report.now })
  d.state = next
  if (expiry.expired.length !== expired.length)
    throw new Error(`sale ${d.saleId}: expired ${expiry.expired.length} holds, committed ${expired.length}`)
  return expiry.promoted
}

/**
 * The due holds are ended in a fenced transaction of their own, which gives their units back
 * on the stock row, and only its report frees them in the state: purchase batches commit side
 * by side, and one that overtook the expiry with a unit PostgreSQL has not got back would be
 * refused as over the stock. A fenced owner expires nothing: it halts, and the newer owner
 * resumes the deadlines. The report is made here, whether the decider waits for it or not.
 */
const runExpiry = (d: Decider, commitHolds: HoldCommit, due: ReadonlyArray<Sale.OrderRef>, now: number) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(
      commitHolds(
        d.saleId,
        d.epoch,
        due.map((order) => order.orderId)
      )
    )
    if (Exit.isSuccess(exit))
      return { _tag: "ExpiryReport", due, now, statuses: exit.value, fenced: false } satisfies ExpiryReport
    const fenced = exit.cause.reasons.some((r) => Cause.isFailReason(r) && r.error._tag === "StaleEpoch")
    yield* fenced
      ? Effect.logWarning("fenced at an expiry: another owner holds a newer epoch; halting", {
          saleId: d.saleId,
          epoch: d.epoch
        })
      : Effect.logWarning("expiry failed; trying again", {
          saleId: d.saleId,
          cause: Cause.pretty(exit.cause)
        })
    return { _tag: "ExpiryReport", due, now, statuses: undefined, fenced } satisfies ExpiryReport
  })

/** A promoted entrant's order, staged like an accepted purchase with nobody waiting on it. */
const staged = (promotion: Holds.Promotion, now: number): GroupCommitter.Staged => ({
  attempt: undefined,
  refusals: undefined,
  order: { orderId: promotion.orderId, userId: promotion.userId, at: now, payBy: promotion.payBy },
  entry: undefined,
  reply: undefined,
  trace: undefined
})

const none: ReadonlyArray<GroupCommitter.Staged> = []

/** The decider takes an expiry's report: the state freed, or the owner fenced, or a retry planned. */
export const settleExpiry = (d: Decider, report: ExpiryReport): ReadonlyArray<GroupCommitter.Staged> => {
  d.expiring = false
  if (report.statuses !== undefined)
    return applyExpiry(d, report, report.statuses).map((p) => staged(p, report.now))
  if (report.fenced) {
    d.phase = Phase.transition(d.phase, "fence")
    return none
  }
  d.expiryRetryAt = report.now + expiryRetryMillis
  d.wakeAfter(expiryRetryMillis)
  return none
}

/**
 * Expires what is due (a hold sale only), at most one expiry at a time, then arms the timer
 * for the next deadline. A backlog is expired while the decider waits (returning the
 * entrants promoted into freed units, for the committer); the steady trickle of deadlines is
 * expired beside the purchases, its report coming back through the mailbox.
 */
export const expireIfDue = (
  d: Decider,
  commitHolds: HoldCommit,
  now: number
): Effect.Effect<ReadonlyArray<GroupCommitter.Staged>> => {
  const book = d.state.holds
  if (book === undefined || d.expiring || !Phase.decides(d.phase)) return Effect.succeed(none)
  const deadline = Holds.nextDeadline(book)
  if (deadline === undefined || deadline + expiryCoalesceMillis > now || now < d.expiryRetryAt) {
    arm(d, now)
    return Effect.succeed(none)
  }
  const due = Holds.dueAt(d.state, book, now)
  if (due.length === 0) {
    // Nothing due but settled holds to move past: nothing to write.
    ;[d.state] = Sale.decide(d.state, { _tag: "Expire", now })
    arm(d, now)
    return Effect.succeed(none)
  }
  d.expiring = true
  // The first due hold's own deadline (the queue's next may be one settled since).
  const first = due[0]
  const oldest = first === undefined ? now : (book.orders.get(first.orderId)?.payBy ?? now)
  if (now - oldest >= backlogMillis)
    return Effect.map(runExpiry(d, commitHolds, due, now), (report) => settleExpiry(d, report))
  return Effect.as(
    Effect.forkChild(
      Effect.flatMap(runExpiry(d, commitHolds, due, now), (report) =>
        Effect.sync(() => Queue.offerUnsafe(d.mailbox, report))
      )
    ),
    none
  )
}

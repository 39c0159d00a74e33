import { Cause, Effect, Exit } from "effect"
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

// How long an expiry that failed on the database waits before it is tried again.
const expiryRetryMillis = 1_000

/**
 * Holds are expired at most this long after their deadline, together: under a steady flow of
 * purchases a deadline passes every moment, and one fenced transaction per 100 ms (the decider
 * holds its mailbox for it) costs the purchases little, where one per passing deadline would
 * hold them most of the time. A payment is judged by the deadline itself, not by this.
 */
export const expiryCoalesceMillis = 100

/**
 * The sale's one timer: armed at the next deadline unless one no later is armed already.
 * Deadlines only grow (acceptance order), so this is one timer at a time, not one per hold.
 * A deadline already past is not armed: its hold waits for its commit, whose report wakes
 * the decider anyway.
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
 * cancellation may have reached its row first), then expires the rest; returns the promoted
 * entrants' orders, to commit.
 */
const applyExpiry = (
  d: Decider,
  due: ReadonlyArray<Sale.OrderRef>,
  statuses: ReadonlyMap<OrderId, string>,
  now: number
) => {
  let expired = 0
  for (const order of due) {
    const status = statuses.get(order.orderId)
    if (status === "expired") expired++
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
  const [next, expiry] = Sale.decide(d.state, { _tag: "Expire", now })
  d.state = next
  if (expiry.expired.length !== expired)
    throw new Error(`sale ${d.saleId}: expired ${expiry.expired.length} holds, committed ${expired}`)
  return expiry.promoted
}

/**
 * The due holds are ended in a fenced transaction of their own, which gives their units back
 * on the stock row, before the state frees them: purchase batches commit side by side, and one
 * that overtook the expiry with a unit PostgreSQL has not got back would be refused as over
 * the stock. The decider holds its mailbox for that transaction, once per deadline, never per
 * purchase. A fenced owner expires nothing: it halts, and the newer owner resumes the deadlines.
 */
const runExpiry = Effect.fnUntraced(function* (
  d: Decider,
  commitHolds: HoldCommit,
  due: ReadonlyArray<Sale.OrderRef>,
  now: number
) {
  const exit = yield* Effect.exit(
    commitHolds(
      d.saleId,
      d.epoch,
      due.map((order) => order.orderId)
    )
  )
  if (Exit.isSuccess(exit)) return applyExpiry(d, due, exit.value, now)
  if (exit.cause.reasons.some((r) => Cause.isFailReason(r) && r.error._tag === "StaleEpoch")) {
    yield* Effect.logWarning("fenced at an expiry: another owner holds a newer epoch; halting", {
      saleId: d.saleId,
      epoch: d.epoch
    })
    d.phase = Phase.transition(d.phase, "fence")
    return []
  }
  yield* Effect.logWarning("expiry failed; trying again", {
    saleId: d.saleId,
    cause: Cause.pretty(exit.cause)
  })
  d.expiryRetryAt = now + expiryRetryMillis
  d.wakeAfter(expiryRetryMillis)
  return []
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

/**
 * Expires what is due (a hold sale only), then arms the timer for the next deadline; returns
 * the orders of entrants promoted into freed units, for the committer.
 */
export const expireIfDue = (
  d: Decider,
  commitHolds: HoldCommit,
  now: number
): Effect.Effect<ReadonlyArray<GroupCommitter.Staged>> => {
  const book = d.state.holds
  if (book === undefined || !Phase.decides(d.phase)) return Effect.succeed(none)
  const deadline = Holds.nextDeadline(book)
  if (deadline === undefined || deadline + expiryCoalesceMillis > now || now < d.expiryRetryAt) {
    arm(d, now)
    return Effect.succeed(none)
  }
  const due = Holds.dueAt(d.state, book, now)
  // Nothing due but settled holds to move past: nothing to write.
  const promoted =
    due.length === 0
      ? Effect.sync(() => applyExpiry(d, due, new Map(), now))
      : runExpiry(d, commitHolds, due, now)
  return promoted.pipe(
    Effect.map((promotions) => promotions.map((p) => staged(p, now))),
    Effect.tap(() => Effect.sync(() => arm(d, now)))
  )
}

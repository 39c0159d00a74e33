import type { OrderId, UserId } from "../../src/domain/Ids.ts"
import {
  allOrders,
  buyerOf,
  checkInvariants,
  paidPastDeadline,
  paidThenLapsed,
  unrefundedPayments,
  type SaleRecord
} from "../../src/storage/Audit.ts"
import type { Injected } from "./Faults.ts"
import type { History, Operation } from "./History.ts"

/**
 * Holds a run's history against what PostgreSQL committed. A violation names the invariant,
 * the buyer, the answer and the fault it followed, so a seed's failure can be read without
 * rerunning it.
 */

export interface Violation {
  /**
   * I1, I2, I3, "agree", "refused-row", I5, "crash"; on a hold sale also "paid-lapsed" (a paid
   * order expired or cancelled), "unrefunded" (a payment the order did not keep, not given back) and
   * "paid-late" (a hold marked paid by a payment past its deadline).
   */
  readonly invariant: string
  readonly detail: string
  /** Run clock of the answer (or event) that shows it, when there is one. */
  readonly at?: number
  /** The fault it followed (its index in the run), if it happened during or soon after one. */
  readonly fault?: number | undefined
}

export interface FaultUnavailability {
  readonly index: number
  /** The longest time without a sale from the fault's start, while units remained. */
  readonly millis: number
  /** No sale came after the fault before the load stopped: `millis` is a lower bound. */
  readonly openEnded: boolean
}

export interface CheckResult {
  readonly committed: number
  readonly stock: number
  readonly available: number
  readonly violations: ReadonlyArray<Violation>
  readonly unavailability: ReadonlyArray<FaultUnavailability>
  /** Rows no buyer was told about (allowed: their answers were unknown). */
  readonly unconfirmedRows: number
  /**
   * "Sold out" answered before a later purchase was even sent that then succeeded: not one of
   * the invariants (the buyer may try again), but a definite refusal that was not true.
   */
  readonly earlySoldOut: number
}

/** A fault an answer at `at` may be blamed on: the latest one that began before it, within its hold and `after` ms. */
export const faultBefore = (
  faults: ReadonlyArray<Injected>,
  at: number,
  after = 8_000
): number | undefined => {
  let found: number | undefined
  faults.forEach((fault, index) => {
    if (fault.startedAt <= at && at <= fault.healedAt + after) found = index
  })
  return found
}

const describe = (op: Operation) =>
  `buyer ${op.buyer} (${op.userId}) at node ${op.node + 1}: ${op.status}${op.repeat ? " repeat" : ""} ` +
  `${op.orderId ?? op.code ?? ""}, sent ${op.sentAt} ms, answered ${op.answeredAt} ms`

export const check = (options: {
  readonly record: SaleRecord
  readonly history: History
  readonly faults: ReadonlyArray<Injected>
  /** Run clock when every fault had been healed and the cluster had settled. */
  readonly settledAt: number
  /** Run clock when the load stopped sending. */
  readonly loadEnd: number
  readonly crashes: ReadonlyArray<string>
}): CheckResult => {
  const { record, history, faults } = options
  const violations: Array<Violation> = []
  const blame = (at: number) => faultBefore(faults, at)
  const ops = history.operations

  const confirmed = new Map<OrderId, UserId>()
  for (const op of ops) if (op.outcome === "ok") confirmed.set(op.orderId!, op.userId)
  const report = checkInvariants(record, confirmed)

  if (report.oversold > 0)
    violations.push({ invariant: "I1", detail: `${report.committed} orders for ${record.stock} units` })
  if (report.stockMismatch > 0)
    violations.push({
      invariant: "I1",
      detail: `stock row says ${record.available} available, but ${record.stock} - ${report.committed} orders = ${record.stock - report.committed}`
    })

  const byBuyer = new Map<number, Array<Operation>>()
  for (const op of ops) byBuyer.set(op.buyer, [...(byBuyer.get(op.buyer) ?? []), op])

  // Live orders for I2 (a buyer whose hold lapsed may hold another where the sale allows it);
  // every row, in any status, for what a buyer was told.
  const liveOf = new Map<UserId, Array<OrderId>>()
  for (const [orderId, userId] of record.orders) liveOf.set(userId, [...(liveOf.get(userId) ?? []), orderId])
  const rowsOf = new Map<UserId, Array<OrderId>>()
  for (const [orderId, userId] of allOrders(record))
    rowsOf.set(userId, [...(rowsOf.get(userId) ?? []), orderId])
  for (const [userId, orderIds] of liveOf)
    if (orderIds.length > 1)
      violations.push({
        invariant: "I2",
        detail: `${userId} has ${orderIds.length} orders: ${orderIds.join(", ")}`
      })

  // One violation per buyer, however many of its answers said "purchased".
  for (const [, list] of byBuyer) {
    const lost = list.filter((op) => op.outcome === "ok" && buyerOf(record, op.orderId!) !== op.userId)
    const first = lost[0]
    if (first === undefined) continue
    violations.push({
      invariant: "I3",
      detail:
        `told "purchased" ${lost.length} time(s) but PostgreSQL has no such order: ${describe(first)}; ` +
        `the buyer's answers: ${list.map(describe).join(" | ")}; ` +
        `its rows: ${(rowsOf.get(first.userId) ?? []).join(", ") || "none"}`,
      at: first.answeredAt,
      fault: blame(first.sentAt)
    })
  }

  for (const [, list] of byBuyer) {
    const oks = list.filter((op) => op.outcome === "ok")
    const ids = new Set(oks.map((op) => op.orderId))
    if (ids.size > 1)
      violations.push({
        invariant: "agree",
        detail: `one buyer told ${ids.size} different orders: ${oks.map(describe).join(" | ")}`,
        at: oks[oks.length - 1]!.answeredAt,
        fault: blame(oks[0]!.sentAt)
      })
    if (list.every((op) => op.outcome === "failed") && rowsOf.has(list[0]!.userId)) {
      const first = list[0]!
      violations.push({
        invariant: "refused-row",
        detail: `only ever refused, yet has order ${rowsOf.get(first.userId)!.join(", ")}: ${list.map(describe).join(" | ")}`,
        at: first.answeredAt,
        fault: blame(first.sentAt)
      })
    }
  }

  // I5: once every fault is healed and the cluster has settled, the owner's remaining stock
  // is the stock row's; "sold out" while PostgreSQL still has units strands them.
  if (record.available > 0)
    for (const op of ops)
      if (op.outcome === "failed" && op.code === "sold_out" && op.sentAt >= options.settledAt)
        violations.push({
          invariant: "I5",
          detail: `sold out answered after recovery while ${record.available} units remain: ${describe(op)}`,
          at: op.answeredAt
        })

  for (const [orderId, order] of record.lifecycle ?? []) {
    const row = `order ${orderId} of ${order.userId}, ${order.status}`
    if (paidThenLapsed(order))
      violations.push({ invariant: "paid-lapsed", detail: `${row} although paid at ${order.paidAt}` })
    const unrefunded = unrefundedPayments(order)
    if (unrefunded > 0)
      violations.push({
        invariant: "unrefunded",
        detail: `${row}: ${unrefunded} payment(s) it did not keep, none refunded`
      })
    if (paidPastDeadline(order))
      violations.push({
        invariant: "paid-late",
        detail: `${row} at ${order.paidAt}, its hold ended at ${order.payBy}`
      })
  }

  for (const crash of options.crashes) violations.push({ invariant: "crash", detail: crash })

  return {
    committed: report.committed,
    stock: record.stock,
    available: record.available,
    violations,
    unavailability: unavailability(history.sales(), faults, record, options.loadEnd),
    unconfirmedRows: report.unconfirmedRows,
    earlySoldOut: earlySoldOut(ops)
  }
}

/**
 * Per fault: from its start, the longest gap between two sales that overlaps the fault's hold
 * (or its first moment, for an instant fault), counted only while units remained.
 */
export const unavailability = (
  sales: ReadonlyArray<number>,
  faults: ReadonlyArray<Injected>,
  record: Pick<SaleRecord, "stock">,
  loadEnd: number
): Array<FaultUnavailability> => {
  // After the last unit is sold nothing more can sell; that silence is no outage.
  const soldOutAt = sales.length >= record.stock ? sales[record.stock - 1]! : Infinity
  return faults.map((fault, index) => {
    const from = fault.startedAt
    const to = Math.max(fault.healedAt, fault.startedAt)
    if (from >= soldOutAt) return { index, millis: 0, openEnded: false }
    let longest = 0
    let previous = from
    let closed = false
    for (const sale of sales) {
      if (sale <= from) continue
      longest = Math.max(longest, sale - previous)
      previous = sale
      if (sale >= to) {
        closed = true
        break
      }
    }
    const openEnded = !closed
    if (openEnded) longest = Math.max(longest, Math.min(loadEnd, soldOutAt) - previous)
    return { index, millis: Math.max(0, longest), openEnded }
  })
}

/** Sold out answers that came back before a purchase that succeeded had even been sent. */
const earlySoldOut = (ops: ReadonlyArray<Operation>): number => {
  let lastSaleSent = -Infinity
  for (const op of ops)
    if (op.outcome === "ok" && op.repeat !== true) lastSaleSent = Math.max(lastSaleSent, op.sentAt)
  return ops.filter((op) => op.code === "sold_out" && op.answeredAt < lastSaleSent).length
}

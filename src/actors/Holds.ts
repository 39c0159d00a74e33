import type { OrderId, UserId } from "../domain/Ids.ts"
import type { OrderRef, SaleState } from "./SaleState.ts"

/**
 * A sale's holds: with a hold length, an accepted purchase reserves its unit until `payBy`;
 * the buyer pays (the order is final), cancels, or the hold expires and the unit goes back:
 * to the next purchase at once (first come), or to the next entrant on the waiting list in
 * draw order (a drawn sale). A sale without a hold length has no book at all, so its
 * purchases take exactly today's path.
 *
 * Invariants, kept here and asserted after every step by tests/actors/Holds.test.ts:
 * - H1: `held + paid === buyers.size <= total`: reserved + paid orders never exceed the stock.
 * - H2: a unit is held by at most one live order: every live order (held or paid) is its
 *   buyer's one holding in `buyers`, and a buyer has one holding.
 * - H3: status moves only from `held`, once: a paid order never expires, an expired (or
 *   cancelled) order is never paid; a payment for it is answered `LatePayment` (a refund).
 * - H4: a webhook event id changes state at most once: it is kept in `events` when first
 *   applied, and a replay is answered `DuplicateEvent` with nothing changed.
 * - H5: every unit freed by an expiry or a cancellation goes back exactly once: one unit on
 *   `remaining`, or one promotion of a waiting entrant, never both.
 *
 * Like `buyers`, the maps and the deadline queue are threaded from one state to the next, so
 * a purchase costs O(1) and an expiry visits only the holds that are due.
 */
export interface HoldBook {
  readonly holdMillis: number
  /** Whether a buyer whose hold expired or was cancelled may take another unit of the sale. */
  readonly repurchase: boolean
  /** Every order taken under a hold, and what became of it. */
  readonly orders: Map<OrderId, HeldOrder>
  /**
   * Held orders in acceptance order, which is payBy order since the hold length is fixed and
   * time only grows; orders settled otherwise (paid, cancelled, released) are skipped when the
   * scan reaches them, so settling one costs O(1). An entry counts only while its ticket is
   * its order's: a promoted entrant's order id (the entry id) is held again after a release,
   * and the earlier entry must not expire it a second time.
   */
  readonly deadlines: Array<Deadline>
  /** Tickets issued so far: the next hold's ticket. */
  readonly issued: number
  /** The index in `deadlines` of the next deadline. */
  readonly next: number
  /** Buyers whose hold expired or was cancelled, with that order: one unit per buyer per sale. */
  readonly lapsed: Map<UserId, OrderId>
  /** Webhook event ids already applied (H4). */
  readonly events: Set<string>
  /** Orders held (reserved, not paid), and orders paid. */
  readonly held: number
  readonly paid: number
  /** A drawn sale's waiting list in draw order, and the index of the next entrant to promote. */
  readonly waiting: ReadonlyArray<UserId>
  readonly nextWaiting: number
  /** Promoted entrants whose order was released (never committed): they come first again. */
  readonly requeued: Array<UserId>
}

export type OrderStatus = "held" | "paid" | "expired" | "cancelled"

export interface HeldOrder {
  readonly userId: UserId
  readonly payBy: number
  readonly status: OrderStatus
  /** Its entry in `deadlines`. */
  readonly ticket: number
}

export interface Deadline {
  readonly orderId: OrderId
  readonly ticket: number
}

/** A payment the provider reports, by its webhook event. */
export interface Pay {
  readonly _tag: "Pay"
  readonly userId: UserId
  readonly orderId: OrderId
  readonly eventId: string
  /** When the payment was made, epoch milliseconds. */
  readonly at: number
}

/** The buyer gives their hold up before paying. */
export interface CancelHold {
  readonly _tag: "CancelHold"
  readonly userId: UserId
  readonly orderId: OrderId
}

/** Every hold whose payBy <= now and not paid expires. */
export interface Expire {
  readonly _tag: "Expire"
  readonly now: number
}

/** These holds expired in PostgreSQL (the owner's fenced expiry): they expire here. */
export interface ExpireOrders {
  readonly _tag: "ExpireOrders"
  readonly orders: ReadonlyArray<OrderRef>
  readonly now: number
}

export type LateReason =
  "expired" | "cancelled" | "after_deadline" | "already_paid" | "not_committed" | "unknown"

/** A payment is applied, refunded (never a second sale of the unit), or a replay. */
export type PayDecision =
  | { readonly _tag: "Paid"; readonly orderId: OrderId }
  | { readonly _tag: "LatePayment"; readonly orderId: OrderId; readonly reason: LateReason }
  | { readonly _tag: "DuplicateEvent"; readonly eventId: string }

export type CancelDecision =
  | { readonly _tag: "HoldCancelled"; readonly orderId: OrderId }
  | {
      readonly _tag: "NotCancellable"
      readonly orderId: OrderId
      readonly reason: Exclude<LateReason, "after_deadline" | "already_paid"> | "paid"
    }

/** A promoted entrant's order, to be committed like an accepted purchase. */
export interface Promotion extends OrderRef {
  readonly payBy: number
}

/** What an expiry did: orders expired, and entrants promoted into freed units. */
export interface Expiry {
  readonly expired: ReadonlyArray<OrderRef>
  readonly promoted: ReadonlyArray<Promotion>
}

/** A hold restored from storage after a failover: its buyer holds the order in the snapshot. */
export interface PendingHold {
  readonly userId: UserId
  readonly orderId: OrderId
  readonly payBy: number
}

export const emptyBook = (options: {
  readonly holdMillis: number
  readonly repurchase: boolean
  readonly paid: number
  readonly pending: ReadonlyArray<PendingHold>
  readonly lapsed: ReadonlyMap<UserId, OrderId>
  readonly waitingList: ReadonlyMap<UserId, number> | undefined
}): HoldBook => {
  const orders = new Map<OrderId, HeldOrder>()
  // Restored holds keep the payBy order the queue relies on.
  const pending = [...options.pending].sort((a, b) => a.payBy - b.payBy)
  pending.forEach((hold, ticket) =>
    orders.set(hold.orderId, { userId: hold.userId, payBy: hold.payBy, status: "held", ticket })
  )
  return {
    holdMillis: options.holdMillis,
    repurchase: options.repurchase,
    orders,
    deadlines: pending.map((hold, ticket) => ({ orderId: hold.orderId, ticket })),
    issued: pending.length,
    next: 0,
    lapsed: new Map(options.lapsed),
    events: new Set(),
    held: pending.length,
    paid: options.paid,
    waiting: drawOrder(options.waitingList),
    nextWaiting: 0,
    requeued: []
  }
}

const drawOrder = (waitingList: ReadonlyMap<UserId, number> | undefined): ReadonlyArray<UserId> =>
  waitingList === undefined
    ? []
    : [...waitingList.entries()].sort((a, b) => a[1] - b[1]).map(([userId]) => userId)

/** The book once the draw's waiting list is known. */
export const withWaitingList = (book: HoldBook, waitingList: ReadonlyMap<UserId, number>): HoldBook => ({
  ...book,
  waiting: drawOrder(waitingList),
  nextWaiting: 0
})

/** An accepted order (a purchase, a winner, a promotion) is held until `now + holdMillis`. O(1). */
export const hold = (book: HoldBook, userId: UserId, orderId: OrderId, now: number): HoldBook => {
  const ticket = book.issued
  book.orders.set(orderId, { userId, payBy: now + book.holdMillis, status: "held", ticket })
  book.deadlines.push({ orderId, ticket })
  return { ...book, held: book.held + 1, issued: ticket + 1 }
}

/** An order that never reached PostgreSQL is forgotten; a promoted entrant is promoted again. */
export const drop = (book: HoldBook, order: OrderRef, promoted: boolean): HoldBook => {
  const held = book.orders.get(order.orderId)
  if (held === undefined || held.status !== "held") return book
  book.orders.delete(order.orderId)
  if (promoted) book.requeued.push(order.userId)
  return { ...book, held: book.held - 1 }
}

/** Whether the buyer's holding is this order, committed (in PostgreSQL). */
const committedHolding = (state: SaleState, order: OrderRef) =>
  state.buyers.get(order.userId) === order.orderId

/**
 * H3, H4: a payment in time for a committed held order makes it final; anything else is a
 * refund and changes nothing but the record of the event id.
 */
export const pay = (state: SaleState, book: HoldBook, command: Pay): readonly [SaleState, PayDecision] => {
  if (book.events.has(command.eventId)) return [state, { _tag: "DuplicateEvent", eventId: command.eventId }]
  book.events.add(command.eventId)
  const decision = payment(state, book, command)
  if (decision._tag !== "Paid") return [state, decision]
  const held = book.orders.get(command.orderId)
  if (held !== undefined) book.orders.set(command.orderId, { ...held, status: "paid" })
  return [{ ...state, holds: { ...book, held: book.held - 1, paid: book.paid + 1 } }, decision]
}

const payment = (state: SaleState, book: HoldBook, command: Pay): PayDecision => {
  const orderId = command.orderId
  const held = book.orders.get(orderId)
  const late = (reason: LateReason): PayDecision => ({ _tag: "LatePayment", orderId, reason })
  if (held === undefined || held.userId !== command.userId) return late("unknown")
  if (held.status === "paid") return late("already_paid")
  if (held.status !== "held") return late(held.status)
  if (!committedHolding(state, command)) return late("not_committed")
  // The deadline holds even before the expiry that enforces it has run.
  if (command.at >= held.payBy) return late("after_deadline")
  return { _tag: "Paid", orderId }
}

/** The buyer gives up a committed held order: its unit goes back as on an expiry (H5). */
export const cancelHold = (
  state: SaleState,
  book: HoldBook,
  command: CancelHold
): readonly [SaleState, CancelDecision] => {
  const orderId = command.orderId
  const held = book.orders.get(orderId)
  const refuse = (reason: Extract<CancelDecision, { _tag: "NotCancellable" }>["reason"]) =>
    [state, { _tag: "NotCancellable", orderId, reason }] as const
  if (held === undefined || held.userId !== command.userId) return refuse("unknown")
  if (held.status !== "held") return refuse(held.status)
  if (!committedHolding(state, command)) return refuse("not_committed")
  return [end(state, book, command, held, "cancelled"), { _tag: "HoldCancelled", orderId }]
}

/** Ends a held order as expired or cancelled and frees its unit onto `remaining` (H5). */
const end = (
  state: SaleState,
  book: HoldBook,
  order: OrderRef,
  held: HeldOrder,
  status: "expired" | "cancelled"
): SaleState => {
  book.orders.set(order.orderId, { ...held, status })
  state.buyers.delete(order.userId)
  if (!book.repurchase) book.lapsed.set(order.userId, order.orderId)
  return { ...state, remaining: state.remaining + 1, holds: { ...book, held: book.held - 1 } }
}

// Keeps the queue's memory to the holds still ahead: drop the visited prefix once it dominates.
const compactAfter = 1_024

/**
 * The committed held orders due at `now`, in payBy order, and how far the scan got: it visits
 * only the holds due (and the settled ones on the way, once each, as `next` moves past them).
 * A due order whose commit is still in flight stops the scan: expiring it would race its own
 * commit, and the next expiry after that commit takes it.
 */
const scan = (state: SaleState, book: HoldBook, now: number) => {
  const due: Array<OrderRef> = []
  let next = book.next
  for (; next < book.deadlines.length; next++) {
    const deadline = book.deadlines[next] as Deadline
    const orderId = deadline.orderId
    const held = book.orders.get(orderId)
    if (held === undefined || held.status !== "held" || held.ticket !== deadline.ticket) continue
    if (held.payBy > now) break
    const order = { userId: held.userId, orderId }
    if (!committedHolding(state, order)) break
    due.push(order)
  }
  return { due, next }
}

/** What an `Expire` at `now` would expire, without changing anything: what its owner commits first. */
export const dueAt = (state: SaleState, book: HoldBook, now: number): ReadonlyArray<OrderRef> =>
  scan(state, book, now).due

/**
 * When the sale's one timer should fire: the payBy of the first hold not yet visited, a lower
 * bound on the next deadline (that hold may be settled already; the expiry then moves past
 * it). Undefined when no hold is ahead.
 */
export const nextDeadline = (book: HoldBook): number | undefined => {
  const deadline = book.deadlines[book.next]
  return deadline === undefined ? undefined : (book.orders.get(deadline.orderId)?.payBy ?? 0)
}

// Ends each order that is still a committed hold as expired.
const endExpired = (state: SaleState, book: HoldBook, orders: ReadonlyArray<OrderRef>) => {
  let current = state
  const expired: Array<OrderRef> = []
  for (const order of orders) {
    const ending = current.holds ?? book
    const held = ending.orders.get(order.orderId)
    if (held === undefined || held.status !== "held" || !committedHolding(current, order)) continue
    current = end(current, ending, order, held, "expired")
    expired.push(order)
  }
  return { current, expired }
}

/** Expires every order `dueAt` names; a drawn sale then gives its free units to its waiting list. */
export const expire = (state: SaleState, book: HoldBook, now: number): readonly [SaleState, Expiry] => {
  const { due, next: visited } = scan(state, book, now)
  const { current } = endExpired(state, book, due)
  const [promotedState, promoted] = promote(movedTo(current, current.holds ?? book, visited), now)
  return [promotedState, { expired: due, promoted }]
}

/** The queue's next index moved to `next`, its visited prefix dropped once it dominates. */
const movedTo = (state: SaleState, book: HoldBook, next: number): SaleState => {
  if (next > compactAfter && next * 2 > book.deadlines.length) {
    book.deadlines.splice(0, next)
    next = 0
  }
  return { ...state, holds: { ...book, next } }
}

/** The index of the first deadline still held from `next` on: everything before it is settled. */
const firstHeld = (book: HoldBook) => {
  let next = book.next
  for (; next < book.deadlines.length; next++) {
    const deadline = book.deadlines[next] as Deadline
    const held = book.orders.get(deadline.orderId)
    if (held !== undefined && held.status === "held" && held.ticket === deadline.ticket) break
  }
  return next
}

/**
 * Expires exactly these orders (those PostgreSQL expired), each only while it is a committed
 * hold; a drawn sale then gives its free units to its waiting list. The owner's expiry runs
 * beside its purchases: by the time its transaction is back, a hold due later may have
 * committed, and only what the transaction ended may be freed.
 */
export const expireOrders = (
  state: SaleState,
  book: HoldBook,
  command: ExpireOrders
): readonly [SaleState, Expiry] => {
  const { current, expired } = endExpired(state, book, command.orders)
  // The queue moves past what has ended, so the next deadline is a hold's still held.
  const after = current.holds ?? book
  const [promotedState, promoted] = promote(movedTo(current, after, firstHeld(after)), command.now)
  return [promotedState, { expired, promoted }]
}

/**
 * In a drawn sale no one else can buy, so every free unit goes to the next entrant in draw
 * order who holds nothing, as a held order under their entry id (the id a win takes). A sale
 * cancelled gives nothing out.
 */
const promote = (state: SaleState, now: number): readonly [SaleState, ReadonlyArray<Promotion>] => {
  const draw = state.draw
  let book = state.holds
  if (draw === undefined || draw.waitingList === undefined || book === undefined || state.cancelled)
    return [state, []]
  const promoted: Array<Promotion> = []
  let remaining = state.remaining
  let reserved = state.reserved
  while (remaining > 0) {
    const taken = nextEntrant(book)
    if (taken === undefined) break
    book = taken.book
    const entrant = draw.entrants.get(taken.userId)
    if (entrant === undefined || state.buyers.has(taken.userId) || book.lapsed.has(taken.userId)) continue
    state.buyers.set(taken.userId, { reserved: entrant.entryId })
    book = hold(book, taken.userId, entrant.entryId, now)
    promoted.push({ userId: taken.userId, orderId: entrant.entryId, payBy: now + book.holdMillis })
    remaining--
    reserved++
  }
  return [{ ...state, remaining, reserved, holds: book }, promoted]
}

const nextEntrant = (book: HoldBook): { readonly userId: UserId; readonly book: HoldBook } | undefined => {
  const requeued = book.requeued.shift()
  if (requeued !== undefined) return { userId: requeued, book }
  const userId = book.waiting[book.nextWaiting]
  return userId === undefined ? undefined : { userId, book: { ...book, nextWaiting: book.nextWaiting + 1 } }
}

/**
 * A change PostgreSQL made without the decider, learnt afterwards: a payment a webhook applied
 * to the order row, or the buyer's cancellation (whose unit the stock row got back then). The
 * row is the arbiter, so this only brings the book in line: a committed held order moves once
 * (H3), and a cancelled unit is freed in memory once (H5). Anything else is left as it is.
 */
export interface Settle {
  readonly _tag: "Settle"
  readonly orderId: OrderId
  readonly status: "paid" | "cancelled"
}

export interface Settled {
  readonly _tag: "Settled"
  readonly orderId: OrderId
  readonly applied: boolean
}

export const settle = (state: SaleState, book: HoldBook, command: Settle): readonly [SaleState, Settled] => {
  const orderId = command.orderId
  const held = book.orders.get(orderId)
  const unchanged = [state, { _tag: "Settled", orderId, applied: false }] as const
  if (held === undefined || held.status !== "held") return unchanged
  const order = { userId: held.userId, orderId }
  if (!committedHolding(state, order)) return unchanged
  const applied = { _tag: "Settled", orderId, applied: true } as const
  if (command.status === "cancelled") return [end(state, book, order, held, "cancelled"), applied]
  book.orders.set(orderId, { ...held, status: "paid" })
  return [{ ...state, holds: { ...book, held: book.held - 1, paid: book.paid + 1 } }, applied]
}

export type HoldCommand = Pay | CancelHold | Expire | ExpireOrders | Settle
export type HoldDecision = PayDecision | CancelDecision | Expiry | Settled

/** A hold command's transition, for `SaleState.decide`. */
export const decide = (state: SaleState, command: HoldCommand): readonly [SaleState, HoldDecision] => {
  const book = state.holds
  switch (command._tag) {
    // A sale without holds has no held order: a payment is refunded and changes nothing.
    case "Pay":
      return book === undefined
        ? [state, { _tag: "LatePayment", orderId: command.orderId, reason: "unknown" }]
        : pay(state, book, command)
    case "CancelHold":
      return book === undefined
        ? [state, { _tag: "NotCancellable", orderId: command.orderId, reason: "unknown" }]
        : cancelHold(state, book, command)
    case "Expire":
      return book === undefined ? [state, { expired: [], promoted: [] }] : expire(state, book, command.now)
    case "ExpireOrders":
      return book === undefined ? [state, { expired: [], promoted: [] }] : expireOrders(state, book, command)
    case "Settle":
      return book === undefined
        ? [state, { _tag: "Settled", orderId: command.orderId, applied: false }]
        : settle(state, book, command)
  }
}

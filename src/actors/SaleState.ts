import type { OrderId, SaleId, UserId } from "../domain/Ids.ts"
import type { Outcome } from "../domain/Outcome.ts"

/**
 * The in-memory state of one sale, owned by exactly one actor.
 *
 * Invariants kept by `decide` (checked after every step by the property tests):
 * - I1: `total - remaining` (units reserved or committed) never exceeds `total`, and `remaining >= 0`.
 * - I2: a user appears at most once in `buyers`.
 * - `remaining + buyers.size === total`: every unit is either free or held by exactly one buyer.
 * - I3: a buyer is told `AlreadyPurchased` only for an order that is committed; a repeat of a
 *   buyer whose order is still pending is answered `AwaitingCommit`, and the actor holds it
 *   for that order's batch.
 *
 * `buyers` is threaded from one state to the next rather than copied, so a
 * decision costs O(1) instead of O(buyers): a state handed to `decide` is consumed, and only
 * the returned state may be read afterwards. Everything else about the transition is pure:
 * no IO, no clock (time arrives in the command), no randomness (ids arrive in the command).
 */
export interface SaleState {
  readonly saleId: SaleId
  readonly total: number
  readonly remaining: number
  /** Start and end of the sale, epoch milliseconds. */
  readonly startsAt: number
  readonly endsAt: number
  readonly cancelled: boolean
  /** Users holding a unit, with their order: committed (the id itself) or still reserved. */
  readonly buyers: Map<UserId, Holding>
  /** How many holdings are reservations: orders staged or in a commit. */
  readonly reserved: number
}

/**
 * An order accepted but not yet known to be committed: staged, or in a commit. Kept as the
 * buyer's value rather than in a set of its own, so an acceptance costs one map write and a
 * commit one overwrite of an existing key, with no second table on the hot path.
 */
export interface Reservation {
  readonly reserved: OrderId
}

export type Holding = OrderId | Reservation

/** A buyer's order as the committer reports it back. */
export interface OrderRef {
  readonly userId: UserId
  readonly orderId: OrderId
}

export interface Purchase {
  readonly _tag: "Purchase"
  readonly userId: UserId
  /** The id the order gets if this attempt is accepted. */
  readonly orderId: OrderId
  /** The time of the attempt, epoch milliseconds. */
  readonly now: number
}

export interface Cancel {
  readonly _tag: "Cancel"
}

/** These orders are in PostgreSQL: a repeat of their buyers is now `AlreadyPurchased`. */
export interface Committed {
  readonly _tag: "Committed"
  readonly orders: ReadonlyArray<OrderRef>
}

/** These orders are known not to be in PostgreSQL: their units go back on sale. */
export interface Released {
  readonly _tag: "Released"
  readonly orders: ReadonlyArray<OrderRef>
}

export type Command = Purchase | Cancel | Committed | Released

/** What a purchase is decided as: an outcome, or "wait for this pending order's batch". */
export type Decision = Outcome | { readonly _tag: "AwaitingCommit"; readonly orderId: OrderId }

export type SaleStatus = "upcoming" | "active" | "sold_out" | "ended" | "cancelled"

export const initialState = (sale: {
  readonly saleId: SaleId
  readonly total: number
  readonly startsAt: number
  readonly endsAt: number
  readonly cancelled: boolean
  readonly buyers: ReadonlyMap<UserId, OrderId>
}): SaleState => {
  if (sale.buyers.size > sale.total) {
    throw new Error(`sale ${sale.saleId} has ${sale.buyers.size} buyers for ${sale.total} units`)
  }
  return {
    ...sale,
    remaining: sale.total - sale.buyers.size,
    buyers: new Map<UserId, Holding>(sale.buyers),
    reserved: 0
  }
}

export const statusAt = (
  state: Pick<SaleState, "cancelled" | "startsAt" | "endsAt" | "remaining">,
  now: number
): SaleStatus => {
  if (state.cancelled) return "cancelled"
  if (now < state.startsAt) return "upcoming"
  if (now >= state.endsAt) return "ended"
  if (state.remaining === 0) return "sold_out"
  return "active"
}

/**
 * A buyer who already holds a unit is answered about that order before any other check, so
 * a retry after a lost reply is always answered the same: `AlreadyPurchased` once the order
 * is committed, `AwaitingCommit` while it is not (invariant I3).
 */
const decidePurchase = (state: SaleState, command: Purchase): readonly [SaleState, Decision] => {
  const held = state.buyers.get(command.userId)
  if (held !== undefined) {
    return typeof held === "string"
      ? [state, { _tag: "AlreadyPurchased", orderId: held }]
      : [state, { _tag: "AwaitingCommit", orderId: held.reserved }]
  }
  if (state.cancelled) return [state, { _tag: "Cancelled" }]
  if (command.now < state.startsAt) return [state, { _tag: "NotStarted", startsAt: state.startsAt }]
  if (command.now >= state.endsAt) return [state, { _tag: "Ended" }]
  if (state.remaining === 0) return [state, { _tag: "SoldOut" }]
  state.buyers.set(command.userId, { reserved: command.orderId })
  return [
    { ...state, remaining: state.remaining - 1, reserved: state.reserved + 1 },
    { _tag: "Accepted", orderId: command.orderId }
  ]
}

/** Whether the buyer's holding is exactly this order's reservation. */
const isReservation = (state: SaleState, order: OrderRef) => {
  const held = state.buyers.get(order.userId)
  return held !== undefined && typeof held !== "string" && held.reserved === order.orderId
}

const commit = (state: SaleState, orders: ReadonlyArray<OrderRef>): SaleState => {
  let committed = 0
  for (const order of orders) {
    if (!isReservation(state, order)) continue
    state.buyers.set(order.userId, order.orderId)
    committed++
  }
  return committed === 0 ? state : { ...state, reserved: state.reserved - committed }
}

/** Only the exact reservation (same user, same order, not committed) is given back. */
const release = (state: SaleState, orders: ReadonlyArray<OrderRef>): SaleState => {
  let freed = 0
  for (const order of orders) {
    if (!isReservation(state, order)) continue
    state.buyers.delete(order.userId)
    freed++
  }
  return freed === 0
    ? state
    : { ...state, remaining: state.remaining + freed, reserved: state.reserved - freed }
}

const apply = (state: SaleState, command: Exclude<Command, Purchase>): SaleState => {
  switch (command._tag) {
    case "Cancel":
      return state.cancelled ? state : { ...state, cancelled: true }
    case "Committed":
      return commit(state, command.orders)
    case "Released":
      return release(state, command.orders)
  }
}

/** The sale's one transition function: the new state, and for a purchase its decision. */
export function decide(state: SaleState, command: Purchase): readonly [SaleState, Decision]
export function decide(state: SaleState, command: Exclude<Command, Purchase>): readonly [SaleState, undefined]
export function decide(state: SaleState, command: Command): readonly [SaleState, Decision | undefined]
export function decide(state: SaleState, command: Command): readonly [SaleState, Decision | undefined] {
  return command._tag === "Purchase" ? decidePurchase(state, command) : [apply(state, command), undefined]
}

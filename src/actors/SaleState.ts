import type { OrderId, SaleId, UserId } from "../domain/Ids.ts"
import type { Outcome } from "../domain/Outcome.ts"

/**
 * The in-memory state of one sale, owned by exactly one actor.
 *
 * Invariants kept by `decide` and `release` (checked after every step by the property tests):
 * - I1: `total - remaining` (units reserved or committed) never exceeds `total`, and `remaining >= 0`.
 * - I2: a user appears at most once in `buyers`.
 * - `remaining + buyers.size === total`: every unit is either free or held by exactly one buyer.
 *
 * `buyers` is threaded from one state to the next rather than copied, so a decision costs
 * O(1) instead of O(buyers): a state handed to `decide` or `release` is consumed, and only
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
  /** Users holding a unit (committed or reserved), with their order id. */
  readonly buyers: Map<UserId, OrderId>
}

export interface Purchase {
  readonly userId: UserId
  /** The id the order gets if this attempt is accepted. */
  readonly orderId: OrderId
  /** The time of the attempt, epoch milliseconds. */
  readonly now: number
}

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
  return { ...sale, remaining: sale.total - sale.buyers.size, buyers: new Map(sale.buyers) }
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
 * Decides one purchase attempt. A buyer who already holds a unit is told so (with the
 * order) before any other check, so a retry after a lost reply is always answered the same.
 */
export const decide = (state: SaleState, command: Purchase): readonly [SaleState, Outcome] => {
  const existing = state.buyers.get(command.userId)
  if (existing !== undefined) return [state, { _tag: "AlreadyPurchased", orderId: existing }]
  if (state.cancelled) return [state, { _tag: "Cancelled" }]
  if (command.now < state.startsAt) return [state, { _tag: "NotStarted", startsAt: state.startsAt }]
  if (command.now >= state.endsAt) return [state, { _tag: "Ended" }]
  if (state.remaining === 0) return [state, { _tag: "SoldOut" }]
  state.buyers.set(command.userId, command.orderId)
  return [
    { ...state, remaining: state.remaining - 1 },
    { _tag: "Accepted", orderId: command.orderId }
  ]
}

/**
 * Gives back a reservation whose order was never committed. Releasing anything but the
 * exact reservation (same user, same order) changes nothing.
 */
export const release = (state: SaleState, userId: UserId, orderId: OrderId): SaleState => {
  if (state.buyers.get(userId) !== orderId) return state
  state.buyers.delete(userId)
  return { ...state, remaining: state.remaining + 1 }
}

export const cancel = (state: SaleState): SaleState =>
  state.cancelled ? state : { ...state, cancelled: true }

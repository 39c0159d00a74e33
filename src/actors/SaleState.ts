import type { OrderId, SaleId, UserId } from "../domain/Ids.ts"
import type { Outcome } from "../domain/Outcome.ts"
import * as Holds from "./Holds.ts"

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
 * - With a hold length, H1 to H5 of Holds.ts: reserved + paid <= stock, one live order per
 *   unit, a status changes once, an event id once, a freed unit goes back once.
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
  /** A draw sale's entries and result; undefined for a first-come sale. */
  readonly draw: DrawState | undefined
  /** The sale's holds (Holds.ts); undefined for a sale without a hold length: purchases are final. */
  readonly holds: Holds.HoldBook | undefined
}

/**
 * A draw sale's side of the state. Invariants (checked by the property tests):
 * - one entrant per buyer (`entrants` is keyed by buyer), and no entry after `drawAt`;
 * - `pending` is the number of entrants whose entry is staged or in a commit;
 * - the draw is applied once, only when nothing is pending, and gives at most `remaining`
 *   units; after it every entrant is a buyer (won) or has a waiting-list place.
 * `entrants` is threaded like `buyers`.
 */
export interface DrawState {
  readonly drawAt: number
  readonly entrants: Map<UserId, Entrant>
  readonly pending: number
  /** Set by the draw: the waiting-list place of each entrant not drawn. */
  readonly waitingList: ReadonlyMap<UserId, number> | undefined
}

export interface Entrant {
  readonly entryId: OrderId
  readonly at: number
  /** Staged or in a commit: its buyer is not told "entered" until it is committed. */
  readonly pending: boolean
}

/** A buyer's entry as the committer reports it back. */
export interface EntryRef {
  readonly userId: UserId
  readonly entryId: OrderId
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

/** These entries are in PostgreSQL: their buyers are now told "entered". */
export interface EntriesCommitted {
  readonly _tag: "EntriesCommitted"
  readonly entries: ReadonlyArray<EntryRef>
}

/** These entries are known not to be in PostgreSQL: their buyers may enter again. */
export interface EntriesReleased {
  readonly _tag: "EntriesReleased"
  readonly entries: ReadonlyArray<EntryRef>
}

/** The draw, as committed: winners hold their orders, the others their waiting-list places. */
export interface Drawn {
  readonly _tag: "Drawn"
  readonly winners: ReadonlyArray<OrderRef>
  readonly waitingList: ReadonlyMap<UserId, number>
  /** When the draw was committed, epoch milliseconds: the winners' holds run from it. */
  readonly at?: number | undefined
}

export type Command = Purchase | Cancel | Committed | Released | EntriesCommitted | EntriesReleased | Drawn

/**
 * What a purchase is decided as: an outcome, "wait for this pending order's (or entry's)
 * batch", or, in a draw sale's window, a new entry to commit (the id in the command is its id).
 */
export type Decision =
  | Outcome
  | { readonly _tag: "AwaitingCommit"; readonly orderId: OrderId }
  | { readonly _tag: "EntryAccepted"; readonly entryId: OrderId; readonly at: number }
  /** One unit per buyer per sale: this buyer's hold on the sale expired or was cancelled. */
  | { readonly _tag: "HoldLapsed"; readonly orderId: OrderId }

export type SaleStatus = "upcoming" | "active" | "sold_out" | "ended" | "cancelled"

export const initialState = (sale: {
  readonly saleId: SaleId
  readonly total: number
  readonly startsAt: number
  readonly endsAt: number
  readonly cancelled: boolean
  readonly buyers: ReadonlyMap<UserId, OrderId>
  readonly draw?:
    | {
        readonly drawAt: number
        readonly entries: ReadonlyMap<UserId, { readonly entryId: OrderId; readonly at: number }>
        readonly waitingList: ReadonlyMap<UserId, number> | undefined
      }
    | undefined
  /** The hold length; 0 or absent: a purchase is final, as it always was. */
  readonly holdMillis?: number | undefined
  readonly repurchaseAfterLapse?: boolean | undefined
  /** Buyers' orders still held (a subset of `buyers`), and buyers whose hold lapsed. */
  readonly pendingHolds?: ReadonlyArray<Holds.PendingHold> | undefined
  readonly lapsed?: ReadonlyMap<UserId, OrderId> | undefined
}): SaleState => {
  if (sale.buyers.size > sale.total) {
    throw new Error(`sale ${sale.saleId} has ${sale.buyers.size} buyers for ${sale.total} units`)
  }
  const { draw, holdMillis, repurchaseAfterLapse, pendingHolds, lapsed, ...rest } = sale
  const pending = pendingHolds ?? []
  for (const hold of pending)
    if (sale.buyers.get(hold.userId) !== hold.orderId)
      throw new Error(`sale ${sale.saleId}: held order ${hold.orderId} is not its buyer's order`)
  const holds =
    holdMillis === undefined || holdMillis <= 0
      ? undefined
      : Holds.emptyBook({
          holdMillis,
          repurchase: repurchaseAfterLapse ?? false,
          paid: sale.buyers.size - pending.length,
          pending,
          lapsed: lapsed ?? new Map(),
          waitingList: draw?.waitingList
        })
  return {
    ...rest,
    remaining: sale.total - sale.buyers.size,
    buyers: new Map<UserId, Holding>(sale.buyers),
    reserved: 0,
    draw: draw === undefined ? undefined : initialDraw(draw),
    holds
  }
}

const initialDraw = (draw: NonNullable<Parameters<typeof initialState>[0]["draw"]>): DrawState => {
  const entrants = new Map<UserId, Entrant>()
  for (const [userId, entry] of draw.entries)
    entrants.set(userId, { entryId: entry.entryId, at: entry.at, pending: false })
  return { drawAt: draw.drawAt, entrants, pending: 0, waitingList: draw.waitingList }
}

/** Whether the draw is due: the window closed, nothing pending, not drawn, not cancelled. */
export const drawDue = (state: SaleState, now: number): boolean =>
  state.draw !== undefined &&
  state.draw.waitingList === undefined &&
  state.draw.pending === 0 &&
  !state.cancelled &&
  now >= state.draw.drawAt

/** The sale's status at `now`; a draw sale (`drawAt` given) takes no one new once its window closed. */
export const statusAt = (
  state: Pick<SaleState, "cancelled" | "startsAt" | "endsAt" | "remaining">,
  now: number,
  drawAt?: number
): SaleStatus => {
  if (state.cancelled) return "cancelled"
  if (now < state.startsAt) return "upcoming"
  if (now >= state.endsAt) return "ended"
  if (state.remaining === 0) return "sold_out"
  if (drawAt !== undefined && now >= drawAt) return "ended"
  return "active"
}

/**
 * A buyer who already holds a unit is answered about that order before any other check, so
 * a retry after a lost reply is always answered the same: `AlreadyPurchased` once the order
 * is committed, `AwaitingCommit` while it is not (invariant I3).
 */
const decidePurchase = (state: SaleState, command: Purchase): readonly [SaleState, Decision] => {
  if (state.draw !== undefined) return decideEntry(state, state.draw, command)
  const held = state.buyers.get(command.userId)
  if (held !== undefined) {
    return typeof held === "string"
      ? [state, { _tag: "AlreadyPurchased", orderId: held }]
      : [state, { _tag: "AwaitingCommit", orderId: held.reserved }]
  }
  const lapsed = state.holds?.lapsed.get(command.userId)
  if (lapsed !== undefined) return [state, { _tag: "HoldLapsed", orderId: lapsed }]
  if (state.cancelled) return [state, { _tag: "Cancelled" }]
  if (command.now < state.startsAt) return [state, { _tag: "NotStarted", startsAt: state.startsAt }]
  if (command.now >= state.endsAt) return [state, { _tag: "Ended" }]
  if (state.remaining === 0) return [state, { _tag: "SoldOut" }]
  state.buyers.set(command.userId, { reserved: command.orderId })
  const holds =
    state.holds === undefined
      ? undefined
      : Holds.hold(state.holds, command.userId, command.orderId, command.now)
  return [
    { ...state, remaining: state.remaining - 1, reserved: state.reserved + 1, holds },
    { _tag: "Accepted", orderId: command.orderId }
  ]
}

/**
 * A draw sale's attempt: a winner is told about their order, any other entrant about their
 * entry (or, after the draw, their waiting-list place) before any other check, so a retry is
 * answered the same; a new buyer in the window enters.
 */
const decideEntry = (
  state: SaleState,
  draw: DrawState,
  command: Purchase
): readonly [SaleState, Decision] => {
  // A winner, or an entrant promoted from the waiting list (whose order may be in a commit).
  const held = state.buyers.get(command.userId)
  if (held !== undefined)
    return typeof held === "string"
      ? [state, { _tag: "AlreadyPurchased", orderId: held }]
      : [state, { _tag: "AwaitingCommit", orderId: held.reserved }]
  const lapsed = state.holds?.lapsed.get(command.userId)
  if (lapsed !== undefined) return [state, { _tag: "HoldLapsed", orderId: lapsed }]
  const place = draw.waitingList?.get(command.userId)
  if (place !== undefined) return [state, { _tag: "NotDrawn", place }]
  const entrant = draw.entrants.get(command.userId)
  if (entrant !== undefined) {
    return entrant.pending
      ? [state, { _tag: "AwaitingCommit", orderId: entrant.entryId }]
      : [state, { _tag: "Entered", entryId: entrant.entryId, enteredAt: entrant.at, drawAt: draw.drawAt }]
  }
  if (state.cancelled) return [state, { _tag: "Cancelled" }]
  if (command.now < state.startsAt) return [state, { _tag: "NotStarted", startsAt: state.startsAt }]
  if (command.now >= draw.drawAt || command.now >= state.endsAt) return [state, { _tag: "Ended" }]
  draw.entrants.set(command.userId, { entryId: command.orderId, at: command.now, pending: true })
  return [
    { ...state, draw: { ...draw, pending: draw.pending + 1 } },
    { _tag: "EntryAccepted", entryId: command.orderId, at: command.now }
  ]
}

/** Whether the buyer's entry is exactly this pending entry. */
const isPendingEntry = (draw: DrawState, entry: EntryRef) => {
  const entrant = draw.entrants.get(entry.userId)
  return entrant !== undefined && entrant.pending && entrant.entryId === entry.entryId
}

const settleEntries = (state: SaleState, entries: ReadonlyArray<EntryRef>, committed: boolean): SaleState => {
  const draw = state.draw
  if (draw === undefined) return state
  let settled = 0
  for (const entry of entries) {
    if (!isPendingEntry(draw, entry)) continue
    const entrant = draw.entrants.get(entry.userId)
    if (entrant === undefined) continue
    if (committed) draw.entrants.set(entry.userId, { ...entrant, pending: false })
    else draw.entrants.delete(entry.userId)
    settled++
  }
  return settled === 0 ? state : { ...state, draw: { ...draw, pending: draw.pending - settled } }
}

const applyDraw = (state: SaleState, command: Drawn): SaleState => {
  const draw = state.draw
  if (draw === undefined || draw.waitingList !== undefined) return state
  if (draw.pending > 0) throw new Error(`sale ${state.saleId}: drawn with ${draw.pending} entries pending`)
  if (command.winners.length > state.remaining)
    throw new Error(`sale ${state.saleId}: ${command.winners.length} winners for ${state.remaining} units`)
  let holds = state.holds === undefined ? undefined : Holds.withWaitingList(state.holds, command.waitingList)
  for (const winner of command.winners) {
    if (!draw.entrants.has(winner.userId) || state.buyers.has(winner.userId))
      throw new Error(`sale ${state.saleId}: winner ${winner.userId} did not enter or holds a unit`)
    state.buyers.set(winner.userId, winner.orderId)
    if (holds !== undefined)
      holds = Holds.hold(holds, winner.userId, winner.orderId, command.at ?? draw.drawAt)
  }
  return {
    ...state,
    remaining: state.remaining - command.winners.length,
    draw: { ...draw, waitingList: command.waitingList },
    holds
  }
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
  let holds = state.holds
  for (const order of orders) {
    if (!isReservation(state, order)) continue
    state.buyers.delete(order.userId)
    // In a drawn sale every reservation is a promotion from the waiting list.
    if (holds !== undefined) holds = Holds.drop(holds, order, state.draw !== undefined)
    freed++
  }
  return freed === 0
    ? state
    : { ...state, remaining: state.remaining + freed, reserved: state.reserved - freed, holds }
}

const apply = (state: SaleState, command: Exclude<Command, Purchase>): SaleState => {
  switch (command._tag) {
    case "EntriesCommitted":
      return settleEntries(state, command.entries, true)
    case "EntriesReleased":
      return settleEntries(state, command.entries, false)
    case "Drawn":
      return applyDraw(state, command)
    case "Cancel":
      return state.cancelled ? state : { ...state, cancelled: true }
    case "Committed":
      return commit(state, command.orders)
    case "Released":
      return release(state, command.orders)
  }
}

/**
 * The sale's one transition function: the new state, and for a purchase its decision, for a
 * payment or a cancellation of a hold its answer, for an expiry what expired and who was
 * promoted.
 */
export function decide(state: SaleState, command: Purchase): readonly [SaleState, Decision]
export function decide(state: SaleState, command: Holds.Pay): readonly [SaleState, Holds.PayDecision]
export function decide(
  state: SaleState,
  command: Holds.CancelHold
): readonly [SaleState, Holds.CancelDecision]
export function decide(state: SaleState, command: Holds.Expire): readonly [SaleState, Holds.Expiry]
export function decide(state: SaleState, command: Holds.ExpireOrders): readonly [SaleState, Holds.Expiry]
export function decide(state: SaleState, command: Holds.Settle): readonly [SaleState, Holds.Settled]
export function decide(state: SaleState, command: Exclude<Command, Purchase>): readonly [SaleState, undefined]
export function decide(
  state: SaleState,
  command: Command | Holds.HoldCommand
): readonly [SaleState, Decision | Holds.HoldDecision | undefined]
export function decide(
  state: SaleState,
  command: Command | Holds.HoldCommand
): readonly [SaleState, Decision | Holds.HoldDecision | undefined] {
  switch (command._tag) {
    case "Purchase":
      return decidePurchase(state, command)
    case "Pay":
    case "CancelHold":
    case "Expire":
    case "ExpireOrders":
    case "Settle":
      return Holds.decide(state, command)
    default:
      return [apply(state, command), undefined]
  }
}

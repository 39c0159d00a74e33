import type { OrderId } from "./Ids.ts"

/**
 * What the sale decided for one purchase attempt. Only `Accepted` reserves a unit,
 * and it reaches a caller only after the order is committed. In a draw sale, an attempt in
 * the entry window is an entry: `Entered` reaches a caller only after the entry is committed,
 * and a buyer who entered is told the same entry again; after the draw, a winner is told
 * `AlreadyPurchased` and everyone else who entered `NotDrawn`, with their waiting-list place.
 */
export type Outcome =
  /** `payBy` (epoch ms): a hold sale's order, reserved until then; absent: final. */
  | { readonly _tag: "Accepted"; readonly orderId: OrderId; readonly payBy?: number }
  /**
   * `payBy`: the order is still held, unpaid, until then. `lapsed`: the buyer's hold expired or
   * was cancelled unpaid, and the sale sells once per buyer: this is that order, no unit.
   */
  | {
      readonly _tag: "AlreadyPurchased"
      readonly orderId: OrderId
      readonly payBy?: number
      readonly lapsed?: true
    }
  | { readonly _tag: "SoldOut" }
  | { readonly _tag: "NotStarted"; readonly startsAt: number }
  | { readonly _tag: "Ended" }
  | { readonly _tag: "Cancelled" }
  | {
      readonly _tag: "Entered"
      readonly entryId: OrderId
      /** When the entry was decided, and when the draw is due: epoch milliseconds. */
      readonly enteredAt: number
      readonly drawAt: number
    }
  | { readonly _tag: "NotDrawn"; readonly place: number }

export type OutcomeTag = Outcome["_tag"]

export const outcomeTags: ReadonlyArray<OutcomeTag> = [
  "Accepted",
  "AlreadyPurchased",
  "SoldOut",
  "NotStarted",
  "Ended",
  "Cancelled",
  "Entered",
  "NotDrawn"
]

// The outcome as recorded: a row per buyer in purchase_attempts (accepted, already purchased),
// or a count per batch in purchase_refusals (sold out, not started, ended, cancelled).
export const attemptReason: Record<OutcomeTag, string> = {
  Accepted: "accepted",
  AlreadyPurchased: "already_purchased",
  SoldOut: "sold_out",
  NotStarted: "not_started",
  Ended: "ended",
  Cancelled: "cancelled",
  Entered: "entered",
  NotDrawn: "not_drawn"
}

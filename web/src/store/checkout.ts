import type { OrderDetail, OrderStatus } from "../api.ts"
import type { PurchaseOutcome } from "./outcome.ts"

/** Where the buyer's wait for a held order stands, beside the order itself. */
export interface CheckoutView {
  readonly now: number
  /** The page is asking the node again and again for the order's news (after paying, or at payBy). */
  readonly checking: boolean
  /** A round of asking ended with the order still reserved. */
  readonly unanswered: boolean
  /** The buyer came back from the payment page with this order. */
  readonly returned: boolean
  /** A second press of Buy answered with this order: one order per buyer in this sale. */
  readonly repeated: boolean
}

/** A held order can still be paid (or given up) while its hold lasts. */
export const payable = (order: OrderDetail, now: number): boolean =>
  order.status === "reserved" && order.payBy !== null && Date.parse(order.payBy) > now

/** A hold that ended without a sale: the unit went back. */
export const lapsed = (status: OrderStatus): boolean =>
  status === "expired" || status === "cancelled" || status === "refunded"

const clock = (iso: string | null): string =>
  iso === null
    ? "its end"
    : new Date(iso).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })

const onlyOnce = "One order per buyer in this sale, so it cannot be bought again."

/** Plain words for a held order and how the buyer's tone should read: good, bad, or waiting. */
export const checkoutWords = (
  order: OrderDetail,
  view: CheckoutView
): { readonly text: string; readonly tone: "good" | "bad" | "wait" } => {
  switch (order.status) {
    case "paid":
      return { text: `Paid — the order is yours. Order id ${order.orderId}.`, tone: "good" }
    case "expired":
      return {
        text:
          `Your hold expired at ${clock(order.payBy)} before it was paid; the unit went back on sale.` +
          (view.repeated ? ` ${onlyOnce}` : ""),
        tone: "bad"
      }
    case "cancelled":
      return {
        text: "You cancelled this order; the unit went back on sale." + (view.repeated ? ` ${onlyOnce}` : ""),
        tone: "bad"
      }
    case "refunded":
      return { text: "Your payment arrived after the hold ended; it has been refunded.", tone: "bad" }
    case "reserved": {
      const open = payable(order, view.now)
      if (view.checking)
        return open
          ? { text: "Checking your payment…", tone: "wait" }
          : {
              text: `Your hold ended at ${clock(order.payBy)}; checking whether a payment arrived…`,
              tone: "wait"
            }
      if (view.unanswered || view.returned)
        return open
          ? {
              text: "We have not heard from the payment yet. If you paid, this page shows it once it arrives; if not, you can still pay while time remains.",
              tone: "wait"
            }
          : {
              text: `We have not heard from the payment yet, and your hold ended at ${clock(order.payBy)}. Check again in a moment.`,
              tone: "wait"
            }
      return open
        ? {
            text: `Reserved for you until ${clock(order.payBy)}: pay before then to make it yours. Order id ${order.orderId}.`,
            tone: "good"
          }
        : { text: `Your hold ended at ${clock(order.payBy)}.`, tone: "wait" }
    }
  }
}

/** The order a sale's checkout follows, and how the buyer came to it. */
export interface FollowedOrder {
  readonly orderId: string
  /** Back from the payment page with it. */
  readonly returned: boolean
  /** A second press of Buy answered with it. */
  readonly repeated: boolean
}

/**
 * The order a sale's card follows through checkout: the one Buy just answered with in a sale
 * with holds, else the one the buyer came back from paying with, else, in a sale with holds,
 * the order a draw gave the buyer or the buyer's order in the list. None for a sale without
 * holds: its purchases are final, said as before.
 */
export const followedOrder = (from: {
  readonly outcome: PurchaseOutcome | undefined
  readonly holds: boolean
  readonly returnedOrderId: string | undefined
  readonly wonOrderId: string | undefined
  readonly purchasedOrderId: string | undefined
}): FollowedOrder | undefined => {
  const { outcome } = from
  if (
    outcome?.kind === "reserved" ||
    (from.holds && (outcome?.kind === "purchased" || outcome?.kind === "already_purchased"))
  )
    return {
      orderId: outcome.orderId,
      returned: false,
      repeated: outcome.kind === "already_purchased" || (outcome.kind === "reserved" && outcome.again)
    }
  if (from.returnedOrderId !== undefined)
    return { orderId: from.returnedOrderId, returned: true, repeated: false }
  const listed = from.wonOrderId ?? from.purchasedOrderId
  if (from.holds && listed !== undefined) return { orderId: listed, returned: false, repeated: false }
  return undefined
}

/**
 * What the Buy button says for a followed order (disabled), or undefined when Buy may be
 * pressed again: after a lapsed hold, unless the sale gives no second chance (a second press
 * already answered with the lapsed order, or a draw, whose units go down its waiting list).
 */
export const buttonForOrder = (status: OrderStatus | undefined, once: boolean): string | undefined =>
  status === undefined || status === "reserved"
    ? "Reserved"
    : status === "paid"
      ? "Purchased"
      : once
        ? "Hold lapsed"
        : undefined

/** Short words for an order's status in a list. */
export const statusWords: Record<OrderStatus, string> = {
  reserved: "awaiting payment",
  paid: "paid",
  expired: "hold expired",
  cancelled: "cancelled",
  refunded: "refunded"
}

let returned: { readonly orderId: string | undefined } | undefined

/**
 * The order the payment provider sent the buyer back with (`?order=<id>`), read once per page
 * load, so it outlives a remount of the shop (signing in, say) after the address is cleaned.
 */
export const returnedOrderId = (): string | undefined => {
  returned ??= { orderId: new URLSearchParams(location.search).get("order") ?? undefined }
  return returned.orderId
}

/** Drops `?order=` from the address, so a reload or a shared link does not replay the return. */
export const forgetReturnInAddress = (): void => {
  const url = new URL(location.href)
  if (!url.searchParams.has("order")) return
  url.searchParams.delete("order")
  history.replaceState(history.state, "", url.pathname + url.search + url.hash)
}

import type { OrderId, SaleId } from "../domain/Ids.ts"
import type { RoutedReply } from "../domain/Reply.ts"
import {
  notDrawn,
  saleNotFound,
  type NotDrawn,
  type ErrorAnswer,
  type Overloaded,
  type PurchaseUnavailable,
  type SaleNotActive,
  type SaleNotFound,
  type SoldOut
} from "./ApiErrors.ts"

/**
 * What a buyer is told about one purchase, stated once for both ways a purchase is served
 * (the HttpApi handler and the node:http fast route), so they cannot drift apart. A refusal
 * is one of the API's errors: its status and `Retry-After` come from the errors' table.
 */
export type PurchaseAnswer =
  | {
      readonly status: 201 | 200
      readonly order: {
        readonly orderId: OrderId
        readonly saleId: SaleId
        /**
         * "reserved": a hold sale's order, to be paid by `payBy` (ISO); "purchased": final;
         * "lapsed": the buyer's hold ended unpaid, and this sale sells once per buyer.
         */
        readonly status: "purchased" | "reserved" | "lapsed"
        readonly alreadyPurchased: boolean
        readonly payBy?: string
      }
    }
  | {
      /** A draw sale's entry, committed: the buyer waits for the draw. */
      readonly status: 202
      readonly entry: {
        readonly saleId: SaleId
        readonly status: "entered"
        readonly entered: {
          readonly entryId: OrderId
          readonly enteredAt: string
          readonly drawAt: string
        }
      }
    }
  | ErrorAnswer<SoldOut | SaleNotActive | NotDrawn | Overloaded | PurchaseUnavailable | SaleNotFound>

// The answers that never vary, made once: most answers of a sold-out sale are this one.
const soldOut = { _tag: "SoldOut", error: { code: "sold_out", message: "Every unit is sold" } } as const
const ended = {
  _tag: "SaleNotActive",
  error: { code: "sale_not_active", message: "The sale is over", details: { reason: "ended" } }
} as const
const cancelled = {
  _tag: "SaleNotActive",
  error: { code: "sale_not_active", message: "The sale was cancelled", details: { reason: "cancelled" } }
} as const

export const purchaseAnswer = (saleId: SaleId, reply: RoutedReply): PurchaseAnswer => {
  switch (reply._tag) {
    case "Accepted":
    case "AlreadyPurchased": {
      const alreadyPurchased = reply._tag === "AlreadyPurchased"
      const status = alreadyPurchased ? 200 : 201
      const orderId = reply.orderId
      if (reply._tag === "AlreadyPurchased" && reply.lapsed === true)
        return { status, order: { orderId, saleId, status: "lapsed", alreadyPurchased } }
      return reply.payBy === undefined
        ? { status, order: { orderId, saleId, status: "purchased", alreadyPurchased } }
        : {
            status,
            order: {
              orderId,
              saleId,
              status: "reserved",
              alreadyPurchased,
              payBy: new Date(reply.payBy).toISOString()
            }
          }
    }
    case "SoldOut":
      return soldOut
    case "NotStarted":
      return {
        _tag: "SaleNotActive",
        error: {
          code: "sale_not_active",
          message: "The sale has not started",
          details: { reason: "not_started", startsAt: new Date(reply.startsAt).toISOString() }
        }
      }
    case "Ended":
      return ended
    case "Cancelled":
      return cancelled
    case "Overloaded":
      return {
        _tag: "Overloaded",
        error: {
          code: "overloaded",
          message: "Too many buyers at once; try again shortly",
          details: { retryAfterSeconds: reply.retryAfterSeconds }
        }
      }
    case "PurchaseUnavailable":
      return {
        _tag: "PurchaseUnavailable",
        error: {
          code: "unavailable",
          message: "The purchase was not completed; it is safe to try again",
          details: { reason: reply.reason, retryAfterSeconds: reply.retryAfterSeconds }
        }
      }
    case "SaleNotFound":
      return saleNotFound(saleId)
    case "Entered":
      return {
        status: 202,
        entry: {
          saleId,
          status: "entered",
          entered: {
            entryId: reply.entryId,
            enteredAt: new Date(reply.enteredAt).toISOString(),
            drawAt: new Date(reply.drawAt).toISOString()
          }
        }
      }
    case "NotDrawn":
      return notDrawn(reply.place)
  }
}

import type { Reply } from "../actors/SaleActor.ts"
import type { OrderId, SaleId } from "../domain/Ids.ts"

/**
 * What a buyer is told about one purchase, stated once for both ways a purchase is served
 * (the HttpApi handler and the node:http fast path), so they cannot drift apart.
 */
export type PurchaseAnswer =
  | {
      readonly status: 201 | 200
      readonly order: {
        readonly orderId: OrderId
        readonly saleId: SaleId
        readonly status: "purchased"
        readonly alreadyPurchased: boolean
      }
    }
  | {
      readonly status: 409 | 429 | 503
      readonly error: { readonly code: string; readonly message: string; readonly details?: unknown }
      /** Seconds, for the `Retry-After` header of a 429 or 503. */
      readonly retryAfterSeconds?: number
    }

export const purchaseAnswer = (saleId: SaleId, reply: Reply): PurchaseAnswer => {
  switch (reply._tag) {
    case "Accepted":
      return {
        status: 201,
        order: { orderId: reply.orderId, saleId, status: "purchased", alreadyPurchased: false }
      }
    case "AlreadyPurchased":
      return {
        status: 200,
        order: { orderId: reply.orderId, saleId, status: "purchased", alreadyPurchased: true }
      }
    case "SoldOut":
      return { status: 409, error: { code: "sold_out", message: "Every unit is sold" } }
    case "NotStarted":
      return {
        status: 409,
        error: {
          code: "sale_not_active",
          message: "The sale has not started",
          details: { reason: "not_started", startsAt: new Date(reply.startsAt).toISOString() }
        }
      }
    case "Ended":
      return {
        status: 409,
        error: { code: "sale_not_active", message: "The sale is over", details: { reason: "ended" } }
      }
    case "Cancelled":
      return {
        status: 409,
        error: {
          code: "sale_not_active",
          message: "The sale was cancelled",
          details: { reason: "cancelled" }
        }
      }
    case "Overloaded":
      return {
        status: 503,
        retryAfterSeconds: reply.retryAfterSeconds,
        error: {
          code: "overloaded",
          message: "Too many buyers at once; try again shortly",
          details: { retryAfterSeconds: reply.retryAfterSeconds }
        }
      }
    case "PurchaseUnavailable":
      return {
        status: 503,
        retryAfterSeconds: reply.retryAfterSeconds,
        error: {
          code: "unavailable",
          message: "The purchase was not completed; it is safe to try again",
          details: { reason: reply.reason, retryAfterSeconds: reply.retryAfterSeconds }
        }
      }
  }
}

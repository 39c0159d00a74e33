import { Schema } from "effect"
import { Currency, PaymentEvent, PaymentEventKind } from "../domain/Payments.ts"
import { OrderId } from "../domain/Ids.ts"

/**
 * The development provider's HTTP contract, shared by the provider itself
 * (DevelopmentProvider.ts) and the node's client of it (DevelopmentClient.ts): the only
 * modules that know these paths. Server-to-server calls carry `authorization: Bearer <key>`.
 *
 *   POST /intents                  IntentRequest → PaymentIntent (201; 200 for an order that has one)
 *   GET  /intents/:intentId        → IntentView (with the events sent and their delivery)
 *   POST /intents/:intentId/refund RefundRequest → Refund (409: nothing was paid)
 *   GET  /checkout/:intentId       the buyer's page: the amount, "Pay" and "Decline"
 *   POST /checkout/:intentId/pay | /decline   303 to the intent's return URL
 *
 * Webhooks are POSTed to the node as the JSON of a PaymentEvent, signed by WebhookSignature.
 */
export const paths = {
  intents: "/intents",
  intent: (intentId: string) => `/intents/${encodeURIComponent(intentId)}`,
  refund: (intentId: string) => `/intents/${encodeURIComponent(intentId)}/refund`,
  checkout: (intentId: string) => `/checkout/${encodeURIComponent(intentId)}`,
  answer: (intentId: string, answer: BuyerAnswer) => `/checkout/${encodeURIComponent(intentId)}/${answer}`
} as const

export type BuyerAnswer = "pay" | "decline"

export const RefundRequest = Schema.Struct({
  reason: Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(500))
})

export const IntentStatus = Schema.Literals(["pending", "succeeded", "failed", "refunded"])
export type IntentStatus = typeof IntentStatus.Type

/** An event the provider announced, and how its delivery to the node went. */
export const SentEvent = Schema.Struct({
  eventId: Schema.String,
  kind: PaymentEventKind,
  delivery: Schema.Literals(["sending", "delivered", "abandoned"]),
  attempts: Schema.Int
})
export type SentEvent = typeof SentEvent.Type

/** An intent as the provider keeps it, with the events it sent about it. */
export const IntentView = Schema.Struct({
  intentId: Schema.String,
  orderId: OrderId,
  amountCents: Schema.Int,
  currency: Currency,
  status: IntentStatus,
  refund: Schema.optionalKey(Schema.Struct({ refundId: Schema.String, reason: Schema.String })),
  events: Schema.Array(SentEvent)
})
export type IntentView = typeof IntentView.Type

/** The body of every error the provider answers. */
export const ProblemBody = Schema.Struct({ error: Schema.String })

/** A webhook's body: exactly the bytes that were signed. */
export const WebhookBody = Schema.fromJsonString(PaymentEvent)

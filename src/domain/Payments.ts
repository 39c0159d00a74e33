import { Schema } from "effect"
import { OrderId, UserId } from "./Ids.ts"

// A provider's own identifiers (intents, events, refunds): opaque text, bounded so a hostile
// payload cannot make us store or log megabytes.
const ProviderRef = Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(255))

/** An ISO 4217 currency code; amounts are in its minor unit (cents for EUR and USD). */
export const Currency = Schema.String.check(Schema.isPattern(/^[A-Z]{3}$/))

const HttpUrl = Schema.String.check(
  Schema.makeFilter(
    (value: string) => (/^https?:\/\//.test(value) && URL.canParse(value)) || "must be an http(s) URL"
  )
)

/**
 * What the node asks a provider to collect for one order. The amount and currency are the
 * sale's, read on the server: a client never states what it pays.
 */
export const IntentRequest = Schema.Struct({
  orderId: OrderId,
  amountCents: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1)),
  currency: Currency,
  buyer: UserId,
  /** Where the provider sends the buyer's browser once they paid or declined. */
  returnUrl: HttpUrl
})
export type IntentRequest = typeof IntentRequest.Type

/** A payment the provider is ready to take: the buyer pays at `checkoutUrl`. */
export const PaymentIntent = Schema.Struct({
  intentId: ProviderRef,
  checkoutUrl: HttpUrl
})
export type PaymentIntent = typeof PaymentIntent.Type

/** A refund the provider accepted. */
export const Refund = Schema.Struct({
  refundId: ProviderRef,
  intentId: ProviderRef
})
export type Refund = typeof Refund.Type

/** What happened to an intent, as its provider reports it in a webhook. */
export const PaymentEventKind = Schema.Literals(["succeeded", "failed", "refunded"])
export type PaymentEventKind = typeof PaymentEventKind.Type

/**
 * One provider event, verified and decoded. `eventId` is the provider's and the same on every
 * delivery of that event, so it is what makes applying an event idempotent.
 */
export const PaymentEvent = Schema.Struct({
  eventId: ProviderRef,
  intentId: ProviderRef,
  orderId: OrderId,
  kind: PaymentEventKind,
  /** When the provider says it happened, in epoch milliseconds. */
  at: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
})
export type PaymentEvent = typeof PaymentEvent.Type

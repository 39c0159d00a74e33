import { NodeHttpClient } from "@effect/platform-node"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { createHmac } from "node:crypto"
import type { IntentRequest, PaymentEvent, PaymentIntent, Refund } from "../domain/Payments.ts"
import { sharedSecret } from "../Secret.ts"
import * as Settings from "../Settings.ts"
import { makeDevelopmentClient, type DevelopmentClientOptions } from "./DevelopmentClient.ts"
import { DevelopmentProvider } from "./DevelopmentProvider.ts"
import type {
  BadSignature,
  MalformedWebhook,
  NothingToRefund,
  ProviderRefused,
  ProviderUnreachable,
  StaleWebhook
} from "./PaymentErrors.ts"

/** A webhook request's headers as either node:http or Effect's HttpServerRequest has them. */
export type WebhookHeaders = Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

/**
 * Where buyers pay. The node creates an intent for an order (the amount and currency are the
 * sale's, read on the server, never the client's), sends the buyer to its checkout page, and
 * learns the outcome from the provider's signed webhook; a payment that came too late is
 * given back with `refund`.
 *
 * One implementation per provider, each a static layer here and a module of its own that
 * alone knows the provider's URLs and formats. A real provider maps onto the same three
 * methods: `createIntent` is its "create a checkout session / payment intent" call (with the
 * order id as idempotency key and in its metadata, so the webhook carries it back),
 * `refund` its refund call on that payment, and `verifyWebhook` its signature check (most
 * sign `timestamp.body` with HMAC-SHA256 as WebhookSignature does) plus the decoding of its
 * event types onto succeeded / failed / refunded.
 */
export class PaymentProvider extends Context.Service<
  PaymentProvider,
  {
    readonly createIntent: (
      request: IntentRequest
    ) => Effect.Effect<PaymentIntent, ProviderUnreachable | ProviderRefused>
    readonly refund: (request: {
      readonly intentId: string
      readonly reason: string
    }) => Effect.Effect<Refund, ProviderUnreachable | ProviderRefused | NothingToRefund>
    /**
     * The event a webhook request carries, once its signature, its age (against `nowMillis`)
     * and its body are checked. The same event may arrive more than once: its `eventId` is
     * what the receiver records to apply it once.
     */
    readonly verifyWebhook: (
      headers: WebhookHeaders,
      rawBody: string | Uint8Array,
      nowMillis: number
    ) => Effect.Effect<PaymentEvent, BadSignature | StaleWebhook | MalformedWebhook>
  }
>()("mincommerce/payments/PaymentProvider") {
  /**
   * The development provider at `options.url` (DevelopmentProvider, here or elsewhere), called
   * through undici's pooled client: a checkout's call costs the node less than with `fetch`.
   */
  static readonly development = (options: DevelopmentClientOptions) =>
    Layer.effect(PaymentProvider, Effect.map(makeDevelopmentClient(options), PaymentProvider.of)).pipe(
      Layer.provide(NodeHttpClient.layerUndici)
    )

  /**
   * As the settings say: the development provider at PAYMENT_PROVIDER_URL, or, unset, one
   * started in this process that sends its webhooks to `webhookUrl` (the embedded demo).
   */
  static readonly fromSettings = (webhookUrl: string) =>
    Layer.unwrap(
      Effect.gen(function* () {
        const settings = yield* Settings.paymentSettings
        const { key, webhookSecret } = yield* paymentSecrets(settings)
        const client = (url: string) =>
          PaymentProvider.development({
            url,
            key,
            webhookSecret,
            toleranceSeconds: settings.webhookToleranceSeconds
          })
        if (Option.isSome(settings.providerUrl)) return client(settings.providerUrl.value)
        const inProcess = Layer.unwrap(
          Effect.gen(function* () {
            return client((yield* DevelopmentProvider).url)
          })
        )
        return inProcess.pipe(
          Layer.provideMerge(DevelopmentProvider.layer({ key, webhookSecret, webhookUrl }))
        )
      })
    )
}

/**
 * The provider key and webhook secret: as set, or derived from the deployment's shared secret,
 * so the embedded demo and a cluster of nodes agree with their development provider unasked.
 */
export const paymentSecrets = Effect.fnUntraced(function* (settings: Settings.PaymentSettings) {
  const shared = yield* sharedSecret
  const derived = (purpose: string) => createHmac("sha256", shared).update(purpose).digest()
  return {
    key: Option.getOrElse(settings.providerKey, () =>
      Redacted.make(derived("mincommerce payment provider key").toString("hex"))
    ),
    webhookSecret: Redacted.make(
      Option.match(settings.webhookSecret, {
        onNone: () => new Uint8Array(derived("mincommerce payment webhooks")),
        onSome: (secret) => new TextEncoder().encode(Redacted.value(secret))
      })
    )
  }
})

import { NodeHttpServer } from "@effect/platform-node"
import { ByteSize, Clock, Context, Data, Effect, Layer, Redacted, Schema } from "effect"
import {
  FetchHttpClient,
  HttpIncomingMessage,
  HttpRouter,
  HttpServer,
  type HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "effect/http"
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { createServer } from "node:http"
import { IntentRequest, type PaymentEvent, type PaymentEventKind } from "../domain/Payments.ts"
import { checkoutPage } from "./CheckoutPage.ts"
import {
  type IntentStatus,
  type IntentView,
  paths,
  RefundRequest,
  type SentEvent
} from "./DevelopmentProtocol.ts"
import { defaultDelivery, deliver, type DeliveryOptions } from "./WebhookDelivery.ts"

export interface DevelopmentProviderOptions {
  /** Where to listen; by default 127.0.0.1 on a free port. */
  readonly host?: string | undefined
  readonly port?: number | undefined
  /** The origin buyers' browsers reach it at, when not the address it listens on. */
  readonly publicUrl?: string | undefined
  /** The key the node must present on server-to-server calls. */
  readonly key: Redacted.Redacted<string>
  /** Signs every webhook (WebhookSignature). */
  readonly webhookSecret: Redacted.Redacted<Uint8Array>
  /** The node's webhook endpoint. */
  readonly webhookUrl: string
  readonly delivery?: Partial<DeliveryOptions> | undefined
}

interface Intent {
  readonly intentId: string
  readonly request: IntentRequest
  status: IntentStatus
  refund: { readonly refundId: string; readonly reason: string } | undefined
  readonly events: Array<SentEvent>
}

class WrongKey extends Data.TaggedError("WrongKey") {}
class UnknownIntent extends Data.TaggedError("UnknownIntent") {}
class NothingPaid extends Data.TaggedError("NothingPaid") {}

const IntentParams = Schema.Struct({ intentId: Schema.String })
const reference = (prefix: string) => `${prefix}_${randomBytes(16).toString("hex")}`
const digest = (text: string) => createHash("sha256").update(text).digest()
const problem = (status: number, error: string) => HttpServerResponse.jsonUnsafe({ error }, { status })

const viewOf = (intent: Intent): IntentView => ({
  intentId: intent.intentId,
  orderId: intent.request.orderId,
  amountCents: intent.request.amountCents,
  currency: intent.request.currency,
  status: intent.status,
  ...(intent.refund === undefined ? {} : { refund: intent.refund }),
  events: intent.events.map((event) => ({ ...event }))
})

/**
 * A payment provider for development and tests, run in the node's process or a test's: the
 * node creates intents over HTTP with its key, the buyer answers on a checkout page, and the
 * outcome comes back to the node as a signed webhook, retried until the node answers 2xx. It
 * keeps its intents in memory: a restart forgets them, as a sandbox may.
 */
export class DevelopmentProvider extends Context.Service<
  DevelopmentProvider,
  {
    /** Where it listens, e.g. `http://127.0.0.1:41234`: what `PaymentProvider.development` calls. */
    readonly url: string
  }
>()("mincommerce/payments/DevelopmentProvider") {
  static readonly layer = (options: DevelopmentProviderOptions) =>
    Layer.effect(DevelopmentProvider, make(options)).pipe(Layer.provide(FetchHttpClient.layer))
}

const make = Effect.fnUntraced(function* (options: DevelopmentProviderOptions) {
  const intents = new Map<string, Intent>()
  const intentOfOrder = new Map<string, Intent>()
  const scope = yield* Effect.scope
  const context = yield* Effect.context<never>()
  const send = deliver({
    url: options.webhookUrl,
    secret: options.webhookSecret,
    delivery: { ...defaultDelivery, ...options.delivery }
  })

  const server = yield* NodeHttpServer.make(() => createServer(), {
    host: options.host ?? "127.0.0.1",
    port: options.port ?? 0
  })
  const url = (options.publicUrl ?? HttpServer.formatAddress(server.address)).replace(/\/$/, "")

  const expectedKey = digest(`Bearer ${Redacted.value(options.key)}`)
  const authenticate = Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const given = request.headers.authorization
    // Digests of equal length, so the comparison takes the same time whatever was sent.
    if (given === undefined || !timingSafeEqual(digest(given), expectedKey)) return yield* new WrongKey()
  })

  const intentOfPath = Effect.gen(function* () {
    const { intentId } = yield* HttpRouter.schemaPathParams(IntentParams)
    const intent = intents.get(intentId)
    return intent === undefined ? yield* new UnknownIntent() : intent
  })

  // The event goes out on its own fiber, so the buyer's redirect never waits for the node.
  const announce = Effect.fnUntraced(function* (intent: Intent, kind: PaymentEventKind) {
    const event: PaymentEvent = {
      eventId: reference("evt"),
      intentId: intent.intentId,
      orderId: intent.request.orderId,
      kind,
      at: yield* Clock.currentTimeMillis
    }
    const sent: SentEvent = { eventId: event.eventId, kind, delivery: "sending", attempts: 0 }
    intent.events.push(sent)
    const index = intent.events.length - 1
    const delivery = send(event).pipe(
      Effect.tap(({ delivered, attempts }) =>
        Effect.sync(() => {
          intent.events[index] = { ...sent, delivery: delivered ? "delivered" : "abandoned", attempts }
        })
      )
    )
    yield* Effect.forkIn(delivery.pipe(Effect.provide(context)), scope)
  })

  const createIntent = Effect.gen(function* () {
    yield* authenticate
    const request = yield* HttpServerRequest.schemaBodyJson(IntentRequest)
    // One intent per order, so a node that lost the answer may simply ask again.
    const known = intentOfOrder.get(request.orderId)
    const intent = known ?? {
      intentId: reference("pi"),
      request,
      status: "pending",
      refund: undefined,
      events: []
    }
    intents.set(intent.intentId, intent)
    intentOfOrder.set(request.orderId, intent)
    return HttpServerResponse.jsonUnsafe(
      { intentId: intent.intentId, checkoutUrl: url + paths.checkout(intent.intentId) },
      { status: known === undefined ? 201 : 200 }
    )
  })

  const readIntent = Effect.gen(function* () {
    yield* authenticate
    return HttpServerResponse.jsonUnsafe(viewOf(yield* intentOfPath))
  })

  const refund = Effect.gen(function* () {
    yield* authenticate
    const intent = yield* intentOfPath
    const { reason } = yield* HttpServerRequest.schemaBodyJson(RefundRequest)
    if (intent.status === "succeeded") {
      intent.status = "refunded"
      intent.refund = { refundId: reference("re"), reason }
      yield* announce(intent, "refunded")
    }
    // Asked again, the same refund is the answer and no second event goes out.
    if (intent.refund === undefined) return yield* new NothingPaid()
    return HttpServerResponse.jsonUnsafe({ refundId: intent.refund.refundId, intentId: intent.intentId })
  })

  const page = Effect.gen(function* () {
    const intent = yield* intentOfPath
    const returnOrigin = new URL(intent.request.returnUrl).origin
    return HttpServerResponse.text(
      checkoutPage({
        ...viewOf(intent),
        returnUrl: intent.request.returnUrl,
        payAction: paths.answer(intent.intentId, "pay"),
        declineAction: paths.answer(intent.intentId, "decline")
      }),
      {
        contentType: "text/html; charset=utf-8",
        headers: {
          // Chromium applies form-action to the redirect that follows a post: the shop's
          // origin must be allowed, or the buyer would be stuck on this page.
          "content-security-policy": `default-src 'none'; style-src 'unsafe-inline'; form-action 'self' ${returnOrigin}; frame-ancestors 'none'`,
          "cache-control": "no-store"
        }
      }
    )
  })

  // Only a pending intent changes; pressing again (back button, double click) just goes back.
  const answer = (status: "succeeded" | "failed") =>
    Effect.gen(function* () {
      const intent = yield* intentOfPath
      if (intent.status === "pending") {
        intent.status = status
        yield* announce(intent, status)
      }
      return HttpServerResponse.redirect(intent.request.returnUrl, { status: 303 })
    })

  const answered = <R>(
    handler: Effect.Effect<
      HttpServerResponse.HttpServerResponse,
      WrongKey | UnknownIntent | NothingPaid | Schema.SchemaError | HttpServerError.HttpServerError,
      R
    >
  ) =>
    handler.pipe(
      Effect.catchTags({
        WrongKey: () => Effect.succeed(problem(401, "wrong or missing key")),
        UnknownIntent: () => Effect.succeed(problem(404, "no such intent")),
        NothingPaid: () => Effect.succeed(problem(409, "the intent was not paid: nothing to refund")),
        SchemaError: (error) => Effect.succeed(problem(400, error.message)),
        HttpServerError: () => Effect.succeed(problem(400, "unreadable request"))
      })
    )

  const routes = HttpRouter.addAll([
    HttpRouter.route("POST", "/intents", answered(createIntent)),
    HttpRouter.route("GET", "/intents/:intentId", answered(readIntent)),
    HttpRouter.route("POST", "/intents/:intentId/refund", answered(refund)),
    HttpRouter.route("GET", "/checkout/:intentId", answered(page)),
    HttpRouter.route("POST", "/checkout/:intentId/pay", answered(answer("succeeded"))),
    HttpRouter.route("POST", "/checkout/:intentId/decline", answered(answer("failed")))
  ])
  const app = yield* HttpRouter.toHttpEffect(routes)
  yield* server.serve(
    app.pipe(Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.kibibytes(16)))
  )
  return DevelopmentProvider.of({ url })
})

import { Effect, Layer } from "effect"
import { HttpRouter, HttpServer, HttpServerRequest } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { SaleWatch } from "../cluster/SaleWatch.ts"
import type { OrderId, SaleId } from "../domain/Ids.ts"
import type { PaymentEvent } from "../domain/Payments.ts"
import { PaymentProvider } from "../payments/PaymentProvider.ts"
import * as Settings from "../Settings.ts"
import { Checkout, type OrderRecord } from "../storage/Checkout.ts"
import { AdminRole } from "./AdminRole.ts"
import { Api, CurrentUser } from "./Api.ts"
import {
  OrderNotCancellable,
  OrderNotFound,
  OrderNotPayable,
  PaymentUnavailable,
  WebhookRejected,
  type ApiError
} from "./ApiErrors.ts"
import { errorAnswer, successAnswer, toServerResponse } from "./JsonAnswer.ts"

/** The node's own address for its provider's webhooks: loopback when it listens on every interface. */
const webhookUrlOf = (server: HttpServer.HttpServer["Service"]) => {
  const url = new URL(HttpServer.formatAddress(server.address))
  if (url.hostname === "0.0.0.0" || url.hostname === "[::]") url.hostname = "127.0.0.1"
  return new URL("/api/payments/webhook", url).toString()
}

/**
 * The payment provider, as the settings say: a development provider elsewhere, or one in this
 * process that sends its webhooks to this node's server (known once it listens).
 */
export const PaymentsLive = Layer.unwrap(
  Effect.map(HttpServer.HttpServer, (server) => PaymentProvider.fromSettings(webhookUrlOf(server)))
)

const iso = (millis: number | null) => (millis === null ? null : new Date(millis).toISOString())

const detail = (order: OrderRecord, currency: string) => ({
  orderId: order.orderId,
  saleId: order.saleId,
  userId: order.userId,
  status: order.status,
  priceCents: order.priceCents,
  currency,
  createdAt: new Date(order.createdAt).toISOString(),
  payBy: iso(order.payBy),
  paidAt: iso(order.paidAt)
})

const orderNotFound = (orderId: OrderId) =>
  new OrderNotFound({
    error: { code: "order_not_found", message: "No such order of yours", details: { orderId } }
  })

const notPayable = (order: OrderRecord) =>
  new OrderNotPayable({
    error: {
      code: "order_not_payable",
      message:
        order.status === "reserved"
          ? "The time to pay for this order has passed"
          : `The order is ${order.status}: there is nothing to pay`,
      details: { orderId: order.orderId, status: order.status, payBy: iso(order.payBy) }
    }
  })

const notCancellable = (order: OrderRecord) =>
  new OrderNotCancellable({
    error: {
      code: "order_not_cancellable",
      message:
        order.status === "reserved"
          ? "The hold has ended already"
          : `The order is ${order.status}: only a held, unpaid order can be cancelled`,
      details: { orderId: order.orderId, status: order.status }
    }
  })

const paymentUnavailable = new PaymentUnavailable({
  error: {
    code: "payment_unavailable",
    message: "The payment provider did not answer; nothing was charged, try again",
    details: { retryAfterSeconds: 2 }
  }
})

// Where the provider sends the buyer's browser back: the storefront the buyer came from.
const returnUrlOf = (request: HttpServerRequest.HttpServerRequest, orderId: OrderId) => {
  const origin = request.headers["origin"]
  const host = request.headers["host"]
  const base =
    origin !== undefined && /^https?:\/\/[^/]+$/.test(origin)
      ? origin
      : `http://${host !== undefined && /^[\w.:[\]-]+$/.test(host) ? host : "127.0.0.1"}`
  return `${base}/?order=${orderId}`
}

export const OrdersHandlers = HttpApiBuilder.group(Api, "orders", (handlers) =>
  Effect.gen(function* () {
    const checkout = yield* Checkout
    const provider = yield* PaymentProvider
    const role = yield* AdminRole
    const watch = yield* SaleWatch
    const { currency } = yield* Settings.paymentSettings

    // An order is shown to its buyer and to admins; to anyone else it does not exist.
    const visible = Effect.fnUntraced(function* (orderId: OrderId, ownerOnly: boolean) {
      const user = yield* CurrentUser
      const order = yield* checkout.order(orderId).pipe(Effect.orDie)
      if (order === undefined) return yield* orderNotFound(orderId)
      if (order.userId === user.userId) return order
      if (!ownerOnly && (yield* role.isAdmin(user))) return order
      return yield* orderNotFound(orderId)
    })

    const pay = Effect.fnUntraced(function* (orderId: OrderId) {
      const order = yield* visible(orderId, true)
      if (order.status !== "reserved" || order.payBy === null || order.payBy <= Date.now())
        return yield* notPayable(order)
      const request = yield* HttpServerRequest.HttpServerRequest
      // The amount and currency are the sale's, as stored: never the client's.
      const intent = yield* provider
        .createIntent({
          orderId,
          amountCents: order.priceCents,
          currency,
          buyer: order.userId,
          returnUrl: returnUrlOf(request, orderId)
        })
        .pipe(
          Effect.tapError((error) => Effect.logWarning("payment intent not created", { orderId, error })),
          Effect.catchTags({
            ProviderUnreachable: () => Effect.fail(paymentUnavailable),
            ProviderRefused: () => Effect.fail(paymentUnavailable)
          })
        )
      return { orderId, checkoutUrl: intent.checkoutUrl }
    })

    const cancel = Effect.fnUntraced(function* (orderId: OrderId) {
      const user = yield* CurrentUser
      const result = yield* checkout.cancel(orderId, user.userId).pipe(Effect.orDie)
      if (result._tag === "NotFound") return yield* orderNotFound(orderId)
      if (result._tag === "NotCancellable") return yield* notCancellable(result.order)
      // The stock row has the unit back; the owner, if here, puts it back on sale at once.
      watch.settled(result.order.saleId, orderId, "cancelled")
      return detail(result.order, currency)
    })

    return handlers
      .handle("get", ({ params }) =>
        Effect.map(visible(params.orderId, false), (order) => detail(order, currency))
      )
      .handle("pay", ({ params }) => pay(params.orderId))
      .handle("cancel", ({ params }) => cancel(params.orderId))
  })
)

const rejected = (code: string, message: string) => new WebhookRejected({ error: { code, message } })
const answer = (error: ApiError) => toServerResponse(errorAnswer(error))

/**
 * Gives back every payment of the order that found its hold ended. Until that is done the
 * webhook is not answered 2xx, so the provider's next delivery tries again.
 */
const refundDue = (checkout: Checkout["Service"], provider: PaymentProvider["Service"], orderId: OrderId) =>
  Effect.gen(function* () {
    for (const due of yield* checkout.refundsDue(orderId)) {
      const refund = yield* provider.refund({ intentId: due.intentId, reason: due.reason }).pipe(
        Effect.map((made) => made.refundId),
        // Never paid after all (declined): nothing to give back, nothing to try again.
        Effect.catchTag("NothingToRefund", () => Effect.succeed("none"))
      )
      yield* checkout.refunded(due.intentId, refund)
      yield* Effect.logInfo("late payment refunded", { orderId, intentId: due.intentId, reason: due.reason })
    }
  })

const appliedName = {
  Paid: "paid",
  Late: "refunded_late",
  Duplicate: "duplicate",
  Recorded: "recorded"
} as const

/**
 * The provider's webhook: verified on its raw bytes, applied once per event id in one
 * transaction, and answered 2xx only after that commit (and any refund it calls for).
 */
export const WebhookRoute = Layer.unwrap(
  Effect.gen(function* () {
    const checkout = yield* Checkout
    const provider = yield* PaymentProvider
    const watch = yield* SaleWatch
    const settle = (saleId: SaleId, orderId: OrderId) => watch.settled(saleId, orderId, "paid")
    const handle = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const body = new Uint8Array(yield* request.arrayBuffer)
      const verified = yield* Effect.result(provider.verifyWebhook(request.headers, body, Date.now()))
      if (verified._tag === "Failure") {
        const error = verified.failure
        return answer(
          error._tag === "BadSignature"
            ? rejected("bad_signature", "The webhook's signature does not verify")
            : error._tag === "StaleWebhook"
              ? rejected("stale_webhook", "The webhook was signed too long ago")
              : rejected("malformed_webhook", `The webhook is not an event: ${error.problem}`)
        )
      }
      const event: PaymentEvent = verified.success
      const applied = yield* checkout.apply(event)
      if (applied._tag === "Paid") settle(applied.saleId, event.orderId)
      // A payment applied owes nothing back; a late one does, and a repeat may still (its
      // refund failed the first time).
      if (applied._tag === "Late" || applied._tag === "Duplicate")
        yield* refundDue(checkout, provider, event.orderId)
      return toServerResponse(successAnswer(200, { received: true, applied: appliedName[applied._tag] }))
    }).pipe(
      Effect.catchCause((cause) =>
        Effect.as(
          Effect.logWarning("webhook not applied; the provider will deliver it again", cause),
          answer(paymentUnavailable)
        )
      )
    )
    return HttpRouter.add("POST", "/api/payments/webhook", handle)
  })
)

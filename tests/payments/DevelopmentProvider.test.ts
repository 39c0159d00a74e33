import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer, Redacted, Schedule, Schema } from "effect"
import { randomBytes, randomUUID } from "node:crypto"
import type { OrderId, UserId } from "../../src/domain/Ids.ts"
import type { IntentRequest } from "../../src/domain/Payments.ts"
import { IntentView, paths } from "../../src/payments/DevelopmentProtocol.ts"
import { DevelopmentProvider } from "../../src/payments/DevelopmentProvider.ts"
import { PaymentProvider } from "../../src/payments/PaymentProvider.ts"
import { sign, signatureHeader } from "../../src/payments/WebhookSignature.ts"
import { webhookReceiver } from "../support/WebhookReceiver.ts"

/**
 * The development provider over real loopback HTTP: the node's client creates intents with its
 * key, a "browser" (fetch) opens the checkout page and presses a button, and the signed webhook
 * lands at a stand-in for the node's endpoint, where the client's verifier reads it.
 */

const returnUrl = "http://127.0.0.1:3999/orders/42?from=checkout"

const intentRequest = (overrides: Partial<IntentRequest> = {}): IntentRequest => ({
  orderId: randomUUID() as OrderId,
  amountCents: 1_250,
  currency: "EUR",
  buyer: randomUUID() as UserId,
  returnUrl,
  ...overrides
})

/** A provider, the node's client of it, and a receiver answering `answer(attempt)`. */
const setup = (options: { readonly answer?: (attempt: number) => number; readonly attempts?: number } = {}) =>
  Effect.gen(function* () {
    const receiver = yield* webhookReceiver(options.answer)
    const key = Redacted.make(randomBytes(16).toString("hex"))
    const webhookSecret = Redacted.make(new Uint8Array(randomBytes(32)))
    const provider = Context.get(
      yield* Layer.build(
        DevelopmentProvider.layer({
          key,
          webhookSecret,
          webhookUrl: receiver.url,
          delivery: { attempts: options.attempts ?? 5, firstDelay: "20 millis", maxDelay: "200 millis" }
        })
      ),
      DevelopmentProvider
    )
    const payments = Context.get(
      yield* Layer.build(
        PaymentProvider.development({ url: provider.url, key, webhookSecret, toleranceSeconds: 300 })
      ),
      PaymentProvider
    )
    /** The intent as the provider keeps it, read with the node's key. */
    const intent = (intentId: string) =>
      Effect.promise(() =>
        fetch(provider.url + paths.intent(intentId), {
          headers: { authorization: `Bearer ${Redacted.value(key)}` }
        }).then((response) => response.json())
      ).pipe(Effect.flatMap(Schema.decodeUnknownEffect(IntentView)), Effect.orDie)
    return { receiver, provider, payments, key, webhookSecret, intent }
  })

/** What a browser does: open the checkout page, then press one of its buttons. */
const openCheckout = (checkoutUrl: string) =>
  Effect.promise(async () => {
    const response = await fetch(checkoutUrl)
    return {
      status: response.status,
      html: await response.text(),
      csp: response.headers.get("content-security-policy")
    }
  })

const press = (checkoutUrl: string, html: string, button: "Pay" | "Decline") =>
  Effect.promise(async () => {
    const forms = [...html.matchAll(/<form method="post" action="([^"]+)"><button[^>]*>([^<]+)</g)]
    const action = forms.find((form) => form[2] === button)?.[1]
    if (action === undefined) throw new Error(`no ${button} button on the page`)
    const response = await fetch(new URL(action, checkoutUrl), { method: "POST", redirect: "manual" })
    return { status: response.status, location: response.headers.get("location") }
  })

describe("the development provider", () => {
  it.live(
    "create an intent, open the checkout page, press Pay: a signed `succeeded` webhook for that order",
    () =>
      Effect.gen(function* () {
        const { receiver, payments, intent } = yield* setup()
        const request = intentRequest()
        const created = yield* payments.createIntent(request)
        assert.match(created.intentId, /^pi_[0-9a-f]{32}$/)

        const page = yield* openCheckout(created.checkoutUrl)
        assert.strictEqual(page.status, 200)
        assert.include(page.html, "€12.50")
        assert.include(page.html, request.orderId)
        assert.include(page.csp ?? "", "form-action 'self' http://127.0.0.1:3999")

        const pressed = yield* press(created.checkoutUrl, page.html, "Pay")
        assert.deepStrictEqual(pressed, { status: 303, location: returnUrl })

        const delivery = yield* receiver.next
        assert.strictEqual(delivery.headers["content-type"], "application/json")
        const event = yield* payments.verifyWebhook(delivery.headers, delivery.body, Date.now())
        assert.deepInclude(event, { intentId: created.intentId, orderId: request.orderId, kind: "succeeded" })
        assert.match(event.eventId, /^evt_/)

        // Pressing again (a double click, the back button) changes nothing and sends nothing.
        const again = yield* press(created.checkoutUrl, page.html, "Pay")
        assert.strictEqual(again.status, 303)
        const view = yield* intent(created.intentId)
        assert.strictEqual(view.status, "succeeded")
        assert.deepStrictEqual(
          view.events.map((sent) => sent.kind),
          ["succeeded"]
        )
        assert.include((yield* openCheckout(created.checkoutUrl)).html, "This payment was made.")
      })
  )

  it.live("Decline: a `failed` webhook; a Pay pressed afterwards changes nothing", () =>
    Effect.gen(function* () {
      const { receiver, payments, intent } = yield* setup()
      const request = intentRequest({ amountCents: 500, currency: "JPY" })
      const created = yield* payments.createIntent(request)
      const page = yield* openCheckout(created.checkoutUrl)
      assert.include(page.html, "¥500")
      assert.deepStrictEqual(yield* press(created.checkoutUrl, page.html, "Decline"), {
        status: 303,
        location: returnUrl
      })
      const delivery = yield* receiver.next
      const event = yield* payments.verifyWebhook(delivery.headers, delivery.body, Date.now())
      assert.deepInclude(event, { intentId: created.intentId, orderId: request.orderId, kind: "failed" })

      yield* press(created.checkoutUrl, page.html, "Pay")
      const view = yield* intent(created.intentId)
      assert.strictEqual(view.status, "failed")
      assert.deepStrictEqual(
        view.events.map((sent) => sent.kind),
        ["failed"]
      )
      assert.include((yield* openCheckout(created.checkoutUrl)).html, "This payment was declined.")
    })
  )

  it.live("refund: recorded at the provider, announced by a `refunded` webhook, once", () =>
    Effect.gen(function* () {
      const { receiver, payments, intent } = yield* setup()
      const request = intentRequest()
      const created = yield* payments.createIntent(request)
      yield* press(created.checkoutUrl, (yield* openCheckout(created.checkoutUrl)).html, "Pay")
      yield* receiver.next

      const refund = yield* payments.refund({
        intentId: created.intentId,
        reason: "paid after the hold expired"
      })
      assert.strictEqual(refund.intentId, created.intentId)
      assert.match(refund.refundId, /^re_/)
      const delivery = yield* receiver.next
      const event = yield* payments.verifyWebhook(delivery.headers, delivery.body, Date.now())
      assert.deepInclude(event, { intentId: created.intentId, orderId: request.orderId, kind: "refunded" })

      // Asked again (the node lost the answer): the same refund, and no second event.
      const again = yield* payments.refund({
        intentId: created.intentId,
        reason: "paid after the hold expired"
      })
      assert.deepStrictEqual(again, refund)
      const view = yield* intent(created.intentId)
      assert.strictEqual(view.status, "refunded")
      assert.deepStrictEqual(view.refund, {
        refundId: refund.refundId,
        reason: "paid after the hold expired"
      })
      assert.deepStrictEqual(
        view.events.map((sent) => sent.kind),
        ["succeeded", "refunded"]
      )
    })
  )

  it.live("nothing to refund on a declined or pending intent; an unknown intent is refused", () =>
    Effect.gen(function* () {
      const { payments, intent } = yield* setup()
      const pending = yield* payments.createIntent(intentRequest())
      const declined = yield* payments.createIntent(intentRequest())
      yield* press(declined.checkoutUrl, (yield* openCheckout(declined.checkoutUrl)).html, "Decline")
      for (const { intentId } of [pending, declined]) {
        const error = yield* Effect.flip(payments.refund({ intentId, reason: "late" }))
        assert.deepStrictEqual(error._tag, "NothingToRefund")
      }
      assert.deepStrictEqual((yield* intent(pending.intentId)).events, [])
      const unknown = yield* Effect.flip(payments.refund({ intentId: "pi_nope", reason: "late" }))
      assert.deepInclude(unknown, { _tag: "ProviderRefused", status: 404 })
    })
  )

  it.live("the webhook is retried until the node answers 2xx: the same event each time, validly signed", () =>
    Effect.gen(function* () {
      const { receiver, payments, intent } = yield* setup({ answer: (attempt) => (attempt <= 2 ? 503 : 200) })
      const created = yield* payments.createIntent(intentRequest())
      yield* press(created.checkoutUrl, (yield* openCheckout(created.checkoutUrl)).html, "Pay")
      const deliveries = [yield* receiver.next, yield* receiver.next, yield* receiver.next]
      assert.deepStrictEqual(
        deliveries.map((delivery) => delivery.status),
        [503, 503, 200]
      )
      const events = yield* Effect.forEach(deliveries, (delivery) =>
        payments.verifyWebhook(delivery.headers, delivery.body, Date.now())
      )
      assert.strictEqual(new Set(events.map((event) => event.eventId)).size, 1)
      const sent = yield* intent(created.intentId).pipe(
        Effect.map((view) => view.events[0]),
        Effect.repeat({
          until: (event) => event?.delivery === "delivered",
          schedule: Schedule.spaced("20 millis")
        }),
        Effect.timeout("5 seconds")
      )
      assert.deepInclude(sent, { delivery: "delivered", attempts: 3 })
    })
  )

  it.live("the retries are bounded: a node that never answers 2xx gets the set number of attempts", () =>
    Effect.gen(function* () {
      const { receiver, payments, intent } = yield* setup({ answer: () => 500, attempts: 3 })
      const created = yield* payments.createIntent(intentRequest())
      yield* press(created.checkoutUrl, (yield* openCheckout(created.checkoutUrl)).html, "Decline")
      const sent = yield* intent(created.intentId).pipe(
        Effect.map((view) => view.events[0]),
        Effect.repeat({
          until: (event) => event?.delivery === "abandoned",
          schedule: Schedule.spaced("20 millis")
        }),
        Effect.timeout("5 seconds")
      )
      assert.deepInclude(sent, { delivery: "abandoned", attempts: 3 })
      assert.strictEqual(receiver.count(), 3)
    })
  )

  it.live("server-to-server calls need the key; an order has one intent; a bad amount is refused", () =>
    Effect.gen(function* () {
      const { provider, payments, webhookSecret } = yield* setup()
      const request = intentRequest()
      const first = yield* payments.createIntent(request)
      assert.deepStrictEqual(yield* payments.createIntent(request), first)

      const stranger = Context.get(
        yield* Layer.build(
          PaymentProvider.development({
            url: provider.url,
            key: Redacted.make("not the key"),
            webhookSecret,
            toleranceSeconds: 300
          })
        ),
        PaymentProvider
      )
      const refused = yield* Effect.flip(stranger.createIntent(intentRequest()))
      assert.deepInclude(refused, { _tag: "ProviderRefused", status: 401 })
      const noRefund = yield* Effect.flip(stranger.refund({ intentId: first.intentId, reason: "theft" }))
      assert.deepInclude(noRefund, { _tag: "ProviderRefused", status: 401 })

      for (const bad of [{ amountCents: 0 }, { amountCents: 12.5 }, { currency: "eur" }]) {
        const error = yield* Effect.flip(payments.createIntent(intentRequest(bad)))
        assert.deepInclude(error, { _tag: "ProviderRefused", status: 400 })
      }
    })
  )

  it.live(
    "verifyWebhook: a forged body, an old replay, a signed body that is no event: each its own error",
    () =>
      Effect.gen(function* () {
        const { receiver, payments, webhookSecret } = yield* setup()
        const created = yield* payments.createIntent(intentRequest())
        yield* press(created.checkoutUrl, (yield* openCheckout(created.checkoutUrl)).html, "Pay")
        const delivery = yield* receiver.next
        const received = Date.now()

        const forged = Buffer.from(delivery.body.toString("utf8").replace("succeeded", "failed"))
        const bad = yield* Effect.flip(payments.verifyWebhook(delivery.headers, forged, received))
        assert.strictEqual(bad._tag, "BadSignature")
        const unsigned = yield* Effect.flip(payments.verifyWebhook({}, delivery.body, received))
        assert.strictEqual(unsigned._tag, "BadSignature")

        const replayed = yield* Effect.flip(
          payments.verifyWebhook(delivery.headers, delivery.body, received + 301_000)
        )
        assert.strictEqual(replayed._tag, "StaleWebhook")

        const secret = Redacted.value(webhookSecret)
        for (const body of [
          "not json",
          "{}",
          JSON.stringify({ eventId: "evt_1", intentId: "pi_1", orderId: "42", kind: "succeeded", at: 1 }),
          JSON.stringify({
            eventId: "evt_1",
            intentId: "pi_1",
            orderId: randomUUID(),
            kind: "chargeback",
            at: 1
          })
        ]) {
          const headers = { [signatureHeader]: sign(secret, received, body) }
          const malformed = yield* Effect.flip(payments.verifyWebhook(headers, body, received))
          assert.strictEqual(malformed._tag, "MalformedWebhook")
        }
      })
  )

  it.live(
    "from the settings: a provider started in-process, its key and secret derived from the shared secret",
    () =>
      Effect.gen(function* () {
        const receiver = yield* webhookReceiver()
        const settings = ConfigProvider.layerAdd(
          ConfigProvider.fromEnvRecord({ JWT_SECRET: randomBytes(32).toString("hex") }),
          { asPrimary: true }
        )
        const payments = Context.get(
          yield* Layer.build(PaymentProvider.fromSettings(receiver.url).pipe(Layer.provide(settings))),
          PaymentProvider
        )
        const request = intentRequest()
        const created = yield* payments.createIntent(request)
        yield* press(created.checkoutUrl, (yield* openCheckout(created.checkoutUrl)).html, "Pay")
        const delivery = yield* receiver.next
        const event = yield* payments.verifyWebhook(delivery.headers, delivery.body, Date.now())
        assert.deepInclude(event, { orderId: request.orderId, kind: "succeeded" })
      })
  )
})

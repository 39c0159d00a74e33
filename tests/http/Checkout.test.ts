import { assert, layer } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { randomUUID } from "node:crypto"
import { SqlClient } from "effect/sql"
import type { OrderId, SaleId } from "../../src/domain/Ids.ts"
import { paymentSecrets } from "../../src/payments/PaymentProvider.ts"
import { sign, signatureHeader } from "../../src/payments/WebhookSignature.ts"
import * as Settings from "../../src/Settings.ts"
import { adminToken, call, expectError } from "../support/ApiCalls.ts"
import { ApiNode, signedInBuyers } from "../support/ApiNode.ts"

/**
 * Checkout over real HTTP: a hold sale's orders are reserved until paid through the development
 * provider (its checkout page pressed like a browser would, its signed webhook back to the
 * node), expire at their deadline, can be cancelled, and a payment that comes too late is
 * refunded. Every scenario ends with PostgreSQL's rows held against what the buyers were told.
 */

const buyers = (count: number) =>
  signedInBuyers(Array.from({ length: count }, () => `buyer-${randomUUID()}@example.test`))

const holdSale = (
  token: string,
  options: { stock: number; holdSeconds: number; priceCents?: number; repurchaseAfterLapse?: boolean }
) =>
  Effect.gen(function* () {
    const product = yield* call("POST", "/api/admin/products", { token, body: { name: "Sneaker drop" } })
    const now = Date.now()
    const created = yield* call("POST", "/api/admin/sales", {
      token,
      body: {
        productId: product.body.productId,
        priceCents: options.priceCents ?? 1_250,
        stock: options.stock,
        startsAt: new Date(now - 1_000).toISOString(),
        endsAt: new Date(now + 3_600_000).toISOString(),
        holdSeconds: options.holdSeconds,
        repurchaseAfterLapse: options.repurchaseAfterLapse ?? false
      }
    })
    assert.strictEqual(created.status, 201, JSON.stringify(created.body))
    assert.strictEqual(created.body.holdSeconds, options.holdSeconds)
    return created.body.saleId as SaleId
  })

const buy = (saleId: SaleId, token: string) => call("POST", `/api/sales/${saleId}/purchases`, { token })

/** The order as its buyer reads it, polled until `until` holds (or 15 s pass). */
const orderWhen = (orderId: OrderId, token: string, until: (status: string) => boolean) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 15_000
    while (true) {
      const order = yield* call("GET", `/api/orders/${orderId}`, { token })
      assert.strictEqual(order.status, 200, JSON.stringify(order.body))
      if (until(order.body.status) || Date.now() > deadline) return order.body
      yield* Effect.sleep("100 millis")
    }
  })

/** The buyer's browser at the provider: opens the checkout page and presses Pay (or Decline). */
const pressAtProvider = (checkoutUrl: string, button: "pay" | "decline") =>
  Effect.promise(async () => {
    const page = await fetch(checkoutUrl)
    const html = await page.text()
    const pressed = await fetch(`${checkoutUrl}/${button}`, { method: "POST", redirect: "manual" })
    return {
      pageStatus: page.status,
      html,
      status: pressed.status,
      location: pressed.headers.get("location")
    }
  })

/** Checks a sale's rows: live orders within stock, one per buyer, the stock row agreeing. */
const checkSale = (saleId: SaleId) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [stock] = yield* sql<{ total: number; available: number }>`
      SELECT total, available FROM stocks WHERE sale_id = ${saleId}`
    const [live] = yield* sql<{ n: number; buyers: number }>`
      SELECT count(*)::int AS n, count(DISTINCT user_id)::int AS buyers FROM orders
      WHERE sale_id = ${saleId} AND status IN ('reserved', 'paid')`
    const [paidLate] = yield* sql<{ n: number }>`
      SELECT count(*)::int AS n FROM orders WHERE sale_id = ${saleId}
        AND status IN ('expired', 'cancelled', 'refunded') AND paid_at IS NOT NULL`
    assert.isAtMost(live!.n, stock!.total, "reserved + paid never exceed the stock")
    assert.strictEqual(live!.buyers, live!.n, "one live order per buyer")
    assert.strictEqual(stock!.available, stock!.total - live!.n, "the stock row agrees with the live orders")
    assert.strictEqual(paidLate!.n, 0, "an order that ended unpaid is never paid")
  })

const rowOf = (orderId: OrderId) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const [row] = yield* sql<{ status: string; paidAt: Date | null; intent: string | null }>`
      SELECT status, paid_at AS "paidAt", payment_intent AS intent FROM orders WHERE id = ${orderId}`
    return row
  })

/** A webhook as the provider would send it, signed with the node's webhook secret. */
const webhook = (event: object, options: { signedAt?: number; secret?: Uint8Array; raw?: string } = {}) =>
  Effect.gen(function* () {
    const { webhookSecret } = yield* paymentSecrets(yield* Settings.paymentSettings)
    const body = options.raw ?? JSON.stringify(event)
    const signature = sign(
      options.secret ?? Redacted.value(webhookSecret),
      options.signedAt ?? Date.now(),
      body
    )
    return yield* call("POST", "/api/payments/webhook", {
      raw: body,
      headers: { [signatureHeader]: signature }
    })
  })

layer(ApiNode, { timeout: 120_000, excludeTestServices: true })("checkout over HTTP", (it) => {
  it.effect("holds a purchase until it is paid at the provider, and then the order is final", () =>
    Effect.gen(function* () {
      const token = yield* adminToken
      const product = yield* call("POST", "/api/admin/products", { token, body: { name: "Free sample" } })
      const now = Date.now()
      const base = {
        productId: product.body.productId,
        priceCents: 0,
        stock: 5,
        startsAt: new Date(now - 1_000).toISOString(),
        endsAt: new Date(now + 3_600_000).toISOString()
      }
      // A hold has to collect something, and is bounded.
      expectError(
        yield* call("POST", "/api/admin/sales", { token, body: { ...base, holdSeconds: 30 } }),
        400,
        "hold_needs_price"
      )
      expectError(
        yield* call("POST", "/api/admin/sales", {
          token,
          body: { ...base, priceCents: 100, holdSeconds: 4_000 }
        }),
        400,
        "invalid_request"
      )

      const saleId = yield* holdSale(token, { stock: 2, holdSeconds: 30 })
      const [buyer, stranger] = yield* buyers(2)
      const before = Date.now()
      const bought = yield* buy(saleId, buyer!.token)
      assert.strictEqual(bought.status, 201, JSON.stringify(bought.body))
      assert.strictEqual(bought.body.status, "reserved")
      const payBy = Date.parse(bought.body.payBy)
      assert.isAtLeast(payBy, before + 29_000)
      assert.isAtMost(payBy, Date.now() + 30_000)
      const orderId = bought.body.orderId as OrderId
      // A repeat is told the same hold, with its deadline.
      const again = yield* buy(saleId, buyer!.token)
      assert.strictEqual(again.status, 200)
      assert.deepStrictEqual(
        [again.body.orderId, again.body.status, again.body.payBy],
        [orderId, "reserved", bought.body.payBy]
      )

      const order = yield* call("GET", `/api/orders/${orderId}`, { token: buyer!.token })
      assert.strictEqual(order.status, 200)
      assert.deepInclude(order.body, {
        orderId,
        saleId,
        status: "reserved",
        priceCents: 1_250,
        currency: "USD",
        paidAt: null
      })
      assert.strictEqual(order.body.payBy, bought.body.payBy)
      // Nobody else sees it, or pays or cancels it; an admin may read it.
      expectError(
        yield* call("GET", `/api/orders/${orderId}`, { token: stranger!.token }),
        404,
        "order_not_found"
      )
      expectError(
        yield* call("POST", `/api/orders/${orderId}/pay`, { token: stranger!.token }),
        404,
        "order_not_found"
      )
      expectError(
        yield* call("POST", `/api/orders/${orderId}/cancel`, { token: stranger!.token }),
        404,
        "order_not_found"
      )
      assert.strictEqual((yield* call("GET", `/api/orders/${orderId}`, { token })).status, 200)
      expectError(yield* call("GET", `/api/orders/not-an-id`, { token }), 400, "invalid_request")

      const checkout = yield* call("POST", `/api/orders/${orderId}/pay`, {
        token: buyer!.token,
        headers: { origin: "http://shop.test:8080" }
      })
      assert.strictEqual(checkout.status, 200, JSON.stringify(checkout.body))
      const pressed = yield* pressAtProvider(checkout.body.checkoutUrl as string, "pay")
      assert.strictEqual(pressed.pageStatus, 200)
      assert.include(pressed.html, "12.50")
      assert.strictEqual(pressed.status, 303)
      assert.strictEqual(pressed.location, `http://shop.test:8080/?order=${orderId}`)

      const paid = yield* orderWhen(orderId, buyer!.token, (status) => status !== "reserved")
      assert.strictEqual(paid.status, "paid")
      assert.isNotNull(paid.paidAt)
      const row = yield* rowOf(orderId)
      assert.strictEqual(row!.status, "paid")
      assert.match(row!.intent ?? "", /^pi_/)
      // Paid is final: nothing more to pay, nothing to cancel; a repeat is told "purchased".
      expectError(
        yield* call("POST", `/api/orders/${orderId}/pay`, { token: buyer!.token }),
        409,
        "order_not_payable"
      )
      expectError(
        yield* call("POST", `/api/orders/${orderId}/cancel`, { token: buyer!.token }),
        409,
        "order_not_cancellable"
      )
      const repeat = yield* buy(saleId, buyer!.token)
      assert.deepStrictEqual(
        [repeat.status, repeat.body.status, repeat.body.payBy],
        [200, "purchased", undefined]
      )

      const stats = yield* call("GET", `/api/admin/sales/${saleId}/stats`, { token })
      assert.deepStrictEqual(stats.body.orders, {
        reserved: 0,
        paid: 1,
        expired: 0,
        cancelled: 0,
        refunded: 0
      })
      assert.strictEqual(stats.body.paidConversion, 1)
      yield* checkSale(saleId)
    })
  )

  it.effect(
    "expires an unpaid hold at its deadline: the unit goes back on sale, and its buyer has had theirs",
    () =>
      Effect.gen(function* () {
        const token = yield* adminToken
        const saleId = yield* holdSale(token, { stock: 1, holdSeconds: 2 })
        const [first, second] = yield* buyers(2)
        const held = yield* buy(saleId, first!.token)
        assert.strictEqual(held.status, 201)
        const orderId = held.body.orderId as OrderId
        expectError(yield* buy(saleId, second!.token), 409, "sold_out")

        const expired = yield* orderWhen(orderId, first!.token, (status) => status !== "reserved")
        assert.strictEqual(expired.status, "expired")
        const endedAt = Date.now()
        assert.isAtMost(
          endedAt - Date.parse(held.body.payBy),
          3_000,
          "expired within a second or so of payBy"
        )
        // Paying now is refused before any money moves.
        expectError(
          yield* call("POST", `/api/orders/${orderId}/pay`, { token: first!.token }),
          409,
          "order_not_payable"
        )

        const sale = yield* call("GET", `/api/sales/${saleId}`)
        assert.strictEqual(sale.body.remaining, 1, "the unit is back")
        const resold = yield* buy(saleId, second!.token)
        assert.strictEqual(resold.status, 201, JSON.stringify(resold.body))
        assert.strictEqual(resold.body.status, "reserved")
        // One unit per buyer per sale: the lapsed buyer is told their order again.
        const lapsed = yield* buy(saleId, first!.token)
        assert.deepStrictEqual(
          [lapsed.status, lapsed.body.orderId, lapsed.body.status, lapsed.body.payBy],
          [200, orderId, "lapsed", undefined]
        )
        assert.strictEqual((yield* rowOf(orderId))!.status, "expired")
        const stats = yield* call("GET", `/api/admin/sales/${saleId}/stats`, { token })
        assert.deepStrictEqual(stats.body.orders, {
          reserved: 1,
          paid: 0,
          expired: 1,
          cancelled: 0,
          refunded: 0
        })
        assert.strictEqual(stats.body.paidConversion, 0)
        yield* checkSale(saleId)
      })
  )

  it.effect("a buyer who cancels gives the unit back at once", () =>
    Effect.gen(function* () {
      const token = yield* adminToken
      const saleId = yield* holdSale(token, { stock: 1, holdSeconds: 600 })
      const [first, second] = yield* buyers(2)
      const held = yield* buy(saleId, first!.token)
      const orderId = held.body.orderId as OrderId
      expectError(yield* buy(saleId, second!.token), 409, "sold_out")
      const cancelled = yield* call("POST", `/api/orders/${orderId}/cancel`, { token: first!.token })
      assert.strictEqual(cancelled.status, 200, JSON.stringify(cancelled.body))
      assert.strictEqual(cancelled.body.status, "cancelled")
      expectError(
        yield* call("POST", `/api/orders/${orderId}/cancel`, { token: first!.token }),
        409,
        "order_not_cancellable"
      )
      const sale = yield* call("GET", `/api/sales/${saleId}`)
      assert.strictEqual(sale.body.remaining, 1)
      // One unit per buyer per sale: the buyer who cancelled is told that order again.
      const again = yield* buy(saleId, first!.token)
      assert.deepStrictEqual(
        [again.status, again.body.orderId, again.body.status],
        [200, orderId, "lapsed"],
        JSON.stringify(again.body)
      )
      const resold = yield* buy(saleId, second!.token)
      assert.strictEqual(resold.status, 201, JSON.stringify(resold.body))
      yield* checkSale(saleId)
    })
  )

  it.effect(
    "a sale that allows it lets a buyer whose hold lapsed buy again: a new order, the old one kept",
    () =>
      Effect.gen(function* () {
        const token = yield* adminToken
        const saleId = yield* holdSale(token, { stock: 2, holdSeconds: 600, repurchaseAfterLapse: true })
        const [buyer] = yield* buyers(1)
        const first = (yield* buy(saleId, buyer!.token)).body.orderId as OrderId
        assert.strictEqual(
          (yield* call("POST", `/api/orders/${first}/cancel`, { token: buyer!.token })).status,
          200
        )
        const again = yield* buy(saleId, buyer!.token)
        assert.strictEqual(again.status, 201, JSON.stringify(again.body))
        assert.notStrictEqual(again.body.orderId, first)
        assert.strictEqual((yield* rowOf(first))!.status, "cancelled")
        const mine = yield* call("GET", `/api/sales/${saleId}/purchases/me`, { token: buyer!.token })
        assert.deepStrictEqual(
          [mine.body.purchased, mine.body.order.orderId, mine.body.order.status],
          [true, again.body.orderId, "reserved"]
        )
        yield* checkSale(saleId)
      })
  )

  it.effect(
    "a drawn sale holds its winners' units; an unpaid winner's unit goes to the next entrant in draw order",
    () =>
      Effect.gen(function* () {
        const token = yield* adminToken
        const product = yield* call("POST", "/api/admin/products", { token, body: { name: "Console X" } })
        const now = Date.now()
        const created = yield* call("POST", "/api/admin/sales", {
          token,
          body: {
            productId: product.body.productId,
            priceCents: 49_900,
            stock: 1,
            startsAt: new Date(now).toISOString(),
            endsAt: new Date(now + 3_600_000).toISOString(),
            allocation: "draw",
            entryWindowSeconds: 2,
            holdSeconds: 2
          }
        })
        assert.strictEqual(created.status, 201, JSON.stringify(created.body))
        const saleId = created.body.saleId as SaleId
        const entrants = yield* buyers(3)
        for (const entrant of entrants) assert.strictEqual((yield* buy(saleId, entrant.token)).status, 202)
        const entryOf = (entrant: { token: string }) =>
          Effect.map(
            call("GET", `/api/sales/${saleId}/entry`, { token: entrant.token }),
            (answer) => answer.body
          )
        // The draw: one winner, held; the others wait in draw order.
        const deadline = Date.now() + 15_000
        let entries = yield* Effect.forEach(entrants, entryOf)
        while (entries.some((e) => e.status === "entered") && Date.now() < deadline) {
          yield* Effect.sleep("200 millis")
          entries = yield* Effect.forEach(entrants, entryOf)
        }
        const winnerAt = entries.findIndex((e) => e.status === "won")
        assert.isAtLeast(winnerAt, 0, JSON.stringify(entries))
        const winner = entrants[winnerAt]!
        const won = yield* call("GET", `/api/orders/${entries[winnerAt].orderId}`, { token: winner.token })
        assert.strictEqual(won.body.status, "reserved", JSON.stringify(won.body))
        const next = entries.findIndex((e) => e.waitingListPlace === 1)
        assert.isAtLeast(next, 0, JSON.stringify(entries))
        const promoted = entrants[next]!
        // The winner does not pay: at payBy the unit goes to the first on the waiting list.
        yield* orderWhen(won.body.orderId, winner.token, (status) => status === "expired")
        let theirs = yield* entryOf(promoted)
        while (theirs.status !== "won" && Date.now() < deadline + 10_000) {
          yield* Effect.sleep("200 millis")
          theirs = yield* entryOf(promoted)
        }
        assert.strictEqual(theirs.status, "won", JSON.stringify(theirs))
        assert.strictEqual(theirs.orderId, theirs.entryId)
        const held = yield* call("GET", `/api/orders/${theirs.orderId}`, { token: promoted.token })
        assert.strictEqual(held.body.status, "reserved")
        const checkout = yield* call("POST", `/api/orders/${theirs.orderId}/pay`, { token: promoted.token })
        assert.strictEqual(checkout.status, 200, JSON.stringify(checkout.body))
        yield* pressAtProvider(checkout.body.checkoutUrl as string, "pay")
        const paid = yield* orderWhen(theirs.orderId, promoted.token, (status) => status !== "reserved")
        assert.strictEqual(paid.status, "paid")
        // The third entrant was not promoted: one unit, sold once.
        const third = entrants.findIndex((_, i) => i !== winnerAt && i !== next)
        assert.strictEqual((yield* entryOf(entrants[third]!)).status, "not_drawn")
        yield* checkSale(saleId)
      })
  )

  it.effect(
    "webhooks: a bad signature, an old one, a body that is no event, a replay, and a late payment refunded",
    () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const token = yield* adminToken
        const saleId = yield* holdSale(token, { stock: 3, holdSeconds: 600 })
        const [payer, late] = yield* buyers(2)
        const orderId = (yield* buy(saleId, payer!.token)).body.orderId as OrderId
        const event = {
          eventId: `evt_${randomUUID()}`,
          intentId: `pi_${randomUUID()}`,
          orderId,
          kind: "succeeded",
          at: Date.now()
        }
        const events = () =>
          sql<{ n: number }>`SELECT count(*)::int AS n FROM payment_events`.pipe(Effect.map((r) => r[0]!.n))
        const recordedBefore = yield* events()

        expectError(yield* webhook(event, { secret: new Uint8Array(32) }), 400, "bad_signature")
        expectError(
          yield* call("POST", "/api/payments/webhook", {
            raw: JSON.stringify(event),
            headers: { [signatureHeader]: "t=1,v1=00" }
          }),
          400,
          "bad_signature"
        )
        expectError(yield* webhook(event, { signedAt: Date.now() - 600_000 }), 400, "stale_webhook")
        expectError(yield* webhook(event, { raw: '{"kind":"succeeded"}' }), 400, "malformed_webhook")
        assert.strictEqual(yield* events(), recordedBefore, "nothing recorded from a refused webhook")
        assert.strictEqual((yield* rowOf(orderId))!.status, "reserved")

        const applied = yield* webhook(event)
        assert.deepStrictEqual([applied.status, applied.body.applied], [200, "paid"])
        // The same event again (re-signed, as a provider's retry is): changes nothing.
        const replay = yield* webhook(event)
        assert.deepStrictEqual([replay.status, replay.body.applied], [200, "duplicate"])
        assert.strictEqual(yield* events(), recordedBefore + 1)
        assert.strictEqual((yield* rowOf(orderId))!.status, "paid")

        // A payment that arrives after the hold ended is recorded and refunded, never a second sale.
        const lateSale = yield* holdSale(token, { stock: 1, holdSeconds: 2 })
        const lateOrder = (yield* buy(lateSale, late!.token)).body.orderId as OrderId
        const checkout = yield* call("POST", `/api/orders/${lateOrder}/pay`, { token: late!.token })
        assert.strictEqual(checkout.status, 200)
        yield* orderWhen(lateOrder, late!.token, (status) => status === "expired")
        const pressed = yield* pressAtProvider(checkout.body.checkoutUrl as string, "pay")
        assert.strictEqual(pressed.status, 303)
        const refunded = yield* orderWhen(lateOrder, late!.token, (status) => status === "refunded")
        assert.strictEqual(refunded.status, "refunded", "the provider confirmed the refund")
        const [refund] = yield* sql<{ reason: string; refundId: string | null; refundedAt: Date | null }>`
        SELECT reason, refund_id AS "refundId", refunded_at AS "refundedAt" FROM refunds WHERE order_id = ${lateOrder}`
        assert.strictEqual(refund!.reason, "expired")
        assert.match(refund!.refundId ?? "", /^re_/)
        assert.isNotNull(refund!.refundedAt)
        assert.isNull((yield* rowOf(lateOrder))!.paidAt)
        yield* checkSale(saleId)
        yield* checkSale(lateSale)
      })
  )
})

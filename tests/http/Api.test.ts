import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { createParser } from "eventsource-parser"
import { SignJWT } from "jose"
import { SaleRegistry } from "../../src/actors/SaleRegistry.ts"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import { Audit, checkInvariants, violations } from "../../src/storage/Audit.ts"
import {
  admin,
  ApiNode,
  baseUrl,
  fastServed,
  grantAdmin,
  secret,
  signedInBuyers,
  testPassword
} from "../support/ApiNode.ts"
import { makeSale } from "../support/Fixtures.ts"

interface Answer {
  readonly status: number
  readonly headers: Headers
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
  readonly body: any
}

const call = (
  method: string,
  path: string,
  options: { token?: string; body?: string; headers?: Record<string, string> } = {}
) =>
  Effect.flatMap(baseUrl, (url) =>
    Effect.promise(async (): Promise<Answer> => {
      const headers: Record<string, string> = { "content-type": "application/json", ...options.headers }
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
      const response = await fetch(url + path, { method, headers, body: options.body ?? null })
      const text = await response.text()
      return {
        status: response.status,
        headers: response.headers,
        body: text === "" ? undefined : JSON.parse(text)
      }
    })
  )

// Signs up (once) and signs in; the admin email gets the role as `npm run admin -- grant` gives it.
const login = (email: string) =>
  Effect.gen(function* () {
    const body = JSON.stringify({ email, password: testPassword })
    const signedUp = yield* call("POST", "/api/auth/signup", { body })
    assert.include([201, 409], signedUp.status, JSON.stringify(signedUp.body))
    if (email === admin) yield* grantAdmin(email)
    const answer = yield* call("POST", "/api/auth/login", { body })
    assert.strictEqual(answer.status, 200, JSON.stringify(answer.body))
    return answer.body as { token: string; userId: UserId; admin: boolean }
  })

const orderCount = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  return (yield* sql<{ n: number }>`SELECT count(*)::int AS n FROM orders`)[0]!.n
})

const expectError = (answer: Answer, status: number, code: string) => {
  assert.strictEqual(answer.status, status, JSON.stringify(answer.body))
  assert.strictEqual(answer.body?.error?.code, code)
  assert.isString(answer.body.error.message)
}

layer(ApiNode, { timeout: 120_000, excludeTestServices: true })("HTTP API over loopback", (it) => {
  it.effect("signs in, buys once, and answers a retry with the same order", () =>
    Effect.gen(function* () {
      const saleId = yield* makeSale(5)
      const ann = yield* login("ann@example.test")
      assert.isFalse(ann.admin)
      const bought = yield* call("POST", `/api/sales/${saleId}/purchases`, { token: ann.token })
      assert.strictEqual(bought.status, 201)
      assert.strictEqual(bought.body.status, "purchased")
      assert.isFalse(bought.body.alreadyPurchased)
      const again = yield* call("POST", `/api/sales/${saleId}/purchases`, { token: ann.token })
      assert.strictEqual(again.status, 200)
      assert.isTrue(again.body.alreadyPurchased)
      assert.strictEqual(again.body.orderId, bought.body.orderId)
      const sale = yield* call("GET", `/api/sales/${saleId}`)
      assert.strictEqual(sale.status, 200)
      assert.strictEqual(sale.body.remaining, 4)
      assert.strictEqual(sale.body.status, "active")
      const listed = yield* call("GET", "/api/sales")
      assert.isTrue((listed.body as Array<{ saleId: string }>).some((s) => s.saleId === saleId))
      assert.isTrue((yield* login(admin)).admin)
    })
  )

  it.effect("answers a purchase alike on the node:http fast path and through the HttpApi handler", () =>
    Effect.gen(function* () {
      // A CORS request always takes the HttpApi route; the same request without an origin
      // takes the fast path once the sale's actor runs on this node.
      const viaApi = { origin: "https://shop.example" }
      const saleId = yield* makeSale(2)
      const later = yield* makeSale(5, { startsAt: Date.now() + 3_600_000, endsAt: Date.now() + 7_200_000 })
      const [u1, u2, u3, u4] = yield* Effect.forEach(["fp1", "fp2", "fp3", "fp4"], (n) =>
        login(`${n}@example.test`)
      )
      const path = `/api/sales/${saleId}/purchases`
      const served = fastServed.count

      const first = yield* call("POST", path, { token: u1!.token, headers: viaApi })
      const second = yield* call("POST", path, { token: u2!.token })
      assert.strictEqual(fastServed.count, served + 1, "the second purchase took the fast path")
      assert.strictEqual(first.status, 201)
      assert.strictEqual(second.status, 201)
      assert.deepStrictEqual(Object.keys(second.body).sort(), Object.keys(first.body).sort())
      assert.deepStrictEqual({ ...second.body, orderId: "" }, { ...first.body, orderId: "" })

      // Retries, each answered by the other route than the one that took the order.
      const again1 = yield* call("POST", path, { token: u1!.token })
      const again2 = yield* call("POST", path, { token: u2!.token, headers: viaApi })
      assert.strictEqual(again1.status, 200)
      assert.strictEqual(again2.status, 200)
      assert.deepStrictEqual(again1.body, { ...first.body, alreadyPurchased: true })
      assert.deepStrictEqual(again2.body, { ...second.body, alreadyPurchased: true })

      const soldOutApi = yield* call("POST", path, { token: u3!.token, headers: viaApi })
      const soldOutFast = yield* call("POST", path, { token: u4!.token })
      expectError(soldOutFast, 409, "sold_out")
      assert.strictEqual(soldOutApi.status, soldOutFast.status)
      assert.deepStrictEqual(soldOutFast.body, soldOutApi.body)

      const laterPath = `/api/sales/${later}/purchases`
      const earlyApi = yield* call("POST", laterPath, { token: u3!.token, headers: viaApi })
      const earlyFast = yield* call("POST", laterPath, { token: u3!.token })
      expectError(earlyFast, 409, "sale_not_active")
      assert.deepStrictEqual(earlyFast.body, earlyApi.body)

      // Same headers on both routes, apart from their values that are per request.
      const names = (answer: Answer) =>
        [...answer.headers.keys()]
          .filter((name) => !["date", "access-control-allow-origin", "vary"].includes(name))
          .sort()
      assert.deepStrictEqual(names(soldOutFast), names(soldOutApi))
      assert.strictEqual(fastServed.count, served + 4, "every request without an origin took the fast path")

      const record = yield* Effect.flatMap(Audit, (audit) => audit.read(saleId))
      const report = checkInvariants(
        record,
        new Map([
          [first.body.orderId as OrderId, u1!.userId],
          [second.body.orderId as OrderId, u2!.userId]
        ])
      )
      assert.strictEqual(violations(report), 0)
      assert.strictEqual(report.committed, 2)
    })
  )

  it.effect("answers sold out, not started and unknown sales with their codes", () =>
    Effect.gen(function* () {
      const soldOut = yield* makeSale(0)
      const later = yield* makeSale(10, { startsAt: Date.now() + 3_600_000, endsAt: Date.now() + 7_200_000 })
      const bob = yield* login("bob@example.test")
      expectError(
        yield* call("POST", `/api/sales/${soldOut}/purchases`, { token: bob.token }),
        409,
        "sold_out"
      )
      const early = yield* call("POST", `/api/sales/${later}/purchases`, { token: bob.token })
      expectError(early, 409, "sale_not_active")
      assert.strictEqual(early.body.error.details.reason, "not_started")
      const unknown = "7f1c2a5e-0000-4000-8000-000000000000"
      expectError(
        yield* call("POST", `/api/sales/${unknown}/purchases`, { token: bob.token }),
        404,
        "sale_not_found"
      )
      expectError(yield* call("GET", `/api/sales/${unknown}`), 404, "sale_not_found")
      expectError(yield* call("GET", "/api/nothing-here"), 404, "not_found")
    })
  )

  it.effect("rejects bad input with a 4xx naming the problem, and writes nothing", () =>
    Effect.gen(function* () {
      const saleId = yield* makeSale(10)
      const cid = yield* login("cid@example.test")
      const before = yield* orderCount

      const badId = yield* call("POST", "/api/sales/not-a-uuid/purchases", { token: cid.token })
      expectError(badId, 400, "invalid_request")
      assert.deepStrictEqual(badId.body.error.details.path, ["saleId"])

      expectError(yield* call("POST", "/api/auth/login", { body: '{"email":' }), 400, "invalid_request")
      const wrongType = yield* call("POST", "/api/auth/login", { body: '{"email":5}' })
      expectError(wrongType, 400, "invalid_request")
      assert.deepStrictEqual(wrongType.body.error.details.path, ["email"])
      const missing = yield* call("POST", "/api/auth/login", { body: "{}" })
      expectError(missing, 400, "invalid_request")
      assert.deepStrictEqual(missing.body.error.details.path, ["email"])
      const huge = JSON.stringify({ email: "x".repeat(40_000) + "@example.test" })
      expectError(yield* call("POST", "/api/auth/login", { body: huge }), 413, "payload_too_large")

      expectError(yield* call("POST", `/api/sales/${saleId}/purchases`), 401, "unauthorized")
      const tampered = cid.token.slice(0, -3) + (cid.token.endsWith("aaa") ? "bbb" : "aaa")
      expectError(
        yield* call("POST", `/api/sales/${saleId}/purchases`, { token: tampered }),
        401,
        "unauthorized"
      )
      const expired = yield* Effect.promise(() =>
        new SignJWT({ email: "cid@example.test", admin: false })
          .setProtectedHeader({ alg: "HS256" })
          .setSubject(cid.userId)
          .setIssuedAt(Math.floor(Date.now() / 1000) - 7_200)
          .setExpirationTime(Math.floor(Date.now() / 1000) - 3_600)
          .sign(secret)
      )
      expectError(
        yield* call("POST", `/api/sales/${saleId}/purchases`, { token: expired }),
        401,
        "unauthorized"
      )
      const forged = yield* Effect.promise(() =>
        new SignJWT({ email: "cid@example.test", admin: true })
          .setProtectedHeader({ alg: "HS256" })
          .setSubject(cid.userId)
          .setExpirationTime("1h")
          .sign(new TextEncoder().encode("somebody else's secret, also long enough"))
      )
      expectError(
        yield* call("POST", `/api/sales/${saleId}/purchases`, { token: forged }),
        401,
        "unauthorized"
      )

      assert.strictEqual(yield* orderCount, before)
    })
  )

  it.effect("keeps the seed's contract for the current sale, and guards each buyer's orders", () =>
    Effect.gen(function* () {
      // Started before every other sale of this database, so it is the current one.
      const saleId = yield* makeSale(3, { startsAt: Date.now() - 86_400_000 })
      const dee = yield* login("dee@example.test")
      const eve = yield* login("eve@example.test")
      const boss = yield* login(admin)

      const status = yield* call("GET", "/api/flash-sale/status")
      assert.strictEqual(status.status, 200)
      assert.strictEqual(status.body.saleId, saleId)
      assert.strictEqual(status.body.status, "active")

      const before = yield* call("GET", "/api/purchase/status", { token: dee.token })
      assert.deepStrictEqual(
        [before.body.saleId, before.body.purchased, before.body.order],
        [saleId, false, null]
      )
      const attempt = yield* call("POST", "/api/purchase/attempt", { token: dee.token })
      assert.strictEqual(attempt.status, 201)
      assert.strictEqual(attempt.body.saleId, saleId)
      const after = yield* call("GET", "/api/purchase/status", { token: dee.token })
      assert.isTrue(after.body.purchased)
      assert.strictEqual(after.body.order.orderId, attempt.body.orderId)
      const me = yield* call("GET", `/api/sales/${saleId}/purchases/me`, { token: dee.token })
      assert.strictEqual(me.body.order.orderId, attempt.body.orderId)

      const stats = yield* call("GET", "/api/flash-sale/stats")
      assert.deepStrictEqual([stats.body.total, stats.body.sold, stats.body.remaining], [3, 1, 2])

      const own = yield* call("GET", `/api/purchase/user/${dee.userId}`, { token: dee.token })
      assert.strictEqual(own.status, 200)
      assert.deepStrictEqual(
        (own.body as Array<{ orderId: string }>).map((o) => o.orderId),
        [attempt.body.orderId]
      )
      expectError(
        yield* call("GET", `/api/purchase/user/${dee.userId}`, { token: eve.token }),
        403,
        "forbidden"
      )
      const asAdmin = yield* call("GET", `/api/purchase/user/${dee.userId}`, { token: boss.token })
      assert.strictEqual(asAdmin.status, 200)
      assert.strictEqual(asAdmin.body.length, 1)
      expectError(yield* call("GET", `/api/purchase/user/${dee.userId}`), 401, "unauthorized")
      expectError(
        yield* call("GET", "/api/purchase/user/nope", { token: boss.token }),
        400,
        "invalid_request"
      )
    })
  )

  it.effect("answers a buyer who keeps pressing Buy with 429 and Retry-After, writing nothing more", () =>
    Effect.gen(function* () {
      const saleId = yield* makeSale(10, { startsAt: Date.now() + 3_600_000, endsAt: Date.now() + 7_200_000 })
      const fay = yield* login("fay@example.test")
      const answers = []
      for (let i = 0; i < 8; i++)
        answers.push(yield* call("POST", `/api/sales/${saleId}/purchases`, { token: fay.token }))
      assert.deepStrictEqual(
        answers.map((a) => a.status),
        [409, 409, 409, 409, 409, 429, 429, 429]
      )
      const limited = answers[5]!
      expectError(limited, 429, "rate_limited")
      assert.isAtLeast(Number(limited.headers.get("retry-after")), 1)
      // Another buyer is not held back by fay's bucket.
      const gus = yield* login("gus@example.test")
      assert.strictEqual(
        (yield* call("POST", `/api/sales/${saleId}/purchases`, { token: gus.token })).status,
        409
      )
    })
  )

  it.effect("answers a rate-limited buyer alike on both routes, Retry-After included", () =>
    Effect.gen(function* () {
      const saleId = yield* makeSale(10, { startsAt: Date.now() + 3_600_000, endsAt: Date.now() + 7_200_000 })
      const rae = yield* login("rae@example.test")
      const path = `/api/sales/${saleId}/purchases`
      for (let i = 0; i < 5; i++) yield* call("POST", path, { token: rae.token })
      const served = fastServed.count
      const fast = yield* call("POST", path, { token: rae.token })
      const viaApi = yield* call("POST", path, {
        token: rae.token,
        headers: { origin: "https://shop.example" }
      })
      assert.strictEqual(
        fastServed.count,
        served + 1,
        "only the request without an origin took the fast path"
      )
      for (const answer of [fast, viaApi]) {
        expectError(answer, 429, "rate_limited")
        const seconds = answer.body.error.details.retryAfterSeconds as number
        assert.strictEqual(answer.headers.get("retry-after"), String(Math.max(1, Math.ceil(seconds))))
      }
      assert.deepStrictEqual(
        { ...viaApi.body, error: { ...viaApi.body.error, details: {} } },
        { ...fast.body, error: { ...fast.body.error, details: {} } }
      )
    })
  )

  it.effect("exposes Prometheus metrics: requests, outcomes, commits, owned sales", () =>
    Effect.gen(function* () {
      const saleId = yield* makeSale(1)
      const hal = yield* login("hal@example.test")
      const ida = yield* login("ida@example.test")
      assert.strictEqual(
        (yield* call("POST", `/api/sales/${saleId}/purchases`, { token: hal.token })).status,
        201
      )
      assert.strictEqual(
        (yield* call("POST", `/api/sales/${saleId}/purchases`, { token: ida.token })).status,
        409
      )
      const text = yield* Effect.flatMap(baseUrl, (url) =>
        Effect.promise(() => fetch(`${url}/metrics`).then((r) => r.text()))
      )
      assert.match(text, /mincommerce_purchase_outcomes_total\{[^}]*outcome="Accepted"[^}]*\} [1-9]/)
      assert.match(text, /mincommerce_purchase_outcomes_total\{[^}]*outcome="SoldOut"[^}]*\} [1-9]/)
      assert.match(text, /mincommerce_http_requests_total\{[^}]*route="\/api\/sales\/:id\/purchases"[^}]*\}/)
      assert.match(text, /mincommerce_commit_batch_orders_count(\{[^}]*\})? [1-9]/)
      assert.match(text, /mincommerce_commit_seconds_bucket/)
      assert.match(text, /mincommerce_owned_sales(\{[^}]*\})? [1-9]/)
      assert.match(text, /mincommerce_mailbox_depth/)
    })
  )

  it.effect("streams a sale's remaining stock falling to sold out as Server-Sent Events", () =>
    Effect.gen(function* () {
      const saleId = yield* makeSale(3)
      const url = yield* baseUrl
      const buyers = yield* Effect.forEach(["jo", "kim", "lee", "max"], (name) =>
        login(`${name}@example.test`)
      )
      const events: Array<{ status: string; remaining: number }> = []
      const abort = new AbortController()
      const response = yield* Effect.promise(() =>
        fetch(`${url}/api/sales/${saleId}/events`, { signal: abort.signal })
      )
      assert.strictEqual(response.status, 200)
      assert.match(response.headers.get("content-type") ?? "", /text\/event-stream/)
      const parser = createParser({ onEvent: (event) => events.push(JSON.parse(event.data)) })
      const reader = response.body!.getReader()
      const decoder = new TextDecoder()
      const reading = (async () => {
        while (!events.some((e) => e.status === "sold_out")) {
          const chunk = await reader.read()
          if (chunk.done) return
          parser.feed(decoder.decode(chunk.value, { stream: true }))
        }
      })()
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 300)))
      for (const buyer of buyers) {
        yield* call("POST", `/api/sales/${saleId}/purchases`, { token: buyer.token })
        yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 250)))
      }
      yield* Effect.promise(() =>
        Promise.race([reading, new Promise((resolve) => setTimeout(resolve, 5_000))])
      )
      abort.abort()
      assert.deepStrictEqual(events[0], { saleId, status: "active", total: 3, remaining: 3 } as never)
      const remaining = events.map((e) => e.remaining)
      assert.deepStrictEqual(
        remaining,
        [...remaining].sort((a, b) => b - a),
        "remaining never goes up"
      )
      assert.includeMembers(remaining, [3, 2, 1, 0])
      assert.strictEqual(events.at(-1)!.status, "sold_out")
    })
  )

  it.effect("lets an admin create, reschedule, restock, cancel and watch sales; nobody else", () =>
    Effect.gen(function* () {
      const boss = yield* login(admin)
      const joe = yield* login("joe@example.test")
      const inAnHour = new Date(Date.now() + 3_600_000).toISOString()
      const inTwoHours = new Date(Date.now() + 7_200_000).toISOString()

      const denied = yield* call("POST", "/api/admin/products", { token: joe.token, body: '{"name":"x"}' })
      expectError(denied, 403, "forbidden")
      expectError(yield* call("POST", "/api/admin/products", { body: '{"name":"x"}' }), 401, "unauthorized")

      const product = yield* call("POST", "/api/admin/products", {
        token: boss.token,
        body: JSON.stringify({ name: "Console", description: "Limited edition" })
      })
      assert.strictEqual(product.status, 201)
      const renamed = yield* call("PATCH", `/api/admin/products/${product.body.productId}`, {
        token: boss.token,
        body: JSON.stringify({ name: "Console X" })
      })
      assert.strictEqual(renamed.status, 200)

      const badWindow = yield* call("POST", "/api/admin/sales", {
        token: boss.token,
        body: JSON.stringify({
          productId: product.body.productId,
          priceCents: 49_900,
          stock: 5,
          startsAt: inTwoHours,
          endsAt: inAnHour
        })
      })
      expectError(badWindow, 400, "invalid_request")
      const created = yield* call("POST", "/api/admin/sales", {
        token: boss.token,
        body: JSON.stringify({
          productId: product.body.productId,
          priceCents: 49_900,
          stock: 5,
          startsAt: inAnHour,
          endsAt: inTwoHours
        })
      })
      assert.strictEqual(created.status, 201, JSON.stringify(created.body))
      assert.deepStrictEqual(
        [created.body.status, created.body.total, created.body.productName],
        ["upcoming", 5, "Console X"]
      )
      const saleId = created.body.saleId as string

      // Restock and bring forward to now: the sale opens with the new stock.
      const now = new Date(Date.now() - 1_000).toISOString()
      const changed = yield* call("PATCH", `/api/admin/sales/${saleId}`, {
        token: boss.token,
        body: JSON.stringify({ stock: 2, startsAt: now })
      })
      assert.strictEqual(changed.status, 200, JSON.stringify(changed.body))
      assert.deepStrictEqual(
        [changed.body.status, changed.body.total, changed.body.remaining],
        ["active", 2, 2]
      )
      const bought = yield* call("POST", `/api/sales/${saleId}/purchases`, { token: joe.token })
      assert.strictEqual(bought.status, 201)
      const late = yield* call("PATCH", `/api/admin/sales/${saleId}`, {
        token: boss.token,
        body: '{"stock":10}'
      })
      expectError(late, 409, "sale_started")

      const cancelled = yield* call("POST", `/api/admin/sales/${saleId}/cancel`, { token: boss.token })
      assert.strictEqual(cancelled.body.status, "cancelled")
      const kay = yield* login("kay@example.test")
      const refused = yield* call("POST", `/api/sales/${saleId}/purchases`, { token: kay.token })
      expectError(refused, 409, "sale_not_active")
      assert.strictEqual(refused.body.error.details.reason, "cancelled")

      yield* Effect.flatMap(SaleRegistry, (registry) => registry.stop(saleId as SaleId)) // flush the audit records
      const stats = yield* call("GET", `/api/admin/sales/${saleId}/stats`, { token: boss.token })
      assert.strictEqual(stats.status, 200)
      assert.strictEqual(stats.body.committed, 1)
      assert.strictEqual(stats.body.byOutcome.accepted, 1)
      assert.strictEqual(stats.body.byOutcome.cancelled, 1)
      expectError(
        yield* call("GET", `/api/admin/sales/${saleId}/stats`, { token: joe.token }),
        403,
        "forbidden"
      )
    })
  )

  it.effect("lets only the configured origins call the API from a browser", () =>
    Effect.gen(function* () {
      const url = yield* baseUrl
      const preflight = (origin: string) =>
        Effect.promise(() =>
          fetch(`${url}/api/sales`, {
            method: "OPTIONS",
            headers: { origin, "access-control-request-method": "POST" }
          })
        )
      const allowed = yield* preflight("https://shop.example")
      assert.strictEqual(allowed.headers.get("access-control-allow-origin"), "https://shop.example")
      const other = yield* preflight("https://elsewhere.example")
      assert.notStrictEqual(other.headers.get("access-control-allow-origin"), "https://elsewhere.example")
      assert.notStrictEqual(other.headers.get("access-control-allow-origin"), "*")
    })
  )

  it.effect("puts security headers and a request id on every answer, errors included", () =>
    Effect.gen(function* () {
      for (const answer of [yield* call("GET", "/api/health"), yield* call("GET", "/api/nothing-here")]) {
        assert.strictEqual(answer.headers.get("x-content-type-options"), "nosniff")
        assert.strictEqual(
          answer.headers.get("content-security-policy"),
          "default-src 'none';frame-ancestors 'none'"
        )
        assert.strictEqual(answer.headers.get("cross-origin-resource-policy"), "same-origin")
        // A rendered page's headers are not an API answer's.
        assert.isNull(answer.headers.get("x-frame-options"))
        assert.match(answer.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/)
      }
      const echoed = yield* Effect.flatMap(baseUrl, (url) =>
        Effect.promise(() => fetch(`${url}/api/health/live`, { headers: { "x-request-id": "trace-42" } }))
      )
      assert.strictEqual(echoed.headers.get("x-request-id"), "trace-42")
      const health = yield* call("GET", "/api/health")
      assert.strictEqual(health.body.status, "ok")
      assert.strictEqual((yield* call("GET", "/api/health/ready")).body.status, "ready")
      assert.strictEqual((yield* call("GET", "/api/health/live")).status, 200)
    })
  )

  it.effect("sells exactly the stock to 2,000 concurrent signed-in buyers over HTTP", () =>
    Effect.gen(function* () {
      const saleId: SaleId = yield* makeSale(300)
      const buyers = yield* signedInBuyers(Array.from({ length: 2_000 }, (_, i) => `crowd-${i}@example.test`))
      const answers = yield* Effect.forEach(
        buyers,
        (buyer) =>
          Effect.map(call("POST", `/api/sales/${saleId}/purchases`, { token: buyer.token }), (answer) => ({
            buyer,
            answer
          })),
        { concurrency: 200 }
      )
      const confirmed = new Map<OrderId, UserId>()
      const statuses: Record<number, number> = {}
      for (const { buyer, answer } of answers) {
        statuses[answer.status] = (statuses[answer.status] ?? 0) + 1
        if (answer.status === 201) confirmed.set(answer.body.orderId, buyer.userId)
      }
      assert.strictEqual(statuses[201], 300, JSON.stringify(statuses))
      assert.strictEqual(statuses[409], 1_700)
      const audit = yield* Audit
      const report = checkInvariants(yield* audit.read(saleId), confirmed)
      assert.strictEqual(report.committed, 300)
      assert.strictEqual(violations(report), 0)
      assert.strictEqual(report.unconfirmedRows, 0)
    })
  )
})

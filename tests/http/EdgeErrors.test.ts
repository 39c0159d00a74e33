import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { SignJWT } from "jose"
import { randomBytes } from "node:crypto"
import { apiHeaders } from "../../src/http/ResponseHeaders.ts"
import { ApiNode, baseUrl, secret } from "../support/ApiNode.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"

/**
 * The attacker's probes against a whole node: each gets the API's JSON error with the security
 * headers and a request id, and leaves nothing in PostgreSQL; random paths do not grow /metrics.
 */

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
}

const send = (path: string, init: RequestInit = {}) =>
  Effect.flatMap(baseUrl, (url) =>
    Effect.promise(async (): Promise<Answer> => {
      const response = await fetch(url + path, init)
      return { status: response.status, headers: response.headers, text: await response.text() }
    })
  )

const json = (token: string, body: unknown, method = "POST"): RequestInit => ({
  method,
  headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
  body: JSON.stringify(body)
})

interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly details?: unknown }
}

/** The edge's promise for any answer that is not a success. */
const assertErrorAnswer = (answer: Answer, status: number, code: string): ErrorBody => {
  assert.strictEqual(answer.status, status, answer.text)
  assert.match(answer.headers.get("content-type") ?? "", /^application\/json/)
  for (const [name, value] of Object.entries(apiHeaders))
    assert.strictEqual(answer.headers.get(name), value, name)
  assert.match(answer.headers.get("x-request-id") ?? "", /^[A-Za-z0-9._-]{1,64}$/)
  const body = JSON.parse(answer.text) as ErrorBody
  assert.strictEqual(body.error.code, code)
  assert.isString(body.error.message)
  assert.notMatch(answer.text, /\n\s+at /, "no stack trace")
  return body
}

const assertInvalid = (answer: Answer, where: string, path: ReadonlyArray<unknown>) => {
  const body = assertErrorAnswer(answer, 400, "invalid_request")
  assert.deepStrictEqual(body.error.details, { in: where, path })
}

// Every table a probe could write to.
const rowCounts = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const rows = yield* sql<{ users: number; products: number; sales: number; orders: number }>`
    SELECT (SELECT count(*)::int FROM users) AS users,
           (SELECT count(*)::int FROM products) AS products,
           (SELECT count(*)::int FROM flash_sales) AS sales,
           (SELECT count(*)::int FROM orders) AS orders`
  return rows[0]!
})

/** A signed-in caller: the payload is decoded, and refused, before any handler asks who it is. */
const signedIn = Effect.gen(function* () {
  const [userId] = yield* makeUsers(1)
  return yield* Effect.promise(() =>
    new SignJWT({ email: `edge-${randomBytes(4).toString("hex")}@example.test`, admin: false })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject(userId!)
      .setIssuedAt()
      .setExpirationTime("10 minutes")
      .sign(secret)
  )
})

const randomSegment = () => randomBytes(12).toString("base64url")

layer(ApiNode, { timeout: 120_000, excludeTestServices: true })(
  "the edge under an attacker's probes",
  (it) => {
    it.effect("over-long or undecodable paths are a JSON 400 naming the segment, not a bare 500", () =>
      Effect.gen(function* () {
        assertInvalid(yield* send(`/api/sales/${"a".repeat(256)}`), "path", [2])
        assertInvalid(yield* send(`/${"a".repeat(256)}`), "path", [0])
        assertInvalid(yield* send(`/assets/${"b".repeat(256)}.js`), "path", [1])
        assertInvalid(
          yield* send(`/${Array.from({ length: 60 }, () => "c".repeat(80)).join("/")}`),
          "path",
          []
        )
        assertInvalid(yield* send("/app/%00secret"), "path", [1])
        assertInvalid(yield* send("/app/%E0%A4%A"), "path", [1])
        assertErrorAnswer(yield* send(`/api/${randomSegment()}`), 404, "not_found")
      })
    )

    it.effect(
      "a NUL or control character in an email or a name, a year of -5000: 400 with the field, no row",
      () =>
        Effect.gen(function* () {
          const token = yield* signedIn
          const saleId = yield* makeSale(3)
          const before = yield* rowCounts

          const login = (email: string) =>
            send("/api/auth/login", {
              method: "POST",
              headers: { "content-type": "application/json" },
              body: JSON.stringify({ email, password: "a long enough password" })
            })
          assertInvalid(yield* login("nul\u0000@example.test"), "payload", ["email"])
          assertInvalid(yield* login("bell\u0007@example.test"), "payload", ["email"])

          const product = (body: unknown) => send("/api/admin/products", json(token, body))
          assertInvalid(yield* product({ name: "Sneaker\u0000" }), "payload", ["name"])
          assertInvalid(yield* product({ name: "Sneaker\u001b[2J" }), "payload", ["name"])
          assertInvalid(yield* product({ name: "Sneaker \ud800" }), "payload", ["name"])
          assertInvalid(yield* product({ name: "   " }), "payload", ["name"])
          assertInvalid(yield* product({ name: "Sneaker", description: "line\u0000" }), "payload", [
            "description"
          ])

          const sale = (startsAt: string) =>
            send(
              "/api/admin/sales",
              json(token, {
                productId: "00000000-0000-4000-8000-000000000000",
                priceCents: 100,
                stock: 1,
                startsAt,
                endsAt: "2030-01-01T00:00:00Z"
              })
            )
          assertInvalid(yield* sale("-005000-01-01T00:00:00Z"), "payload", ["startsAt"])
          assertInvalid(yield* sale("+275760-09-13T00:00:00Z"), "payload", ["startsAt"])
          assertInvalid(yield* sale("1999-12-31T23:59:59Z"), "payload", ["startsAt"])
          assertInvalid(yield* sale("2101-01-01T00:00:00Z"), "payload", ["startsAt"])
          assertInvalid(yield* sale("2026-12-01T10:00:00"), "payload", ["startsAt"])
          assertInvalid(yield* sale("2026-02-30T10:00:00\u0000Z"), "payload", ["startsAt"])
          assertInvalid(
            yield* send(
              `/api/admin/sales/${saleId}`,
              json(token, { endsAt: "-005000-01-01T00:00:00Z" }, "PATCH")
            ),
            "payload",
            ["endsAt"]
          )

          assert.deepStrictEqual(yield* rowCounts, before)
        })
    )

    it.effect("a body that is not JSON is a JSON 415, not a plain-text one", () =>
      Effect.gen(function* () {
        const answer = yield* send("/api/auth/login", {
          method: "POST",
          headers: { "content-type": "text/plain" },
          body: JSON.stringify({ email: "ann@example.test", password: "a long enough password" })
        })
        assertErrorAnswer(answer, 415, "unsupported_media_type")
      })
    )

    it.effect("1,500 requests to random paths leave /metrics the same size", () =>
      Effect.gen(function* () {
        const metrics = Effect.map(send("/metrics"), (answer) => answer.text)
        const probe = (index: number) => {
          const path = `/${index % 2 === 0 ? "api/" : ""}${randomSegment()}/${randomSegment()}?q=${randomSegment()}`
          return send(path, index % 3 === 0 ? { method: "POST", body: "{}" } : {})
        }
        // One round first, so every series the probes touch exists before measuring.
        yield* Effect.forEach([0, 1, 2, 3, 4, 5], probe, { discard: true })
        yield* metrics
        const before = yield* metrics
        yield* Effect.forEach(
          Array.from({ length: 1_500 }, (_, index) => index),
          probe,
          { concurrency: 16, discard: true }
        )
        const after = yield* metrics
        // Counters gain digits (1 -> 1,500), nothing else.
        const lines = new Set(before.split("\n").map((line) => line.replace(/ [0-9.e+]+$/, "")))
        assert.deepStrictEqual(
          after.split("\n").filter((line) => !lines.has(line.replace(/ [0-9.e+]+$/, ""))),
          []
        )
        assert.isAtMost(Math.abs(after.length - before.length), 40)
        assert.include(after, 'route="unmatched"')
        assert.notMatch(
          after,
          /route="\/(?!api\/sales|api\/admin|api\/auth|api\/health|api\/flash|api\/purchase|metrics|docs|openapi|\*)/
        )
      })
    )
  }
)

import { assert, describe, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import { SignJWT } from "jose"
import { spawnSync } from "node:child_process"
import { adminCheckMillis } from "../../src/http/AdminRole.ts"
import { Accounts } from "../../src/storage/Accounts.ts"
import { ApiNode, baseUrl, grantAdmin, secret, testAuthLimits, testPassword } from "../support/ApiNode.ts"
import { makeSale } from "../support/Fixtures.ts"

/**
 * Built-in identity as an attacker tries it: sign-in without a password or as someone else,
 * a revoked admin, tokens the node never issued. Every refusal is the API's JSON error and
 * leaves nothing behind in PostgreSQL.
 */

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly millis: number
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
  readonly body: any
}

const call = (
  method: string,
  path: string,
  options: { token?: string; body?: unknown; cookie?: string } = {}
) =>
  Effect.flatMap(baseUrl, (url) =>
    Effect.promise(async (): Promise<Answer> => {
      const headers: Record<string, string> = { "content-type": "application/json" }
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
      if (options.cookie !== undefined) headers.cookie = options.cookie
      const started = performance.now()
      const response = await fetch(url + path, {
        method,
        headers,
        body: options.body === undefined ? null : JSON.stringify(options.body)
      })
      const text = await response.text()
      return {
        status: response.status,
        headers: response.headers,
        millis: performance.now() - started,
        body: text === "" ? undefined : JSON.parse(text)
      }
    })
  )

/** The API's error shape, with its status and code. */
const expectError = (answer: Answer, status: number, code: string) => {
  assert.strictEqual(answer.status, status, JSON.stringify(answer.body))
  assert.match(answer.headers.get("content-type") ?? "", /application\/json/)
  assert.strictEqual(answer.body?.error?.code, code, JSON.stringify(answer.body))
  assert.isString(answer.body.error.message)
  assert.isUndefined(answer.body.token)
}

const signUp = (email: string, password = testPassword) =>
  Effect.map(call("POST", "/api/auth/signup", { body: { email, password } }), (answer) => {
    assert.strictEqual(answer.status, 201, JSON.stringify(answer.body))
    return answer.body as { token: string; userId: string; admin: boolean }
  })

const signIn = (email: string, password = testPassword) =>
  Effect.map(call("POST", "/api/auth/login", { body: { email, password } }), (answer) => {
    assert.strictEqual(answer.status, 200, JSON.stringify(answer.body))
    return answer.body as { token: string; userId: string; admin: boolean }
  })

// Rows a refused probe must not add to.
const footprint = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const [row] = yield* sql<{ users: number; orders: number; admins: number; products: number }>`
    SELECT (SELECT count(*)::int FROM users) AS users, (SELECT count(*)::int FROM orders) AS orders,
      (SELECT count(*)::int FROM users WHERE admin) AS admins, (SELECT count(*)::int FROM products) AS products`
  return row!
}).pipe(Effect.orDie)

const unsignedExp = (claims: Record<string, unknown>, subject: string, withExp: boolean) =>
  Effect.promise(() => {
    const jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setSubject(subject).setIssuedAt()
    return (withExp ? jwt.setExpirationTime("1h") : jwt).sign(secret)
  })

const median = (values: ReadonlyArray<number>) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!

layer(ApiNode, { timeout: 120_000, excludeTestServices: true })("sign-up and sign-in", (it) => {
  it.effect("refuses sign-in as an admin's email without its password, or with a wrong one", () =>
    Effect.gen(function* () {
      yield* signUp("boss@example.test")
      yield* grantAdmin("boss@example.test")
      const before = yield* footprint

      const noPassword = yield* call("POST", "/api/auth/login", { body: { email: "boss@example.test" } })
      expectError(noPassword, 400, "invalid_request")
      assert.deepStrictEqual(noPassword.body.error.details.path, ["password"])
      expectError(
        yield* call("POST", "/api/auth/login", { body: { email: "boss@example.test", password: "" } }),
        401,
        "invalid_credentials"
      )
      expectError(
        yield* call("POST", "/api/auth/login", {
          body: { email: "BOSS@example.test", password: "not the boss's password" }
        }),
        401,
        "invalid_credentials"
      )
      // Signing up again with the admin's email takes nothing over.
      expectError(
        yield* call("POST", "/api/auth/signup", {
          body: { email: "boss@example.test", password: "mine now, mine" }
        }),
        409,
        "email_taken"
      )
      assert.deepStrictEqual(yield* footprint, before)
      assert.isTrue((yield* signIn("boss@example.test")).admin)
    })
  )

  it.effect("lets no buyer sign in as another buyer", () =>
    Effect.gen(function* () {
      const ann = yield* signUp("ann@example.test", "ann's own password")
      yield* signUp("bob@example.test", "bob's own password")
      const before = yield* footprint
      expectError(
        yield* call("POST", "/api/auth/login", {
          body: { email: "ann@example.test", password: "bob's own password" }
        }),
        401,
        "invalid_credentials"
      )
      expectError(
        yield* call("POST", "/api/auth/signup", {
          body: { email: "Ann@Example.test", password: "bob's own password" }
        }),
        409,
        "email_taken"
      )
      assert.deepStrictEqual(yield* footprint, before)
      const again = yield* signIn("ann@example.test", "ann's own password")
      assert.strictEqual(again.userId, ann.userId)
    })
  )

  it.effect("answers an unknown email and a wrong password alike, in about the same time", () =>
    Effect.gen(function* () {
      yield* signUp("cy@example.test")
      const unknown: Array<Answer> = []
      const wrong: Array<Answer> = []
      // Alternated and per account under its failure limit.
      for (let i = 0; i < 4; i++) {
        unknown.push(
          yield* call("POST", "/api/auth/login", {
            body: { email: `nobody-${i}@example.test`, password: "whatever it is" }
          })
        )
        wrong.push(
          yield* call("POST", "/api/auth/login", {
            body: { email: "cy@example.test", password: `wrong password ${i}` }
          })
        )
      }
      for (const answer of [...unknown, ...wrong]) expectError(answer, 401, "invalid_credentials")
      assert.deepStrictEqual(unknown[0]!.body, wrong[0]!.body)
      const ratio = median(unknown.map((a) => a.millis)) / median(wrong.map((a) => a.millis))
      assert.isAbove(ratio, 0.5, `unknown ${median(unknown.map((a) => a.millis))} ms`)
      assert.isBelow(ratio, 2, `wrong ${median(wrong.map((a) => a.millis))} ms`)
    })
  )

  it.effect("slows repeated wrong passwords on one account with 429 and Retry-After, for seconds", () =>
    Effect.gen(function* () {
      yield* signUp("dot@example.test")
      for (let i = 0; i < testAuthLimits.failuresPerAccount; i++) {
        expectError(
          yield* call("POST", "/api/auth/login", {
            body: { email: "dot@example.test", password: `guess number ${i}` }
          }),
          401,
          "invalid_credentials"
        )
      }
      const slowed = yield* call("POST", "/api/auth/login", {
        body: { email: "dot@example.test", password: testPassword }
      })
      expectError(slowed, 429, "rate_limited")
      const retryAfter = Number(slowed.headers.get("retry-after"))
      assert.isAtLeast(retryAfter, 1)
      // One failure's worth of the window refills: a buyer waits seconds, not hours.
      assert.isAtMost(retryAfter, 60 / testAuthLimits.failuresPerAccount)
      assert.strictEqual(slowed.body.error.details.retryAfterSeconds, retryAfter)
      // Another account is not slowed by it.
      yield* signUp("dan@example.test")
      yield* signIn("dan@example.test")
    })
  )

  it.effect("refuses a revoked admin within seconds, whatever token they hold", () =>
    Effect.gen(function* () {
      yield* signUp("eva@example.test")
      yield* grantAdmin("eva@example.test")
      const eva = yield* signIn("eva@example.test")
      assert.isTrue(eva.admin)
      const create = call("POST", "/api/admin/products", { token: eva.token, body: { name: "Lamp" } })
      assert.strictEqual((yield* create).status, 201)
      assert.isTrue((yield* call("GET", "/api/auth/me", { token: eva.token })).body.admin)

      yield* Effect.flatMap(Accounts, (accounts) => accounts.setAdmin("eva@example.test", false)).pipe(
        Effect.orDie
      )
      const revokedAt = Date.now()
      const products = (yield* footprint).products
      let refused: Answer | undefined
      while (Date.now() - revokedAt < adminCheckMillis + 2_000) {
        const answer = yield* call("POST", "/api/admin/products", {
          token: eva.token,
          body: { name: "Lamp" }
        })
        if (answer.status === 403) {
          refused = answer
          break
        }
        yield* Effect.sleep("100 millis")
      }
      assert.isDefined(refused, "still an admin seconds after the revoke")
      expectError(refused!, 403, "forbidden")
      assert.isAtMost(Date.now() - revokedAt, adminCheckMillis + 500)
      assert.isFalse((yield* call("GET", "/api/auth/me", { token: eva.token })).body.admin)
      // What was created while the role held is all there is.
      assert.isAtMost((yield* footprint).products - products, 1 + Math.ceil(adminCheckMillis / 100))
    })
  )

  it.effect("refuses a token without exp, and gives nothing for an admin claim in a token", () =>
    Effect.gen(function* () {
      const saleId = yield* makeSale(5)
      const fay = yield* signUp("fay@example.test")
      const before = yield* footprint
      const noExp = yield* unsignedExp({ email: "fay@example.test" }, fay.userId, false)
      expectError(
        yield* call("POST", `/api/sales/${saleId}/purchases`, { token: noExp }),
        401,
        "unauthorized"
      )
      expectError(yield* call("GET", "/api/auth/me", { token: noExp }), 401, "unauthorized")
      const claimsAdmin = yield* unsignedExp({ email: "fay@example.test", admin: true }, fay.userId, true)
      expectError(
        yield* call("POST", "/api/admin/products", { token: claimsAdmin, body: { name: "Mine" } }),
        403,
        "forbidden"
      )
      const adminNoExp = yield* unsignedExp({ email: "fay@example.test", admin: true }, fay.userId, false)
      expectError(
        yield* call("POST", "/api/admin/products", { token: adminNoExp, body: { name: "Mine" } }),
        401,
        "unauthorized"
      )
      assert.deepStrictEqual(yield* footprint, before)
    })
  )

  it.effect(
    "refuses emails with control characters and passwords outside 10 to 128 characters, creating nobody",
    () =>
      Effect.gen(function* () {
        const before = yield* footprint
        for (const email of [
          "nul\u0000@example.test",
          "line\nbreak@example.test",
          "x".repeat(300) + "@example.test"
        ]) {
          const answer = yield* call("POST", "/api/auth/signup", { body: { email, password: testPassword } })
          expectError(answer, 400, "invalid_request")
          assert.deepStrictEqual(answer.body.error.details.path, ["email"])
        }
        for (const password of ["short", "y".repeat(129)]) {
          const answer = yield* call("POST", "/api/auth/signup", {
            body: { email: "gil@example.test", password }
          })
          expectError(answer, 400, "invalid_request")
          assert.deepStrictEqual(answer.body.error.details.path, ["password"])
        }
        assert.deepStrictEqual(yield* footprint, before)
      })
  )

  it.effect("refreshes the session from its httpOnly cookie, and signs out", () =>
    Effect.gen(function* () {
      const signedUp = yield* call("POST", "/api/auth/signup", {
        body: { email: "hal@example.test", password: testPassword }
      })
      const setCookie = signedUp.headers.get("set-cookie") ?? ""
      assert.match(setCookie, /^mincommerce_refresh=[^;]+/)
      assert.match(setCookie, /HttpOnly/i)
      assert.match(setCookie, /SameSite=Strict/i)
      assert.match(setCookie, /Path=\/api\/auth/)
      assert.isAtMost(signedUp.body.expiresInSeconds, 900)
      const cookie = setCookie.split(";")[0]!

      const refreshed = yield* call("POST", "/api/auth/refresh", { cookie })
      assert.strictEqual(refreshed.status, 200, JSON.stringify(refreshed.body))
      assert.strictEqual(refreshed.body.userId, signedUp.body.userId)
      assert.strictEqual((yield* call("GET", "/api/auth/me", { token: refreshed.body.token })).status, 200)

      expectError(yield* call("POST", "/api/auth/refresh"), 401, "unauthorized")
      // An access token is no refresh token, and a refresh token no access token.
      expectError(
        yield* call("POST", "/api/auth/refresh", { cookie: `mincommerce_refresh=${signedUp.body.token}` }),
        401,
        "unauthorized"
      )
      expectError(
        yield* call("GET", "/api/auth/me", { token: cookie.slice("mincommerce_refresh=".length) }),
        401,
        "unauthorized"
      )

      const out = yield* call("POST", "/api/auth/logout", { cookie })
      assert.strictEqual(out.status, 204)
      assert.match(out.headers.get("set-cookie") ?? "", /mincommerce_refresh=;.*Max-Age=0/i)
    })
  )
})

describe("secrets", () => {
  it("refuses to start with a JWT_SECRET under 32 bytes, saying why", { timeout: 60_000 }, () => {
    const started = spawnSync(process.execPath, ["src/main.ts"], {
      env: {
        PATH: process.env.PATH ?? "",
        JWT_SECRET: "thirty-one bytes of a secret!!!",
        // Unreachable on purpose: the check must fail first, without a database.
        DATABASE_URL: "postgres://nobody@127.0.0.1:1/none"
      },
      encoding: "utf8",
      timeout: 30_000
    })
    assert.strictEqual(started.status, 1)
    assert.include(started.stderr, "JWT_SECRET: must be at least 32 bytes")
    assert.notInclude(started.stderr + started.stdout, "thirty-one bytes")
  })
})

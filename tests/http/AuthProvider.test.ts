import { assert, layer } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { apiNodeWith, baseUrl, fastServed, testIdentity } from "../support/ApiNode.ts"
import { makeSale } from "../support/Fixtures.ts"

/**
 * The shop's identity provider, played by a JWKS server this test starts: its RS256 and ES256
 * access tokens are accepted, a buyer is made on first sight from `sub`, the admin role comes
 * from the `roles` claim, a rotated key is fetched, and a token from a key it never published,
 * for another audience, from another issuer, or without `exp` is refused, creating nobody.
 */

const issuer = "https://id.shop.example/"
const audience = "mincommerce"

interface SigningKey {
  readonly kid: string
  readonly alg: "RS256" | "ES256"
  readonly privateKey: CryptoKey
  readonly jwk: JWK
}

const makeKey = async (kid: string, alg: "RS256" | "ES256"): Promise<SigningKey> => {
  const { privateKey, publicKey } = await generateKeyPair(alg)
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } }
}

/** The provider: the keys it publishes now, and how often its key set was fetched. */
class Provider extends Context.Service<
  Provider,
  {
    readonly url: string
    published: ReadonlyArray<SigningKey>
    fetches: number
  }
>()("test/Provider") {}

const ProviderLive = Layer.effect(
  Provider,
  Effect.acquireRelease(
    Effect.promise(async () => {
      const state = { url: "", published: [] as ReadonlyArray<SigningKey>, fetches: 0 }
      const server = createServer((request, response) => {
        state.fetches++
        response.writeHead(200, { "content-type": "application/json" })
        response.end(JSON.stringify({ keys: state.published.map((key) => key.jwk) }))
      })
      await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening))
      state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`
      return { state, server }
    }),
    ({ server }) => Effect.promise(() => new Promise<void>((closed) => server.close(() => closed())))
  ).pipe(Effect.map(({ state }) => state))
)

const Node = Layer.unwrap(
  Effect.map(Provider, (provider) =>
    apiNodeWith(
      testIdentity({
        provider: {
          jwksUrl: new URL(provider.url),
          issuer,
          audience,
          adminClaim: "roles",
          adminRole: "admin",
          clockToleranceSeconds: 5,
          // A key the set does not have sends the node back to the provider at once.
          refetchAfterMillis: 0
        }
      })
    )
  )
).pipe(
  Layer.provideMerge(ProviderLive),
  // The shop's buyers come from its provider: built-in sign-up is closed, as AUTH_SIGNUP=false says.
  Layer.provide(
    ConfigProvider.layerAdd(ConfigProvider.fromEnvRecord({ AUTH_SIGNUP: "false" }), { asPrimary: true })
  )
)

const token = (
  key: SigningKey,
  claims: Record<string, unknown>,
  options: { subject?: string; audience?: string; issuer?: string; exp?: boolean } = {}
) =>
  Effect.promise(() => {
    let jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, kid: key.kid })
      .setIssuer(options.issuer ?? issuer)
      .setAudience(options.audience ?? audience)
      .setIssuedAt()
    if (options.subject !== undefined) jwt = jwt.setSubject(options.subject)
    if (options.exp !== false) jwt = jwt.setExpirationTime("10m")
    return jwt.sign(key.privateKey)
  })

const call = (method: string, path: string, bearer?: string, body?: unknown) =>
  Effect.flatMap(baseUrl, (url) =>
    Effect.promise(async () => {
      const headers: Record<string, string> = { "content-type": "application/json" }
      if (bearer !== undefined) headers.authorization = `Bearer ${bearer}`
      const response = await fetch(url + path, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body)
      })
      const text = await response.text()
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
      return { status: response.status, body: (text === "" ? undefined : JSON.parse(text)) as any }
    })
  )

const users = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  sql<{ n: number }>`SELECT count(*)::int AS n FROM users`.pipe(Effect.map((rows) => rows[0]!.n))
).pipe(Effect.orDie)

const refused = (answer: { status: number; body: { error?: { code?: string; message?: string } } }) => {
  assert.strictEqual(answer.status, 401, JSON.stringify(answer.body))
  assert.strictEqual(answer.body.error?.code, "unauthorized")
  assert.isString(answer.body.error?.message)
}

layer(Node, { timeout: 120_000, excludeTestServices: true })("the shop's identity provider", (it) => {
  it.effect("accepts its RS256 and ES256 tokens, makes the buyer once, and buys on the fast route", () =>
    Effect.gen(function* () {
      const provider = yield* Provider
      const rsa = yield* Effect.promise(() => makeKey("rsa-1", "RS256"))
      const ec = yield* Effect.promise(() => makeKey("ec-1", "ES256"))
      provider.published = [rsa, ec]
      const before = yield* users

      const ann = yield* token(rsa, { email: "ann@shop.example" }, { subject: "idp|ann" })
      const me = yield* call("GET", "/api/auth/me", ann)
      assert.strictEqual(me.status, 200, JSON.stringify(me.body))
      assert.strictEqual(me.body.email, "ann@shop.example")
      assert.isFalse(me.body.admin)
      const again = yield* call("GET", "/api/auth/me", yield* token(ec, {}, { subject: "idp|ann" }))
      assert.strictEqual(again.body.userId, me.body.userId)
      assert.strictEqual(yield* users, before + 1)

      // Verified once, the token is checked synchronously: the purchase takes the fast route.
      const saleId = yield* makeSale(3)
      const served = fastServed.count
      const bought = yield* call("POST", `/api/sales/${saleId}/purchases`, ann)
      assert.strictEqual(bought.status, 201, JSON.stringify(bought.body))
      assert.strictEqual(fastServed.count, served + 1)
    })
  )

  it.effect("takes the admin role from the roles claim", () =>
    Effect.gen(function* () {
      const provider = yield* Provider
      const [key] = provider.published
      const boss = yield* token(key!, { roles: ["buyer", "admin"] }, { subject: "idp|boss" })
      const created = yield* call("POST", "/api/admin/products", boss, { name: "Desk" })
      assert.strictEqual(created.status, 201, JSON.stringify(created.body))
      const buyer = yield* token(key!, { roles: ["buyer"] }, { subject: "idp|bea" })
      const denied = yield* call("POST", "/api/admin/products", buyer, { name: "Desk" })
      assert.strictEqual(denied.status, 403)
      assert.strictEqual(denied.body.error.code, "forbidden")
    })
  )

  it.effect("follows a key rotation, and refuses a token from a key it never published", () =>
    Effect.gen(function* () {
      const provider = yield* Provider
      const rotated = yield* Effect.promise(() => makeKey("rsa-2", "RS256"))
      const retired = provider.published[0]!
      provider.published = [rotated]
      const fetches = provider.fetches
      const cy = yield* token(rotated, {}, { subject: "idp|cy" })
      const me = yield* call("GET", "/api/auth/me", cy)
      assert.strictEqual(me.status, 200, JSON.stringify(me.body))
      assert.isAbove(provider.fetches, fetches, "the new key was fetched")

      const before = yield* users
      refused(yield* call("GET", "/api/auth/me", yield* token(retired, {}, { subject: "idp|old" })))
      const stranger = yield* Effect.promise(() => makeKey("rsa-2", "RS256"))
      refused(yield* call("GET", "/api/auth/me", yield* token(stranger, {}, { subject: "idp|mallory" })))
      const unknownKid = yield* Effect.promise(() => makeKey("never-published", "ES256"))
      refused(
        yield* call(
          "POST",
          "/api/admin/products",
          yield* token(unknownKid, { roles: ["admin"] }, { subject: "idp|eve" }),
          { name: "x" }
        )
      )
      assert.strictEqual(yield* users, before)
    })
  )

  it.effect("answers a built-in sign-up 403 sign_up_closed when AUTH_SIGNUP=false, creating nobody", () =>
    Effect.gen(function* () {
      const before = yield* users
      const answer = yield* call("POST", "/api/auth/signup", undefined, {
        email: "walk-in@shop.example",
        password: "a password long enough"
      })
      assert.strictEqual(answer.status, 403, JSON.stringify(answer.body))
      assert.strictEqual(answer.body.error.code, "sign_up_closed")
      assert.strictEqual(yield* users, before)
    })
  )

  it.effect("refuses its tokens for another audience or issuer, without sub or without exp", () =>
    Effect.gen(function* () {
      const provider = yield* Provider
      const key = provider.published[0]!
      const before = yield* users
      refused(
        yield* call(
          "GET",
          "/api/auth/me",
          yield* token(key, {}, { subject: "idp|a", audience: "another-app" })
        )
      )
      refused(
        yield* call(
          "GET",
          "/api/auth/me",
          yield* token(key, {}, { subject: "idp|b", issuer: "https://evil.example/" })
        )
      )
      refused(yield* call("GET", "/api/auth/me", yield* token(key, {})))
      refused(yield* call("GET", "/api/auth/me", yield* token(key, {}, { subject: "idp|c", exp: false })))
      assert.strictEqual(yield* users, before)
    })
  )
})

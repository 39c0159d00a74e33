import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { FetchHttpClient, HttpClient, HttpClientRequest } from "effect/http"
import { HttpApiClient } from "effect/http-api"
import { SqlClient } from "effect/sql"
import { SignJWT } from "jose"
import { SaleRegistry } from "../../src/actors/SaleRegistry.ts"
import type { OrderId, ProductId, SaleId, UserId } from "../../src/domain/Ids.ts"
import { Api } from "../../src/http/Api.ts"
import {
  InvalidRequest,
  NoCurrentSale,
  NotAdmin,
  NotSignedIn,
  NotYourOrders,
  ProductNotFound,
  RateLimited,
  SaleCancelled,
  SaleNotActive,
  SaleNotFound,
  SaleStarted,
  SoldOut,
  StockBelowSold
} from "../../src/http/ApiErrors.ts"
import { Audit, checkInvariants, violations } from "../../src/storage/Audit.ts"
import {
  admin,
  ApiNode,
  baseUrl,
  corsOrigin,
  fastServed,
  grantAdmin,
  purchasesPerUser,
  secret,
  testPassword
} from "../support/ApiNode.ts"
import { makeSale } from "../support/Fixtures.ts"
import { testDatabaseMode } from "../support/TestDatabase.ts"

/**
 * Every endpoint of the Api, driven through the client derived from its definition: what a
 * caller decodes is what the definition promises, errors included.
 */

type ApiClient = HttpApiClient.ForApi<typeof Api>

/**
 * A typed client of the node. `token` goes on every request as a bearer token; `viaApi`
 * adds an allowed browser origin, which keeps a purchase off the node:http fast path.
 */

/** A purchase's answer as an order (201 or 200); a draw sale's entry (202) is not one. */
const ordered = <A extends object>(answer: A): Extract<A, { readonly orderId: unknown }> => {
  if (!("orderId" in answer)) throw new Error(`expected an order, got ${JSON.stringify(answer)}`)
  return answer as Extract<A, { readonly orderId: unknown }>
}

const clientFor = (options: { readonly token?: string; readonly viaApi?: boolean } = {}) =>
  Effect.flatMap(baseUrl, (url) =>
    HttpApiClient.make(Api, {
      baseUrl: url,
      transformClient: HttpClient.mapRequest((request) => {
        const signed =
          options.token === undefined ? request : HttpClientRequest.bearerToken(request, options.token)
        return options.viaApi === true ? HttpClientRequest.setHeader(signed, "origin", corsOrigin) : signed
      })
    })
  ).pipe(Effect.provide(FetchHttpClient.layer))

interface Buyer {
  readonly token: string
  readonly userId: UserId
  readonly email: string
  readonly admin: boolean
  /** Signed in as this user, purchases on whichever route the node picks. */
  readonly api: ApiClient
  /** Signed in as this user, every request through the HttpApi handlers. */
  readonly viaApi: ApiClient
}

const signIn = (email: string) =>
  Effect.gen(function* () {
    const anonymous = yield* clientFor()
    const payload = { email, password: testPassword }
    yield* anonymous.auth.signup({ payload }).pipe(Effect.catchTag("EmailInUse", () => Effect.void))
    if (email === admin) yield* grantAdmin(email)
    const session = yield* anonymous.auth.login({ payload })
    const buyer: Buyer = {
      ...session,
      api: yield* clientFor({ token: session.token }),
      viaApi: yield* clientFor({ token: session.token, viaApi: true })
    }
    return buyer
  })

type ErrorBody = { readonly code: string; readonly message: string; readonly details?: unknown }

/**
 * Runs a call that must fail with the declared error `kind` carrying `code`, and returns the
 * decoded error. `K extends E` makes the compiler check that the endpoint declares `kind`.
 */
const failsWith = <A, E, K extends E & { readonly _tag: string; readonly error: ErrorBody }>(
  call: Effect.Effect<A, E>,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- any error class, whatever its fields
  kind: new (...fields: Array<any>) => K,
  code: string
) =>
  Effect.gen(function* () {
    const error = yield* Effect.flip(call)
    assert.instanceOf(error, kind, `expected ${kind.name}, got ${String(error)}`)
    const typed = error as K
    assert.strictEqual(typed._tag, kind.name)
    assert.strictEqual(typed.error.code, code, JSON.stringify(typed.error))
    assert.isString(typed.error.message)
    assert.isAbove(typed.error.message.length, 0)
    return typed
  })

const detailsOf = (error: { readonly error: ErrorBody }) => error.error.details as Record<string, unknown>

const count = (query: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<{ n: number }>, unknown>) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => Effect.map(Effect.orDie(query(sql)), (rows) => rows[0]!.n))

const ordersOf = (saleId: SaleId) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ id: OrderId; userId: UserId; priceCents: number }>`
      SELECT id, user_id AS "userId", price_cents AS "priceCents" FROM orders WHERE sale_id = ${saleId}`.pipe(
      Effect.orDie
    )
  )

const stockOf = (saleId: SaleId) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ total: number; available: number }>`
      SELECT total, available FROM stocks WHERE sale_id = ${saleId}`.pipe(
      Effect.map((rows) => rows[0]),
      Effect.orDie
    )
  )

const saleRowOf = (saleId: SaleId) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ priceCents: number; startsAt: number; endsAt: number; status: string }>`
      SELECT price_cents AS "priceCents", (extract(epoch FROM starts_at) * 1000)::float8 AS "startsAt",
             (extract(epoch FROM ends_at) * 1000)::float8 AS "endsAt", status
      FROM flash_sales WHERE id = ${saleId}`.pipe(
      Effect.map((rows) => rows[0]),
      Effect.orDie
    )
  )

const allOrders = count((sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM orders`)
const allProducts = count((sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM products`)
const allSales = count((sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM flash_sales`)

/** Flushes the sale's audit records by stopping its actor (it restarts on demand). */
const flush = (saleId: SaleId) => Effect.flatMap(SaleRegistry, (registry) => registry.stop(saleId))

/** No oversell, no buyer twice, and every order the client was told about is in PostgreSQL. */
const assertInvariants = (saleId: SaleId, confirmed: ReadonlyMap<OrderId, UserId>) =>
  Effect.gen(function* () {
    const report = checkInvariants(yield* Effect.flatMap(Audit, (audit) => audit.read(saleId)), confirmed)
    assert.strictEqual(violations(report), 0, JSON.stringify(report))
    assert.strictEqual(report.unconfirmedRows, 0, JSON.stringify(report))
    assert.strictEqual(report.committed, confirmed.size)
  })

const unknownSale = "7f1c2a5e-0000-4000-8000-000000000000" as SaleId
const unknownProduct = "7f1c2a5e-0000-4000-8000-000000000001" as ProductId
const iso = (millis: number) => new Date(millis).toISOString()
const hour = 3_600_000

layer(ApiNode, { timeout: 120_000, excludeTestServices: true })("typed client over loopback", (it) => {
  // First on purpose: the database is still empty, so there is no current sale.
  it.effect("answers the current-sale endpoints 404 while no sale runs or is upcoming", () =>
    Effect.gen(function* () {
      const anonymous = yield* clientFor()
      const nia = yield* signIn("nia@example.test")
      assert.deepStrictEqual(yield* anonymous.sales.list(), [])
      yield* failsWith(anonymous.currentSale.status(), NoCurrentSale, "no_current_sale")
      yield* failsWith(anonymous.currentSale.stats(), NoCurrentSale, "no_current_sale")
      yield* failsWith(nia.api.purchase.attempt(), NoCurrentSale, "no_current_sale")
      yield* failsWith(nia.api.purchase.status(), NoCurrentSale, "no_current_sale")
      assert.strictEqual(yield* allOrders, 0)

      // An upcoming sale is the current one until one runs.
      const startsAt = Date.now() + hour
      const upcoming = yield* makeSale(3, { startsAt, endsAt: startsAt + hour })
      const status = yield* anonymous.currentSale.status()
      assert.strictEqual(status.saleId, upcoming)
      assert.strictEqual(status.status, "upcoming")
      assert.strictEqual(status.startsAt, iso(startsAt))
      assert.deepStrictEqual(yield* anonymous.currentSale.stats(), {
        saleId: upcoming,
        status: "upcoming",
        total: 3,
        sold: 0,
        remaining: 3
      })
      const early = yield* failsWith(nia.api.purchase.attempt(), SaleNotActive, "sale_not_active")
      assert.deepStrictEqual(detailsOf(early), { reason: "not_started", startsAt: iso(startsAt) })
      assert.deepStrictEqual(yield* nia.api.purchase.status(), {
        saleId: upcoming,
        purchased: false,
        order: null
      })
      assert.strictEqual(yield* allOrders, 0)
    })
  )

  it.effect(
    "auth.signup creates a user once, lower-cases the email; login signs that user in; the admin is whoever holds the role",
    () =>
      Effect.gen(function* () {
        const anonymous = yield* clientFor()
        const first = yield* anonymous.auth.signup({
          payload: { email: "Ola@Example.test", password: testPassword }
        })
        assert.strictEqual(first.email, "ola@example.test")
        assert.isFalse(first.admin)
        assert.match(first.userId, /^[0-9a-f-]{36}$/)
        assert.strictEqual(first.token.split(".").length, 3)
        const again = yield* anonymous.auth.login({
          payload: { email: "ola@example.test", password: testPassword }
        })
        assert.strictEqual(again.userId, first.userId)
        const users = yield* count(
          (sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM users WHERE email = 'ola@example.test'`
        )
        assert.strictEqual(users, 1)
        const stored = yield* count(
          (sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM users WHERE id = ${first.userId}`
        )
        assert.strictEqual(stored, 1)

        const boss = yield* signIn(admin)
        assert.isTrue(boss.admin)
        assert.strictEqual(boss.email, admin)

        // The derived client checks the payload against the definition before sending it.
        const before = yield* count((sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM users`)
        const refused = yield* Effect.flip(
          anonymous.auth.login({ payload: { email: "no at sign", password: testPassword } })
        )
        assert.strictEqual(refused._tag, "SchemaError")
        assert.strictEqual(
          yield* count((sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM users`),
          before
        )
      })
  )

  it.effect("sales.list and sales.get present a sale field by field; an unknown sale is 404", () =>
    Effect.gen(function* () {
      const anonymous = yield* clientFor()
      const startsAt = Date.now() - 60_000
      const endsAt = Date.now() + hour
      const saleId = yield* makeSale(4, { startsAt, endsAt })
      const sale = yield* anonymous.sales.get({ params: { saleId } })
      assert.strictEqual(sale.saleId, saleId)
      assert.strictEqual(sale.productName, "Limited sneaker")
      assert.strictEqual(sale.priceCents, 12_900)
      assert.strictEqual(sale.startsAt, iso(startsAt))
      assert.strictEqual(sale.endsAt, iso(endsAt))
      assert.strictEqual(sale.status, "active")
      assert.strictEqual(sale.total, 4)
      assert.strictEqual(sale.remaining, 4)
      const listed = yield* anonymous.sales.list()
      assert.deepStrictEqual(
        listed.find((s) => s.saleId === saleId),
        sale
      )
      assert.strictEqual(listed.length, yield* allSales)

      const missing = yield* failsWith(
        anonymous.sales.get({ params: { saleId: unknownSale } }),
        SaleNotFound,
        "sale_not_found"
      )
      assert.deepStrictEqual(detailsOf(missing), { saleId: unknownSale })
    })
  )

  it.effect("purchase: 201 then 200 alreadyPurchased, sold out, on both routes; mine; 404", () =>
    Effect.gen(function* () {
      const saleId = yield* makeSale(2)
      const [pia, quin, rae] = yield* Effect.forEach(["pia", "quin", "rae"], (n) =>
        signIn(`${n}@example.test`)
      )

      // The actor is not running yet: this one goes through the HttpApi handler.
      const first = ordered(yield* pia!.viaApi.purchase.purchase({ params: { saleId } }))
      assert.strictEqual(first.saleId, saleId)
      assert.strictEqual(first.status, "purchased")
      assert.isFalse(first.alreadyPurchased)
      assert.match(first.orderId, /^[0-9a-f-]{36}$/)
      const served = fastServed.count
      const second = ordered(yield* quin!.api.purchase.purchase({ params: { saleId } }))
      assert.strictEqual(fastServed.count, served + 1, "the second purchase took the fast path")
      assert.deepStrictEqual(second, {
        orderId: second.orderId,
        saleId,
        status: "purchased",
        alreadyPurchased: false
      })
      assert.notStrictEqual(second.orderId, first.orderId)

      // Each retry on the other route than the one that took the order.
      const again1 = ordered(yield* pia!.api.purchase.purchase({ params: { saleId } }))
      const again2 = ordered(yield* quin!.viaApi.purchase.purchase({ params: { saleId } }))
      assert.deepStrictEqual(again1, { ...first, alreadyPurchased: true })
      assert.deepStrictEqual(again2, { ...second, alreadyPurchased: true })

      const soldOutFast = yield* failsWith(
        rae!.api.purchase.purchase({ params: { saleId } }),
        SoldOut,
        "sold_out"
      )
      const soldOutApi = yield* failsWith(
        rae!.viaApi.purchase.purchase({ params: { saleId } }),
        SoldOut,
        "sold_out"
      )
      assert.deepStrictEqual(soldOutFast.error, soldOutApi.error)
      assert.strictEqual(fastServed.count, served + 3)

      // PostgreSQL holds exactly the two orders, at the sale's price, and the stock is taken.
      const rows = yield* ordersOf(saleId)
      assert.deepStrictEqual(
        rows.map((row) => [row.id, row.userId, row.priceCents]).sort(),
        [
          [first.orderId, pia!.userId, 12_900],
          [second.orderId, quin!.userId, 12_900]
        ].sort()
      )
      assert.deepStrictEqual(yield* stockOf(saleId), { total: 2, available: 0 })

      const mine = yield* pia!.api.purchase.mine({ params: { saleId } })
      assert.strictEqual(mine.saleId, saleId)
      assert.isTrue(mine.purchased)
      assert.strictEqual(mine.order?.orderId, first.orderId)
      assert.strictEqual(mine.order?.saleId, saleId)
      assert.strictEqual(mine.order?.priceCents, 12_900)
      assert.isBelow(Math.abs(Date.parse(mine.order?.createdAt ?? "") - Date.now()), 60_000)
      assert.deepStrictEqual(yield* rae!.api.purchase.mine({ params: { saleId } }), {
        saleId,
        purchased: false,
        order: null
      })

      const before = yield* allOrders
      const unknownFast = yield* failsWith(
        rae!.api.purchase.purchase({ params: { saleId: unknownSale } }),
        SaleNotFound,
        "sale_not_found"
      )
      assert.deepStrictEqual(detailsOf(unknownFast), { saleId: unknownSale })
      yield* failsWith(
        rae!.viaApi.purchase.purchase({ params: { saleId: unknownSale } }),
        SaleNotFound,
        "sale_not_found"
      )
      yield* failsWith(
        rae!.api.purchase.mine({ params: { saleId: unknownSale } }),
        SaleNotFound,
        "sale_not_found"
      )
      assert.strictEqual(yield* allOrders, before)

      const anonymous = yield* clientFor()
      const sale = yield* anonymous.sales.get({ params: { saleId } })
      assert.deepStrictEqual([sale.status, sale.remaining], ["sold_out", 0])
      yield* assertInvariants(
        saleId,
        new Map([
          [first.orderId, pia!.userId],
          [second.orderId, quin!.userId]
        ])
      )
    })
  )

  it.effect("purchase: a sale not started, over or cancelled is 409 sale_not_active with its reason", () =>
    Effect.gen(function* () {
      const sam = yield* signIn("sam@example.test")
      const boss = yield* signIn(admin)
      const startsAt = Date.now() + hour
      const later = yield* makeSale(5, { startsAt, endsAt: startsAt + hour })
      const over = yield* makeSale(5, { startsAt: Date.now() - 2 * hour, endsAt: Date.now() - hour })
      const cancelled = yield* makeSale(5)
      yield* boss.api.admin.cancelSale({ params: { saleId: cancelled } })

      const early = yield* failsWith(
        sam.api.purchase.purchase({ params: { saleId: later } }),
        SaleNotActive,
        "sale_not_active"
      )
      assert.deepStrictEqual(detailsOf(early), { reason: "not_started", startsAt: iso(startsAt) })
      const ended = yield* failsWith(
        sam.api.purchase.purchase({ params: { saleId: over } }),
        SaleNotActive,
        "sale_not_active"
      )
      assert.deepStrictEqual(detailsOf(ended), { reason: "ended" })
      const refused = yield* failsWith(
        sam.viaApi.purchase.purchase({ params: { saleId: cancelled } }),
        SaleNotActive,
        "sale_not_active"
      )
      assert.deepStrictEqual(detailsOf(refused), { reason: "cancelled" })

      for (const saleId of [later, over, cancelled]) {
        assert.deepStrictEqual(yield* ordersOf(saleId), [])
        assert.deepStrictEqual(yield* stockOf(saleId), { total: 5, available: 5 })
      }
      const views = yield* Effect.forEach([later, over, cancelled], (saleId) =>
        sam.api.sales.get({ params: { saleId } })
      )
      assert.deepStrictEqual(
        views.map((v) => v.status),
        ["upcoming", "ended", "cancelled"]
      )
    })
  )

  it.effect(
    "every signed-in endpoint answers 401 without a token or with a tampered, expired or forged one, writing nothing",
    () =>
      Effect.gen(function* () {
        const saleId = yield* makeSale(5)
        const tia = yield* signIn("tia@example.test")
        const tampered = tia.token.slice(0, -3) + (tia.token.endsWith("aaa") ? "bbb" : "aaa")
        const now = Math.floor(Date.now() / 1000)
        const claims = { email: tia.email, admin: true }
        const expired = yield* Effect.promise(() =>
          new SignJWT(claims)
            .setProtectedHeader({ alg: "HS256" })
            .setSubject(tia.userId)
            .setIssuedAt(now - 7_200)
            .setExpirationTime(now - 3_600)
            .sign(secret)
        )
        const forged = yield* Effect.promise(() =>
          new SignJWT(claims)
            .setProtectedHeader({ alg: "HS256" })
            .setSubject(tia.userId)
            .setExpirationTime("1h")
            .sign(new TextEncoder().encode("somebody else's secret, also long enough"))
        )
        const product = "7f1c2a5e-0000-4000-8000-000000000002" as ProductId
        const before = [yield* allOrders, yield* allProducts, yield* allSales]
        for (const client of [
          yield* clientFor(),
          yield* clientFor({ token: tampered }),
          yield* clientFor({ token: expired }),
          yield* clientFor({ token: forged }),
          yield* clientFor({ token: "" })
        ]) {
          const unauthorized = "unauthorized"
          yield* Effect.all(
            [
              failsWith(client.purchase.purchase({ params: { saleId } }), NotSignedIn, unauthorized),
              failsWith(client.purchase.mine({ params: { saleId } }), NotSignedIn, unauthorized),
              failsWith(client.purchase.attempt(), NotSignedIn, unauthorized),
              failsWith(client.purchase.status(), NotSignedIn, unauthorized),
              failsWith(
                client.purchase.ofUser({ params: { userId: tia.userId } }),
                NotSignedIn,
                unauthorized
              ),
              failsWith(client.admin.createProduct({ payload: { name: "x" } }), NotSignedIn, unauthorized),
              failsWith(
                client.admin.updateProduct({ params: { productId: product }, payload: { name: "y" } }),
                NotSignedIn,
                unauthorized
              ),
              failsWith(
                client.admin.createSale({
                  payload: {
                    productId: product,
                    priceCents: 1,
                    stock: 1,
                    startsAt: iso(Date.now()),
                    endsAt: iso(Date.now() + hour)
                  }
                }),
                NotSignedIn,
                unauthorized
              ),
              failsWith(
                client.admin.updateSale({ params: { saleId }, payload: { stock: 1 } }),
                NotSignedIn,
                unauthorized
              ),
              failsWith(client.admin.cancelSale({ params: { saleId } }), NotSignedIn, unauthorized),
              failsWith(client.admin.saleStats({ params: { saleId } }), NotSignedIn, unauthorized)
            ],
            { discard: true }
          )
        }
        assert.deepStrictEqual([yield* allOrders, yield* allProducts, yield* allSales], before)
        assert.deepStrictEqual(yield* stockOf(saleId), { total: 5, available: 5 })
        assert.strictEqual((yield* saleRowOf(saleId))?.status, "scheduled")
      })
  )

  it.effect("admin endpoints answer 403 to a signed-in non-admin, writing nothing", () =>
    Effect.gen(function* () {
      const uma = yield* signIn("uma@example.test")
      assert.isFalse(uma.admin)
      const saleId = yield* makeSale(5, { startsAt: Date.now() + hour, endsAt: Date.now() + 2 * hour })
      const boss = yield* signIn(admin)
      const { productId } = yield* boss.api.admin.createProduct({
        payload: { name: "Kept", description: "as is" }
      })
      const before = [yield* allOrders, yield* allProducts, yield* allSales]
      const sale = yield* saleRowOf(saleId)
      const forbidden = "forbidden"
      yield* failsWith(uma.api.admin.createProduct({ payload: { name: "Mine now" } }), NotAdmin, forbidden)
      yield* failsWith(
        uma.api.admin.updateProduct({ params: { productId }, payload: { name: "Renamed" } }),
        NotAdmin,
        forbidden
      )
      yield* failsWith(
        uma.api.admin.createSale({
          payload: {
            productId,
            priceCents: 1,
            stock: 1,
            startsAt: iso(Date.now()),
            endsAt: iso(Date.now() + hour)
          }
        }),
        NotAdmin,
        forbidden
      )
      yield* failsWith(
        uma.api.admin.updateSale({ params: { saleId }, payload: { stock: 1, priceCents: 1 } }),
        NotAdmin,
        forbidden
      )
      yield* failsWith(uma.api.admin.cancelSale({ params: { saleId } }), NotAdmin, forbidden)
      yield* failsWith(uma.api.admin.saleStats({ params: { saleId } }), NotAdmin, forbidden)
      // Not even an unknown id tells a non-admin anything.
      yield* failsWith(uma.api.admin.saleStats({ params: { saleId: unknownSale } }), NotAdmin, forbidden)

      assert.deepStrictEqual([yield* allOrders, yield* allProducts, yield* allSales], before)
      assert.deepStrictEqual(yield* saleRowOf(saleId), sale)
      assert.deepStrictEqual(yield* stockOf(saleId), { total: 5, available: 5 })
      const names = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.orDie(sql<{ name: string; description: string }>`
          SELECT name, description FROM products WHERE id = ${productId}`)
      )
      assert.deepStrictEqual(names, [{ name: "Kept", description: "as is" }])
    })
  )

  it.effect(
    "admin: create and update a product, create a sale, reschedule and restock it, refuse changes once started, cancel, stats",
    () =>
      Effect.gen(function* () {
        const boss = yield* signIn(admin)
        assert.isTrue(boss.admin)
        const vic = yield* signIn("vic@example.test")
        const wes = yield* signIn("wes@example.test")

        // Products.
        const created = yield* boss.api.admin.createProduct({
          payload: { name: "Console", description: "Limited edition" }
        })
        const product = () =>
          Effect.flatMap(SqlClient.SqlClient, (sql) =>
            Effect.orDie(sql<{ name: string; description: string }>`
            SELECT name, description FROM products WHERE id = ${created.productId}`)
          )
        assert.deepStrictEqual(yield* product(), [{ name: "Console", description: "Limited edition" }])
        const renamed = yield* boss.api.admin.updateProduct({
          params: { productId: created.productId },
          payload: { name: "Console X" }
        })
        assert.deepStrictEqual(renamed, { productId: created.productId })
        assert.deepStrictEqual(yield* product(), [{ name: "Console X", description: "Limited edition" }])
        const products = yield* allProducts
        const noProduct = yield* failsWith(
          boss.api.admin.updateProduct({ params: { productId: unknownProduct }, payload: { name: "Ghost" } }),
          ProductNotFound,
          "product_not_found"
        )
        assert.isString(noProduct.error.message)
        assert.strictEqual(yield* allProducts, products)

        // A sale: refused for an unknown product or a bad window, nothing written.
        const startsAt = Date.now() + hour
        const endsAt = startsAt + hour
        const sales = yield* allSales
        const newSale = (changes: Partial<{ productId: ProductId; startsAt: string; endsAt: string }> = {}) =>
          boss.api.admin.createSale({
            payload: {
              productId: created.productId,
              priceCents: 49_900,
              stock: 5,
              startsAt: iso(startsAt),
              endsAt: iso(endsAt),
              ...changes
            }
          })
        yield* failsWith(newSale({ productId: unknownProduct }), ProductNotFound, "product_not_found")
        const backwards = yield* failsWith(
          newSale({ startsAt: iso(endsAt), endsAt: iso(startsAt) }),
          InvalidRequest,
          "invalid_request"
        )
        assert.deepStrictEqual(detailsOf(backwards), { in: "payload", path: ["endsAt"] })
        // The client checks the payload's schema before sending; the server's own 400 for a
        // request that skips the client is in EdgeErrors.test.ts.
        const notInstant = yield* Effect.flip(newSale({ startsAt: "next tuesday" }))
        assert.match(String(notInstant), /ISO-8601 instant[\s\S]*"startsAt"/)
        assert.strictEqual(yield* allSales, sales)

        const sale = yield* newSale()
        assert.match(sale.saleId, /^[0-9a-f-]{36}$/)
        assert.strictEqual(sale.productName, "Console X")
        assert.strictEqual(sale.priceCents, 49_900)
        assert.strictEqual(sale.startsAt, iso(startsAt))
        assert.strictEqual(sale.endsAt, iso(endsAt))
        assert.strictEqual(sale.status, "upcoming")
        assert.strictEqual(sale.total, 5)
        assert.strictEqual(sale.remaining, 5)
        const saleId = sale.saleId
        assert.strictEqual(yield* allSales, sales + 1)
        assert.deepStrictEqual(yield* saleRowOf(saleId), {
          priceCents: 49_900,
          startsAt,
          endsAt,
          status: "scheduled"
        })
        assert.deepStrictEqual(yield* stockOf(saleId), { total: 5, available: 5 })

        // A buyer early: the sale's actor now holds the first schedule and stock in memory.
        const early = yield* failsWith(
          wes.api.purchase.purchase({ params: { saleId } }),
          SaleNotActive,
          "sale_not_active"
        )
        assert.deepStrictEqual(detailsOf(early), { reason: "not_started", startsAt: iso(startsAt) })

        // Before the start: reschedule, reprice, restock.
        const later = startsAt + 30 * 60_000
        const rescheduled = yield* boss.api.admin.updateSale({
          params: { saleId },
          payload: { startsAt: iso(later), priceCents: 39_900 }
        })
        assert.deepStrictEqual(rescheduled, {
          ...sale,
          startsAt: iso(later),
          priceCents: 39_900
        })
        assert.deepStrictEqual(yield* saleRowOf(saleId), {
          priceCents: 39_900,
          startsAt: later,
          endsAt,
          status: "scheduled"
        })
        const restocked = yield* boss.api.admin.updateSale({ params: { saleId }, payload: { stock: 7 } })
        assert.deepStrictEqual([restocked.total, restocked.remaining, restocked.status], [7, 7, "upcoming"])
        assert.deepStrictEqual(yield* stockOf(saleId), { total: 7, available: 7 })
        const inverted = yield* failsWith(
          boss.api.admin.updateSale({ params: { saleId }, payload: { endsAt: iso(later - 1_000) } }),
          InvalidRequest,
          "invalid_request"
        )
        assert.deepStrictEqual(detailsOf(inverted), { in: "payload", path: ["endsAt"] })
        const soon = yield* Effect.flip(
          boss.api.admin.updateSale({ params: { saleId }, payload: { startsAt: "soon" } })
        )
        assert.match(String(soon), /ISO-8601 instant[\s\S]*"startsAt"/)
        yield* failsWith(
          boss.api.admin.updateSale({ params: { saleId: unknownSale }, payload: { stock: 1 } }),
          SaleNotFound,
          "sale_not_found"
        )
        assert.strictEqual((yield* saleRowOf(saleId))?.endsAt, endsAt)

        // Brought forward to now and restocked to 2: it opens at once with the new stock.
        const now = Date.now() - 1_000
        const opened = yield* boss.api.admin.updateSale({
          params: { saleId },
          payload: { startsAt: iso(now), stock: 2 }
        })
        assert.deepStrictEqual([opened.status, opened.total, opened.remaining], ["active", 2, 2])
        const bought = ordered(yield* vic.api.purchase.purchase({ params: { saleId } }))
        assert.strictEqual(bought.saleId, saleId)
        assert.isFalse(bought.alreadyPurchased)
        assert.deepStrictEqual(yield* ordersOf(saleId), [
          { id: bought.orderId, userId: vic.userId, priceCents: 39_900 }
        ])

        // Once started, the sale cannot change; nothing is written.
        const rowBefore = yield* saleRowOf(saleId)
        yield* failsWith(
          boss.api.admin.updateSale({ params: { saleId }, payload: { stock: 10 } }),
          SaleStarted,
          "sale_started"
        )
        yield* failsWith(
          boss.api.admin.updateSale({ params: { saleId }, payload: { startsAt: iso(Date.now() + hour) } }),
          SaleStarted,
          "sale_started"
        )
        assert.deepStrictEqual(yield* saleRowOf(saleId), rowBefore)
        assert.deepStrictEqual(yield* stockOf(saleId), { total: 2, available: 1 })

        // Cancelled: no purchase goes through any more.
        const cancelled = yield* boss.api.admin.cancelSale({ params: { saleId } })
        assert.deepStrictEqual(cancelled, { ...opened, status: "cancelled", remaining: 1 })
        assert.strictEqual((yield* saleRowOf(saleId))?.status, "cancelled")
        const refused = yield* failsWith(
          wes.api.purchase.purchase({ params: { saleId } }),
          SaleNotActive,
          "sale_not_active"
        )
        assert.deepStrictEqual(detailsOf(refused), { reason: "cancelled" })
        yield* failsWith(
          boss.api.admin.updateSale({ params: { saleId }, payload: { stock: 3 } }),
          SaleCancelled,
          "sale_cancelled"
        )
        yield* failsWith(
          boss.api.admin.cancelSale({ params: { saleId: unknownSale } }),
          SaleNotFound,
          "sale_not_found"
        )
        assert.strictEqual(
          yield* count(
            (sql) => sql<{ n: number }>`
        SELECT count(*)::int AS n FROM flash_sales WHERE status = 'cancelled' AND id = ${unknownSale}`
          ),
          0
        )

        yield* flush(saleId)
        const stats = yield* boss.api.admin.saleStats({ params: { saleId } })
        assert.strictEqual(stats.saleId, saleId)
        assert.strictEqual(stats.status, "cancelled")
        assert.strictEqual(stats.total, 2)
        assert.strictEqual(stats.remaining, 1)
        assert.strictEqual(stats.attempts, 3)
        assert.deepStrictEqual(stats.byOutcome, { not_started: 1, accepted: 1, cancelled: 1 })
        assert.strictEqual(stats.committed, 1)
        assert.isNull(stats.soldOutAt)
        // One order, made in the last ten seconds, unless this machine stalled for that long.
        assert.include([0, 0.1], stats.recentPurchasesPerSecond)
        yield* failsWith(
          boss.api.admin.saleStats({ params: { saleId: unknownSale } }),
          SaleNotFound,
          "sale_not_found"
        )

        yield* assertInvariants(saleId, new Map([[bought.orderId, vic.userId]]))
      })
  )

  it.effect(
    "admin: a restock below the units already taken is 409 stock_below_sold and changes nothing",
    () =>
      Effect.gen(function* () {
        const boss = yield* signIn(admin)
        const startsAt = Date.now() + 3_600_000
        const saleId = yield* makeSale(5, { startsAt, endsAt: startsAt + 3_600_000 })
        // Units taken before the start: no purchase does this, but the stock row is the arbiter.
        yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          Effect.orDie(sql`UPDATE stocks SET available = available - 3 WHERE sale_id = ${saleId}`)
        )
        const before = yield* saleRowOf(saleId)
        const refused = yield* failsWith(
          boss.api.admin.updateSale({ params: { saleId }, payload: { stock: 2, priceCents: 1 } }),
          StockBelowSold,
          "stock_below_sold"
        )
        assert.deepStrictEqual(detailsOf(refused), { stock: 2 })
        assert.deepStrictEqual(yield* saleRowOf(saleId), before)
        assert.deepStrictEqual(yield* stockOf(saleId), { total: 5, available: 2 })
        const restocked = yield* boss.api.admin.updateSale({ params: { saleId }, payload: { stock: 3 } })
        assert.deepStrictEqual([restocked.total, restocked.remaining], [3, 0])
      })
  )

  it.effect("admin stats of a sold-out sale say when it sold out", () =>
    Effect.gen(function* () {
      const boss = yield* signIn(admin)
      const xan = yield* signIn("xan@example.test")
      const yin = yield* signIn("yin@example.test")
      const saleId = yield* makeSale(1)
      const bought = ordered(yield* xan.api.purchase.purchase({ params: { saleId } }))
      yield* failsWith(yin.api.purchase.purchase({ params: { saleId } }), SoldOut, "sold_out")
      yield* flush(saleId)
      const stats = yield* boss.api.admin.saleStats({ params: { saleId } })
      assert.deepStrictEqual(
        [stats.status, stats.total, stats.remaining, stats.committed, stats.attempts],
        ["sold_out", 1, 0, 1, 2]
      )
      assert.deepStrictEqual(stats.byOutcome, { accepted: 1, sold_out: 1 })
      assert.isString(stats.soldOutAt)
      assert.isBelow(Math.abs(Date.parse(stats.soldOutAt!) - Date.now()), 60_000)
      // Each batch's transaction time on the database, as percentiles over the sale's batches.
      const latency = stats.commitLatencyMillis
      assert.isNotNull(latency)
      assert.isAtLeast(latency!.p50, 0)
      assert.isAtLeast(latency!.p99, latency!.p50)
      assert.isBelow(latency!.p99, 10_000)
      const fresh = yield* makeSale(3)
      const untouched = yield* boss.api.admin.saleStats({ params: { saleId: fresh } })
      assert.isNull(untouched.commitLatencyMillis, "no batch committed, no latency")
      yield* assertInvariants(saleId, new Map([[bought.orderId, xan.userId]]))
    })
  )

  it.effect("current sale (seed contract): status, stats, attempt, purchase status, a user's orders", () =>
    Effect.gen(function* () {
      // Started before every other running sale of this database, so it is the current one.
      const startsAt = Date.now() - 86_400_000
      const saleId = yield* makeSale(1, { startsAt })
      const anonymous = yield* clientFor()
      const zed = yield* signIn("zed@example.test")
      const amy = yield* signIn("amy@example.test")
      const boss = yield* signIn(admin)

      const status = yield* anonymous.currentSale.status()
      assert.deepStrictEqual(status, yield* anonymous.sales.get({ params: { saleId } }))
      assert.strictEqual(status.saleId, saleId)
      assert.strictEqual(status.startsAt, iso(startsAt))
      assert.strictEqual(status.status, "active")
      assert.deepStrictEqual(yield* anonymous.currentSale.stats(), {
        saleId,
        status: "active",
        total: 1,
        sold: 0,
        remaining: 1
      })
      assert.deepStrictEqual(yield* zed.api.purchase.status(), { saleId, purchased: false, order: null })

      const attempt = ordered(yield* zed.api.purchase.attempt())
      assert.strictEqual(attempt.saleId, saleId)
      assert.strictEqual(attempt.status, "purchased")
      assert.isFalse(attempt.alreadyPurchased)
      assert.deepStrictEqual(yield* ordersOf(saleId), [
        { id: attempt.orderId, userId: zed.userId, priceCents: 12_900 }
      ])
      const after = yield* zed.api.purchase.status()
      assert.strictEqual(after.saleId, saleId)
      assert.isTrue(after.purchased)
      assert.strictEqual(after.order?.orderId, attempt.orderId)
      assert.strictEqual(after.order?.priceCents, 12_900)
      assert.deepStrictEqual(yield* anonymous.currentSale.stats(), {
        saleId,
        status: "sold_out",
        total: 1,
        sold: 1,
        remaining: 0
      })

      const again = ordered(yield* zed.api.purchase.attempt())
      assert.deepStrictEqual(again, { ...attempt, alreadyPurchased: true })
      yield* failsWith(amy.api.purchase.attempt(), SoldOut, "sold_out")
      assert.strictEqual((yield* ordersOf(saleId)).length, 1)

      // A user's orders: theirs to read, or an admin's; nobody else's.
      const own = yield* zed.api.purchase.ofUser({ params: { userId: zed.userId } })
      assert.strictEqual(own.length, 1)
      assert.deepStrictEqual(own[0], after.order)
      assert.deepStrictEqual(yield* boss.api.purchase.ofUser({ params: { userId: zed.userId } }), own)
      assert.deepStrictEqual(yield* amy.api.purchase.ofUser({ params: { userId: amy.userId } }), [])
      const denied = yield* failsWith(
        amy.api.purchase.ofUser({ params: { userId: zed.userId } }),
        NotYourOrders,
        "forbidden"
      )
      assert.notInclude(JSON.stringify(denied), attempt.orderId)

      yield* assertInvariants(saleId, new Map([[attempt.orderId, zed.userId]]))
    })
  )

  it.effect(
    "429 rate_limited once a buyer spends the per-user limit, on both routes; others unaffected",
    () =>
      Effect.gen(function* () {
        const saleId = yield* makeSale(10, { startsAt: Date.now() + hour, endsAt: Date.now() + 2 * hour })
        const bea = yield* signIn("bea@example.test")
        const cal = yield* signIn("cal@example.test")
        for (let i = 0; i < purchasesPerUser; i++) {
          yield* failsWith(
            bea.api.purchase.purchase({ params: { saleId } }),
            SaleNotActive,
            "sale_not_active"
          )
        }
        const served = fastServed.count
        const limitedFast = yield* failsWith(
          bea.api.purchase.purchase({ params: { saleId } }),
          RateLimited,
          "rate_limited"
        )
        assert.strictEqual(fastServed.count, served + 1, "the fast path answered the 429")
        const limitedApi = yield* failsWith(
          bea.viaApi.purchase.purchase({ params: { saleId } }),
          RateLimited,
          "rate_limited"
        )
        yield* failsWith(bea.api.purchase.attempt(), RateLimited, "rate_limited")
        for (const limited of [limitedFast, limitedApi]) {
          const retryAfter = detailsOf(limited).retryAfterSeconds
          assert.isNumber(retryAfter)
          assert.isAtLeast(retryAfter as number, 1)
          assert.isAtMost(retryAfter as number, 10)
        }
        // The bucket is the buyer's, not everyone's.
        yield* failsWith(cal.api.purchase.purchase({ params: { saleId } }), SaleNotActive, "sale_not_active")

        // Only the requests under the limit reached the sale.
        yield* flush(saleId)
        const attempts = yield* count(
          (sql) => sql<{ n: number }>`
        SELECT ((SELECT count(*) FROM purchase_attempts WHERE sale_id = ${saleId})
          + (SELECT coalesce(sum(count), 0) FROM purchase_refusals WHERE sale_id = ${saleId}))::int AS n`
        )
        assert.strictEqual(attempts, purchasesPerUser + 1)
        assert.deepStrictEqual(yield* ordersOf(saleId), [])
      })
  )

  it.effect("health: health, live and ready", () =>
    Effect.gen(function* () {
      const anonymous = yield* clientFor()
      assert.deepStrictEqual(yield* anonymous.health.health(), { status: "ok", database: testDatabaseMode })
      assert.deepStrictEqual(yield* anonymous.health.live(), { status: "ok" })
      assert.deepStrictEqual(yield* anonymous.health.ready(), { status: "ready" })
    })
  )
})

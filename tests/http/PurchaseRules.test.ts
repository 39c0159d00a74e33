import { assert, layer } from "@effect/vitest"
import { solveChallenge } from "altcha-lib"
import { deriveKey } from "altcha-lib/algorithms/pbkdf2"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import { ProofOfWork, type PowChallenge } from "../../src/http/ProofOfWork.ts"
import { Audit, checkInvariants, violations } from "../../src/storage/Audit.ts"
import { Products } from "../../src/storage/Products.ts"
import { Sales } from "../../src/storage/Sales.ts"
import {
  admin,
  ApiNode,
  baseUrl,
  corsOrigin,
  fastServed,
  grantAdmin,
  secret,
  signedInBuyers,
  testPassword
} from "../support/ApiNode.ts"

interface Answer {
  readonly status: number
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
  readonly body: any
}

/** The two ways into the purchase: the node:http route, and the HttpApi (a CORS request takes it). */
const routes = { fast: {}, api: { origin: corsOrigin } } as const
type Route = keyof typeof routes

const call = (
  method: string,
  path: string,
  options: { token?: string; body?: unknown; headers?: Record<string, string> } = {}
) =>
  Effect.flatMap(baseUrl, (url) =>
    Effect.promise(async (): Promise<Answer> => {
      const headers: Record<string, string> = { "content-type": "application/json", ...options.headers }
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
      const body = options.body === undefined ? null : JSON.stringify(options.body)
      const response = await fetch(url + path, { method, headers, body })
      const text = await response.text()
      return { status: response.status, body: text === "" ? undefined : JSON.parse(text) }
    })
  )

const expectError = (answer: Answer, status: number, code: string) => {
  assert.strictEqual(answer.status, status, JSON.stringify(answer.body))
  assert.strictEqual(answer.body?.error?.code, code, JSON.stringify(answer.body))
}

/** Solves a challenge as a buyer's browser would, and packs it as the `Proof-Of-Work` header wants. */
const solve = (challenge: PowChallenge) =>
  Effect.promise(async () => {
    const solution = await solveChallenge({ challenge, deriveKey })
    assert.isNotNull(solution)
    return Buffer.from(JSON.stringify({ challenge, solution })).toString("base64")
  })

const challengeFor = (saleId: SaleId, token: string) =>
  Effect.map(call("GET", `/api/sales/${saleId}/challenge`, { token }), (answer) => {
    assert.strictEqual(answer.status, 200, JSON.stringify(answer.body))
    return answer.body as PowChallenge
  })

const solvedFor = (saleId: SaleId, token: string) => Effect.flatMap(challengeFor(saleId, token), solve)

const purchase = (saleId: SaleId, token: string, route: Route, proof?: string) =>
  call("POST", `/api/sales/${saleId}/purchases`, {
    token,
    headers: { ...routes[route], ...(proof === undefined ? {} : { "proof-of-work": proof }) }
  })

const ordersOf = (saleId: SaleId, userId: UserId) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ n: number }>`
      SELECT count(*)::int AS n FROM orders WHERE sale_id = ${saleId} AND user_id = ${userId}`
    return rows[0]?.n ?? -1
  })

const makeRuledSale = (rules: { readonly powDifficulty?: number; readonly olderAccountsOnly?: boolean }) =>
  Effect.gen(function* () {
    const productId = yield* (yield* Products).create("Console", "Rules apply")
    const now = Date.now()
    return yield* (yield* Sales).create({
      productId,
      priceCents: 49_900,
      stock: 50,
      startsAt: now - 60_000,
      endsAt: now + 3_600_000,
      ...rules
    })
  })

const login = (email: string) =>
  Effect.gen(function* () {
    const body = { email, password: testPassword }
    const signedUp = yield* call("POST", "/api/auth/signup", { body })
    assert.include([201, 409], signedUp.status, JSON.stringify(signedUp.body))
    if (email === admin) yield* grantAdmin(email)
    const answer = yield* call("POST", "/api/auth/login", { body })
    assert.strictEqual(answer.status, 200, JSON.stringify(answer.body))
    return answer.body as { token: string; userId: UserId }
  })

/** Every 2xx the test saw has its row, nothing oversold, nobody twice, no row nobody was told of. */
const checkSale = (
  saleId: SaleId,
  answers: ReadonlyArray<{ readonly userId: UserId; readonly answer: Answer }>
) =>
  Effect.gen(function* () {
    const confirmed = new Map<OrderId, UserId>()
    for (const { userId, answer } of answers)
      if (answer.status === 200 || answer.status === 201) confirmed.set(answer.body.orderId, userId)
    const report = checkInvariants(yield* Effect.flatMap(Audit, (audit) => audit.read(saleId)), confirmed)
    assert.strictEqual(violations(report), 0, JSON.stringify(report))
    assert.strictEqual(report.unconfirmedRows, 0, JSON.stringify(report))
    return report
  })

const buyers = (prefix: string, count: number) =>
  signedInBuyers(Array.from({ length: count }, (_, i) => `${prefix}-${i}-${Date.now()}@example.test`))

layer(ApiNode, { timeout: 120_000, excludeTestServices: true })("purchase rules over loopback", (it) => {
  it.effect(
    "an admin's sale with proof of work: shown, solved, bought; the same sale without it is unchanged",
    () =>
      Effect.gen(function* () {
        const { token: adminToken } = yield* login(admin)
        const productId = yield* (yield* Products).create("Sneaker", "Limited")
        const window = {
          startsAt: new Date(Date.now() - 1_000).toISOString(),
          endsAt: new Date(Date.now() + 3_600_000).toISOString()
        }
        const created = yield* call("POST", "/api/admin/sales", {
          token: adminToken,
          body: { productId, priceCents: 100, stock: 3, ...window, powDifficulty: 20 }
        })
        assert.strictEqual(created.status, 201, JSON.stringify(created.body))
        assert.strictEqual(created.body.powDifficulty, 20)
        assert.isNull(created.body.accountsCreatedBefore)
        const saleId = created.body.saleId as SaleId
        const shown = yield* call("GET", `/api/sales/${saleId}`)
        assert.strictEqual(shown.body.powDifficulty, 20)

        const plain = yield* call("POST", "/api/admin/sales", {
          token: adminToken,
          body: { productId, priceCents: 100, stock: 3, ...window }
        })
        assert.strictEqual(plain.status, 201)
        assert.isNull(plain.body.powDifficulty)
        const plainId = plain.body.saleId as SaleId

        const tooHard = yield* call("POST", "/api/admin/sales", {
          token: adminToken,
          body: { productId, priceCents: 100, stock: 3, ...window, powDifficulty: 0 }
        })
        expectError(tooHard, 400, "invalid_request")

        const answers: Array<{ userId: UserId; answer: Answer }> = []
        const [a, b, c, d] = yield* buyers("pow-ok", 4)
        for (const [buyer, route] of [
          [a!, "api"],
          [b!, "fast"]
        ] as const) {
          const proof = yield* solvedFor(saleId, buyer.token)
          const served = fastServed.count
          const answer = yield* purchase(saleId, buyer.token, route, proof)
          assert.strictEqual(answer.status, 201, `${route}: ${JSON.stringify(answer.body)}`)
          assert.strictEqual(fastServed.count, served + (route === "fast" ? 1 : 0), "the route taken")
          answers.push({ userId: buyer.userId, answer })
        }
        // Without proof of work: no challenge to ask for, and a purchase as before on both routes.
        expectError(
          yield* call("GET", `/api/sales/${plainId}/challenge`, { token: c!.token }),
          409,
          "proof_of_work_not_required"
        )
        const plainAnswers = [
          { userId: c!.userId, answer: yield* purchase(plainId, c!.token, "api") },
          { userId: d!.userId, answer: yield* purchase(plainId, d!.token, "fast") }
        ]
        for (const { answer } of plainAnswers)
          assert.strictEqual(answer.status, 201, JSON.stringify(answer.body))
        assert.strictEqual((yield* checkSale(saleId, answers)).committed, 2)
        assert.strictEqual((yield* checkSale(plainId, plainAnswers)).committed, 2)
      })
  )

  it.effect("the seed's attempt route asks the current sale's proof of work too", () =>
    Effect.gen(function* () {
      // Started before every other sale of this file: the "current" one.
      const productId = yield* (yield* Products).create("Seed route", "Current")
      const now = Date.now()
      const saleId = yield* (yield* Sales).create({
        productId,
        priceCents: 100,
        stock: 5,
        startsAt: now - 600_000,
        endsAt: now + 3_600_000,
        powDifficulty: 10
      })
      const [buyer] = yield* buyers("seed-route", 1)
      const missing = yield* call("POST", "/api/purchase/attempt", { token: buyer!.token })
      expectError(missing, 403, "proof_of_work_required")
      const proof = yield* solvedFor(saleId, buyer!.token)
      const bought = yield* call("POST", "/api/purchase/attempt", {
        token: buyer!.token,
        headers: { "proof-of-work": proof }
      })
      assert.strictEqual(bought.status, 201, JSON.stringify(bought.body))
      assert.strictEqual(bought.body.saleId, saleId)
      assert.strictEqual((yield* checkSale(saleId, [{ userId: buyer!.userId, answer: bought }])).committed, 1)
    })
  )

  it.effect(
    "refuses a missing, tampered, expired, foreign or reused solution on both routes, and stores nothing",
    () =>
      Effect.gen(function* () {
        const saleId = yield* makeRuledSale({ powDifficulty: 10 })
        const otherSale = yield* makeRuledSale({ powDifficulty: 10 })
        // A node of the same deployment whose challenges live one second.
        const shortLived = ProofOfWork.make(secret, { ttlSeconds: 1 })
        const answers: Array<{ userId: UserId; answer: Answer }> = []
        for (const route of ["fast", "api"] as const) {
          const [missing, tampered, expired, foreign, stranger, elsewhere, reuser] = yield* buyers(
            `pow-${route}`,
            7
          )
          const refused = (
            buyer: { readonly userId: UserId },
            answer: Answer,
            status: number,
            code: string
          ) =>
            Effect.gen(function* () {
              expectError(answer, status, `${code}`)
              assert.strictEqual(yield* ordersOf(saleId, buyer.userId), 0, `${route} ${code}: no order row`)
              answers.push({ userId: buyer.userId, answer })
            })
          yield* refused(
            missing!,
            yield* purchase(saleId, missing!.token, route),
            403,
            "proof_of_work_required"
          )

          const good = yield* solvedFor(saleId, tampered!.token)
          const decoded = JSON.parse(Buffer.from(good, "base64").toString("utf8"))
          const badKey = { ...decoded, solution: { ...decoded.solution, derivedKey: "00".repeat(32) } }
          const pack = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64")
          yield* refused(
            tampered!,
            yield* purchase(saleId, tampered!.token, route, pack(badKey)),
            403,
            "proof_of_work_invalid"
          )
          const cheaper = {
            ...decoded,
            challenge: { ...decoded.challenge, parameters: { ...decoded.challenge.parameters, cost: 1 } }
          }
          yield* refused(
            tampered!,
            yield* purchase(saleId, tampered!.token, route, pack(cheaper)),
            403,
            "proof_of_work_invalid"
          )
          yield* refused(
            tampered!,
            yield* purchase(saleId, tampered!.token, route, "not base64 json"),
            403,
            "proof_of_work_invalid"
          )

          const stale = yield* shortLived.issue(saleId, expired!.userId, 10)
          const staleProof = yield* solve(stale)
          const expiresAt = (stale.parameters.expiresAt ?? 0) * 1_000
          // Waits for the challenge's own expiry instant, not for a guessed duration.
          yield* Effect.sleep(Math.max(0, expiresAt - Date.now() + 20))
          yield* refused(
            expired!,
            yield* purchase(saleId, expired!.token, route, staleProof),
            403,
            "proof_of_work_expired"
          )

          const strangers = yield* solvedFor(saleId, stranger!.token)
          yield* refused(
            foreign!,
            yield* purchase(saleId, foreign!.token, route, strangers),
            403,
            "proof_of_work_foreign"
          )
          const otherSales = yield* solvedFor(otherSale, elsewhere!.token)
          yield* refused(
            elsewhere!,
            yield* purchase(saleId, elsewhere!.token, route, otherSales),
            403,
            "proof_of_work_foreign"
          )
          // A tampered binding fails the challenge's signature.
          const rebound = JSON.parse(Buffer.from(strangers, "base64").toString("utf8"))
          rebound.challenge.parameters.data.userId = foreign!.userId
          yield* refused(
            foreign!,
            yield* purchase(saleId, foreign!.token, route, pack(rebound)),
            403,
            "proof_of_work_invalid"
          )

          const once = yield* solvedFor(saleId, reuser!.token)
          const first = yield* purchase(saleId, reuser!.token, route, once)
          assert.strictEqual(first.status, 201, JSON.stringify(first.body))
          answers.push({ userId: reuser!.userId, answer: first })
          const again = yield* purchase(saleId, reuser!.token, route, once)
          expectError(again, 409, "proof_of_work_reused")
          assert.strictEqual(yield* ordersOf(saleId, reuser!.userId), 1)
        }
        const report = yield* checkSale(saleId, answers)
        assert.strictEqual(report.committed, 2)
        assert.strictEqual((yield* checkSale(otherSale, [])).committed, 0)
      })
  )

  it.effect("admits only accounts created before the sale when the sale says so", () =>
    Effect.gen(function* () {
      const before = yield* login(`older-${Date.now()}@example.test`)
      const [olderNoClaim] = yield* buyers("older-no-claim", 1)
      const saleId = yield* makeRuledSale({ olderAccountsOnly: true })
      const withPow = yield* makeRuledSale({ olderAccountsOnly: true, powDifficulty: 10 })
      const after = yield* login(`newer-${Date.now()}@example.test`)
      const [newerNoClaim] = yield* buyers("newer-no-claim", 1)

      const shown = yield* call("GET", `/api/sales/${saleId}`)
      assert.isString(shown.body.accountsCreatedBefore)

      const answers: Array<{ userId: UserId; answer: Answer }> = []
      // Both routes, with the creation time from the token's claim and, for tokens without it, read once.
      for (const [buyer, route] of [
        [after, "api"],
        [after, "fast"],
        [newerNoClaim!, "api"],
        [newerNoClaim!, "fast"]
      ] as const) {
        const answer = yield* purchase(saleId, buyer.token, route)
        expectError(answer, 403, "account_too_new")
        assert.strictEqual(yield* ordersOf(saleId, buyer.userId), 0)
        answers.push({ userId: buyer.userId, answer })
      }
      expectError(
        yield* call("GET", `/api/sales/${withPow}/challenge`, { token: after.token }),
        403,
        "account_too_new"
      )

      for (const [buyer, route] of [
        [before, "fast"],
        [olderNoClaim!, "api"]
      ] as const) {
        const answer = yield* purchase(saleId, buyer.token, route)
        assert.strictEqual(answer.status, 201, JSON.stringify(answer.body))
        answers.push({ userId: buyer.userId, answer })
      }
      const powAnswer = yield* purchase(
        withPow,
        before.token,
        "fast",
        yield* solvedFor(withPow, before.token)
      )
      assert.strictEqual(powAnswer.status, 201, JSON.stringify(powAnswer.body))
      assert.strictEqual((yield* checkSale(saleId, answers)).committed, 2)
      assert.strictEqual(
        (yield* checkSale(withPow, [{ userId: before.userId, answer: powAnswer }])).committed,
        1
      )
    })
  )
})

import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Redis } from "ioredis"
import { randomBytes } from "node:crypto"
import { stockKey } from "../../bench/baselines/redis-keys.ts"
import { serve } from "../../bench/serve.ts"
import { signTokens } from "../../bench/tokens.ts"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import { Audit, checkInvariants, violations } from "../../src/storage/Audit.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"
import { freshServerStorage } from "../support/TestDatabase.ts"

const secret = "baseline test secret"

interface Answer {
  readonly orderId?: string
  readonly alreadyPurchased?: boolean
  readonly error?: { readonly code: string }
}

/** The Redis design's stock of record, read back, and its keys removed when the scope closes. */
const redisStock = (prefix: string) =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379")),
      (redis) =>
        Effect.promise(async () => {
          const keys = await redis.keys(`${prefix}*`)
          if (keys.length > 0) await redis.del(...keys)
          redis.disconnect()
        })
    ),
    (redis) => (saleId: SaleId) =>
      Effect.promise(async () => Number(await redis.get(stockKey(prefix, saleId))))
  )

/**
 * Each lock-based baseline answers like MinCommerce (the same codes and bodies for the same
 * cases) and writes the orders the invariant checker reads: otherwise the bench would compare
 * unlike things.
 */
describe.each(["row-lock", "advisory-lock", "redis-decrement"])("baseline %s", (design) => {
  it.live(
    "validates like MinCommerce, sells each unit once and never to a buyer twice",
    () =>
      Effect.gen(function* () {
        const { url: databaseUrl, storage } = yield* freshServerStorage()
        const inStorage = Effect.provideContext(storage)
        const users = yield* makeUsers(3).pipe(inStorage)
        const [ann, bob, cy] = signTokens(users, secret)
        const saleId = yield* makeSale(2).pipe(inStorage)
        const later = yield* makeSale(5, {
          startsAt: Date.now() + 3_600_000,
          endsAt: Date.now() + 7_200_000
        }).pipe(inStorage)
        const prefix = `test:${randomBytes(4).toString("hex")}:`
        const remainingInRedis = yield* redisStock(prefix)
        const server = yield* serve(`bench/baselines/${design}.ts`, {
          DATABASE_URL: databaseUrl,
          JWT_SECRET: secret,
          PORT: "0",
          POOL_SIZE: "4",
          REDIS_PREFIX: prefix
        })
        const post = (sale: string, token?: string) =>
          Effect.promise(async () => {
            const response = await fetch(`${server.url}/api/sales/${sale}/purchases`, {
              method: "POST",
              headers: {
                "content-type": "application/json",
                ...(token === undefined ? {} : { authorization: `Bearer ${token}` })
              },
              body: '{"quantity":1}'
            })
            return { status: response.status, body: (await response.json()) as Answer }
          })

        assert.strictEqual((yield* post(saleId)).status, 401)
        assert.strictEqual((yield* post(saleId, `${ann}x`)).status, 401)
        assert.strictEqual((yield* post("not-a-uuid", ann)).status, 400)
        const unknown = yield* post("00000000-0000-4000-8000-000000000000", ann)
        assert.strictEqual(unknown.status, 404)
        assert.strictEqual(unknown.body.error?.code, "sale_not_found")
        const early = yield* post(later, ann)
        assert.strictEqual(early.status, 409)
        assert.strictEqual(early.body.error?.code, "sale_not_active")

        const first = yield* post(saleId, ann)
        assert.strictEqual(first.status, 201)
        assert.strictEqual(first.body.alreadyPurchased, false)
        const again = yield* post(saleId, ann)
        assert.strictEqual(again.status, 200)
        assert.strictEqual(again.body.orderId, first.body.orderId)
        const second = yield* post(saleId, bob)
        assert.strictEqual(second.status, 201)
        const none = yield* post(saleId, cy)
        assert.strictEqual(none.status, 409)
        assert.strictEqual(none.body.error?.code, "sold_out")

        const record = yield* Effect.flatMap(Audit, (audit) => audit.read(saleId)).pipe(inStorage)
        const confirmed = new Map<OrderId, UserId>([
          [first.body.orderId as OrderId, users[0]!],
          [second.body.orderId as OrderId, users[1]!]
        ])
        // The Redis design keeps its stock of record in Redis.
        const available = design === "redis-decrement" ? yield* remainingInRedis(saleId) : record.available
        const report = checkInvariants({ ...record, available }, confirmed)
        assert.strictEqual(report.committed, 2)
        assert.strictEqual(violations(report), 0)
      }).pipe(Effect.scoped),
    60_000
  )
})

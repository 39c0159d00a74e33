import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Redacted } from "effect"
import { Redis } from "ioredis"
import { randomBytes, randomUUID } from "node:crypto"
import { Ownership } from "../../src/cluster/Ownership.ts"
import type { SaleId } from "../../src/domain/Ids.ts"
import { sharedRedisUrl, waitFor } from "./Harness.ts"

const leaseTtlMillis = 600

/** Two nodes' ownership services on one Redis key prefix, as two processes would have them. */
const twoNodes = Effect.gen(function* () {
  const prefix = `mincommerce-test-${randomBytes(4).toString("hex")}:`
  const build = (nodeId: string) =>
    Effect.map(
      Layer.build(Ownership.redis({ url: Redacted.make(sharedRedisUrl), prefix, nodeId, leaseTtlMillis })),
      (context) => Context.get(context, Ownership)
    )
  const a = yield* build("node-a")
  const b = yield* build("node-b")
  const redis = yield* Effect.acquireRelease(
    Effect.sync(() => new Redis(sharedRedisUrl)),
    (client) =>
      Effect.promise(async () => {
        const keys = await client.keys(`${prefix}*`)
        if (keys.length > 0) await client.del(...keys)
        client.disconnect()
      })
  )
  return { a, b, redis, prefix }
})

const sale = () => randomUUID() as SaleId

describe("Ownership over Redis", () => {
  it.live("one holder per lease; the other node routes to it; release hands it over", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoNodes
      yield* a.advertise("127.0.0.1:4101")
      const saleId = sale()
      assert.isTrue(yield* a.acquire(saleId))
      assert.isFalse(yield* b.acquire(saleId))
      assert.deepStrictEqual(yield* a.lookup(saleId), { _tag: "Local" })
      assert.deepStrictEqual(yield* b.lookup(saleId), {
        _tag: "Remote",
        nodeId: "node-a",
        address: "127.0.0.1:4101"
      })
      // The route is cached: no round trip for the next purchase.
      assert.deepStrictEqual(b.cached(saleId), {
        _tag: "Remote",
        nodeId: "node-a",
        address: "127.0.0.1:4101"
      })

      yield* a.release(saleId)
      // The release is published: the other node drops its route without being asked.
      yield* Effect.promise(() =>
        waitFor("the route to be dropped", () => (b.cached(saleId) === undefined ? true : undefined))
      )
      assert.deepStrictEqual(yield* b.lookup(saleId), { _tag: "Vacant" })
      assert.isTrue(yield* b.acquire(saleId))
      assert.deepStrictEqual(a.held(), [])
      assert.deepStrictEqual(b.held(), [saleId])
    }).pipe(Effect.scoped)
  )

  it.live("a held lease outlives its TTL only by renewal; renewed by its holder alone", () =>
    Effect.gen(function* () {
      const { a, b, redis, prefix } = yield* twoNodes
      const saleId = sale()
      assert.isTrue(yield* a.acquire(saleId))
      yield* Effect.sleep(leaseTtlMillis * 3)
      assert.strictEqual(yield* Effect.promise(() => redis.get(`${prefix}lease:${saleId}`)), "node-a")
      assert.isFalse(yield* b.acquire(saleId))
      // Releasing a lease one does not hold changes nothing.
      yield* b.release(saleId)
      assert.strictEqual(yield* Effect.promise(() => redis.get(`${prefix}lease:${saleId}`)), "node-a")
    }).pipe(Effect.scoped)
  )

  it.live("a lease that vanishes (Redis flushed) is reported lost; another node's takeover too", () =>
    Effect.gen(function* () {
      const { a, b, redis, prefix } = yield* twoNodes
      const lost: Array<SaleId> = []
      a.onLost((saleId) => lost.push(saleId))
      const flushed = sale()
      const taken = sale()
      assert.isTrue(yield* a.acquire(flushed))
      assert.isTrue(yield* a.acquire(taken))

      yield* Effect.promise(() => redis.del(`${prefix}lease:${flushed}`))
      yield* Effect.promise(() =>
        waitFor("the flushed lease to be lost", () => (lost.includes(flushed) ? true : undefined), 5_000)
      )

      // The lease expires without the holder knowing (say, it was paused) and another node takes it.
      yield* Effect.promise(() => redis.del(`${prefix}lease:${taken}`))
      assert.isTrue(yield* b.acquire(taken))
      yield* Effect.promise(() =>
        waitFor("the taken lease to be lost", () => (lost.includes(taken) ? true : undefined), 5_000)
      )
      assert.deepStrictEqual(a.held(), [])
    }).pipe(Effect.scoped)
  )
})

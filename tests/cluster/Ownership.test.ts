import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Redacted } from "effect"
import { Redis } from "ioredis"
import { randomBytes, randomUUID } from "node:crypto"
import { Directory } from "../../src/cluster/Directory.ts"
import { Leases } from "../../src/cluster/Leases.ts"
import { Ownership, type Route } from "../../src/cluster/Ownership.ts"
import type { SaleId } from "../../src/domain/Ids.ts"
import { sharedRedisUrl, waitFor } from "./Harness.ts"

const leaseTtlMillis = 600

/** Two nodes' ownership services on one Redis key prefix, as two processes would have them. */
const twoNodes = Effect.gen(function* () {
  const prefix = `mincommerce-test-${randomBytes(4).toString("hex")}:`
  const build = (nodeId: string) =>
    Effect.map(
      Layer.build(Ownership.redis({ url: Redacted.make(sharedRedisUrl), prefix, nodeId, leaseTtlMillis })),
      (context) => {
        const routes = Context.get(context, Ownership)
        const leases = Context.get(context, Leases)
        const directory = Context.get(context, Directory)
        return {
          ...leases,
          advertise: directory.advertise,
          lookup: routes.lookup,
          cached: (saleId: SaleId) => routes.cached(saleId, Date.now())
        }
      }
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

/** A route without the lease expiry it carries. */
const where = (route: Route | undefined) => {
  if (route?._tag !== "Remote") return route
  const { expiresAt, ...rest } = route
  assert.isAbove(expiresAt, Date.now())
  return rest
}

describe("Ownership over Redis", () => {
  it.live("one holder per lease; the other node routes to it; release hands it over", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoNodes
      yield* a.advertise("127.0.0.1:4101")
      const saleId = sale()
      assert.isTrue(yield* a.acquire(saleId))
      assert.isFalse(yield* b.acquire(saleId))
      assert.deepStrictEqual(yield* a.lookup(saleId), { _tag: "Local" })
      assert.deepStrictEqual(where(yield* b.lookup(saleId)), {
        _tag: "Remote",
        nodeId: "node-a",
        address: "127.0.0.1:4101"
      })
      // The route is cached: no round trip for the next purchase.
      assert.deepStrictEqual(where(b.cached(saleId)), {
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

  it.live(
    "a lease that vanishes (Redis flushed) is taken again by its holder; one another node took is lost",
    () =>
      Effect.gen(function* () {
        const { a, b, redis, prefix } = yield* twoNodes
        const lost: Array<SaleId> = []
        a.onLost((saleId) => lost.push(saleId))
        const flushed = sale()
        const taken = sale()
        assert.isTrue(yield* a.acquire(flushed))
        assert.isTrue(yield* a.acquire(taken))

        // Redis forgot it, nobody else claimed it: the holder's epoch still holds, it keeps the sale.
        yield* Effect.promise(() => redis.del(`${prefix}lease:${flushed}`))
        yield* Effect.promise(() =>
          waitFor("the flushed lease to be taken again", async () =>
            (await redis.get(`${prefix}lease:${flushed}`)) === "node-a" ? true : undefined
          )
        )

        // The lease expires without the holder knowing (say, it was paused) and another node takes it.
        yield* Effect.promise(() => redis.del(`${prefix}lease:${taken}`))
        assert.isTrue(yield* b.acquire(taken))
        yield* Effect.promise(() =>
          waitFor("the taken lease to be lost", () => (lost.includes(taken) ? true : undefined), 5_000)
        )
        assert.deepStrictEqual(a.held(), [flushed])
        assert.deepStrictEqual(lost, [taken])
      }).pipe(Effect.scoped)
  )

  it.live("a route lasts as long as the lease it was read with", () =>
    Effect.gen(function* () {
      const { a, b } = yield* twoNodes
      yield* a.advertise("127.0.0.1:4102")
      const saleId = sale()
      assert.isTrue(yield* a.acquire(saleId))
      const route = yield* b.lookup(saleId)
      assert.strictEqual(route._tag, "Remote")
      if (route._tag !== "Remote") return
      assert.isAtMost(route.expiresAt, Date.now() + leaseTtlMillis)
      // Past the lease it was read with, the route is not used without asking again.
      yield* Effect.sleep(Math.max(0, route.expiresAt - Date.now()) + 10)
      assert.isUndefined(b.cached(saleId))
      assert.strictEqual((yield* b.lookup(saleId))._tag, "Remote")
    }).pipe(Effect.scoped)
  )
})

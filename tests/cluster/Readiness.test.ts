import { assert, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { Ownership } from "../../src/cluster/Ownership.ts"
import { privateRedis, waitFor } from "./Harness.ts"

// GET /api/health/ready asks the ownership directory whether it can decide who owns a sale.
it.effect(
  "ownership is ready while Redis answers, not while it is down, and again once it is back",
  () =>
    Effect.gen(function* () {
      const redis = yield* Effect.acquireRelease(
        Effect.promise(() => privateRedis()),
        (server) => Effect.promise(() => server.kill())
      )
      yield* Effect.gen(function* () {
        const ownership = yield* Ownership
        assert.isTrue(yield* ownership.ready)
        yield* Effect.promise(() => redis.kill())
        assert.isFalse(yield* ownership.ready)
        yield* Effect.promise(() => redis.start())
        const back = yield* Effect.promise(() =>
          waitFor("ownership to be ready again", () =>
            Effect.runPromise(ownership.ready).then((ok) => (ok ? ok : undefined))
          )
        )
        assert.isTrue(back)
      }).pipe(
        Effect.provide(
          Ownership.redis({
            url: Redacted.make(redis.url),
            prefix: `readiness-${process.pid}:`,
            nodeId: "readiness",
            leaseTtlMillis: 1_500
          })
        )
      )
      const alone = yield* Effect.gen(function* () {
        const ownership = yield* Ownership
        return yield* ownership.ready
      }).pipe(Effect.provide(Ownership.local("alone")))
      assert.isTrue(alone)
    }).pipe(Effect.scoped),
  30_000
)

import { assert, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { Ownership } from "../../src/cluster/Ownership.ts"
import { privateRedis, waitFor } from "./Harness.ts"

// GET /api/health/ready asks whether Redis answers: without it the node is degraded (owned
// sales and known routes still served), not out.
it.effect(
  "ownership is reachable while Redis answers, not while it is down, and again once it is back",
  () =>
    Effect.gen(function* () {
      const redis = yield* Effect.acquireRelease(
        Effect.promise(() => privateRedis()),
        (server) => Effect.promise(() => server.kill())
      )
      yield* Effect.gen(function* () {
        const ownership = yield* Ownership
        assert.isTrue(yield* ownership.reachable)
        yield* Effect.promise(() => redis.kill())
        assert.isFalse(yield* ownership.reachable)
        yield* Effect.promise(() => redis.start())
        const back = yield* Effect.promise(() =>
          waitFor("ownership to be reachable again", () =>
            Effect.runPromise(ownership.reachable).then((ok) => (ok ? ok : undefined))
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
        return yield* ownership.reachable
      }).pipe(Effect.provide(Ownership.local("alone")))
      assert.isTrue(alone)
    }).pipe(Effect.scoped),
  30_000
)

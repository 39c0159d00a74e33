import { Context, Effect, Layer, Redacted, Schema } from "effect"
import { Redis } from "ioredis"

/** Redis did not answer (down, unreachable, too slow): nothing is known about what it holds. */
export class RedisUnavailable extends Schema.TaggedError<RedisUnavailable>()("RedisUnavailable", {
  operation: Schema.String,
  message: Schema.String
}) {}

/**
 * The node's two Redis connections for as long as the node runs: one for commands, one for
 * subscriptions (a subscribed connection takes no other command). Every failure is a
 * `RedisUnavailable`; nothing here decides what a failure means for a sale.
 */
export class RedisConnection extends Context.Service<
  RedisConnection,
  {
    readonly client: Redis
    readonly subscriber: Redis
    /** Runs one command (or pipeline) on `client`, its failure typed. */
    readonly call: <A>(
      operation: string,
      run: (client: Redis) => Promise<A>
    ) => Effect.Effect<A, RedisUnavailable>
    /** Whether the command connection is up now, as last seen: no round trip. */
    readonly connected: () => boolean
  }
>()("mincommerce/cluster/RedisConnection") {
  static readonly layer = (options: {
    readonly url: Redacted.Redacted
    readonly commandTimeoutMillis: number
  }) =>
    Layer.effect(
      RedisConnection,
      Effect.gen(function* () {
        const open = (offlineQueue: boolean) =>
          Effect.promise(async () => {
            const redis = new Redis(Redacted.value(options.url), {
              lazyConnect: true,
              maxRetriesPerRequest: 1,
              commandTimeout: options.commandTimeoutMillis,
              retryStrategy: (attempt: number) => Math.min(50 * attempt, 500),
              enableOfflineQueue: offlineQueue
            })
            // Failures reach callers as RedisUnavailable; the event would only crash the node.
            redis.on("error", () => {})
            await redis.connect()
            return redis
          })
        // Fail at once while disconnected: a caller gets a typed failure, never a hang.
        const client = yield* Effect.acquireRelease(open(false), (redis) =>
          Effect.promise(() => redis.quit().catch(() => redis.disconnect()))
        )
        // Not QUIT: with Redis away it would wait for a reconnection that may never come.
        const subscriber = yield* Effect.acquireRelease(open(true), (redis) =>
          Effect.sync(() => redis.disconnect())
        )
        const call = <A>(operation: string, run: (redis: Redis) => Promise<A>) =>
          Effect.tryPromise({
            try: () => run(client),
            catch: (cause) => new RedisUnavailable({ operation, message: String(cause) })
          })
        return RedisConnection.of({
          client,
          subscriber,
          call,
          connected: () => client.status === "ready"
        })
      })
    )
}

import { Context, Effect, Layer, Schedule } from "effect"
import { RedisConnection, type RedisUnavailable } from "./RedisConnection.ts"

/** Where each node takes forwarded purchases: node id → host:port, kept alive by heartbeats. */
export class Directory extends Context.Service<
  Directory,
  {
    /** Puts this node's forward address in the directory, and keeps it there while the node runs. */
    readonly advertise: (address: string) => Effect.Effect<void>
    /** The node's forward address, undefined when it left (or stopped beating). */
    readonly address: (nodeId: string) => Effect.Effect<string | undefined, RedisUnavailable>
    /** Whether the directory answers now (a round trip). */
    readonly reachable: Effect.Effect<boolean>
  }
>()("mincommerce/cluster/Directory") {
  /** One node: nobody to forward to. */
  static readonly local = Layer.succeed(
    Directory,
    Directory.of({
      advertise: () => Effect.void,
      address: () => Effect.succeed(undefined),
      reachable: Effect.succeed(true)
    })
  )

  /** `<prefix>node:<nodeId>` = forward address, with the lease TTL, refreshed every third of it. */
  static readonly redis = (options: {
    readonly prefix: string
    readonly nodeId: string
    readonly leaseTtlMillis: number
  }) =>
    Layer.effect(
      Directory,
      Effect.gen(function* () {
        const redis = yield* RedisConnection
        const { prefix, nodeId, leaseTtlMillis: ttl } = options
        const nodeKey = (id: string) => `${prefix}node:${id}`
        let advertised: string | undefined
        const beat = Effect.suspend(() =>
          advertised === undefined
            ? Effect.void
            : redis.call("node heartbeat", (client) =>
                client.set(nodeKey(nodeId), advertised ?? "", "PX", ttl)
              )
        )
        yield* Effect.forkScoped(
          beat.pipe(Effect.ignore, Effect.repeat(Schedule.spaced(Math.max(50, Math.floor(ttl / 3)))))
        )
        yield* Effect.addFinalizer(() =>
          redis.call("node leave", (client) => client.del(nodeKey(nodeId))).pipe(Effect.ignore)
        )
        return Directory.of({
          advertise: (address) =>
            Effect.suspend(() => {
              advertised = address
              return beat.pipe(
                Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo({ duration: "10 seconds" }))),
                Effect.orDie
              )
            }),
          address: (id) =>
            redis
              .call("node lookup", (client) => client.get(nodeKey(id)))
              .pipe(Effect.map((a) => a ?? undefined)),
          reachable: redis
            .call("ping", (client) => client.ping())
            .pipe(
              Effect.timeout("1 second"),
              Effect.as(true),
              Effect.orElseSucceed(() => false)
            )
        })
      })
    )
}

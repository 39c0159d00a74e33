import { Context, Effect, Layer, Redacted, Schedule, Schema } from "effect"
import { Redis } from "ioredis"
import type { SaleId } from "../domain/Ids.ts"

/** Where a sale's purchases go, as far as this node knows. */
export type Route =
  | { readonly _tag: "Local" }
  | { readonly _tag: "Remote"; readonly nodeId: string; readonly address: string | undefined }
  | { readonly _tag: "Vacant" }

/** The directory (Redis) could not be asked: nobody can say who owns the sale right now. */
export class DirectoryUnavailable extends Schema.TaggedError<DirectoryUnavailable>()("DirectoryUnavailable", {
  message: Schema.String
}) {}

const local: Route = { _tag: "Local" }
const vacant: Route = { _tag: "Vacant" }

/**
 * Who owns which sale. A lease says which node should serve a sale; it routes, it does not
 * make anyone safe: the fencing epoch the owner then mints in PostgreSQL does that.
 */
export class Ownership extends Context.Service<
  Ownership,
  {
    readonly nodeId: string
    /** The route as last learned, without a round trip; undefined when not known. */
    readonly cached: (saleId: SaleId) => Route | undefined
    /** Asks the directory who owns the sale now, and remembers the answer. */
    readonly lookup: (saleId: SaleId) => Effect.Effect<Route, DirectoryUnavailable>
    /** Drops a route found stale (a "not owner" answer, an unreachable owner). */
    readonly forget: (saleId: SaleId) => void
    /** Tries to take the sale's lease; true when this node now holds it. */
    readonly acquire: (saleId: SaleId) => Effect.Effect<boolean, DirectoryUnavailable>
    /** Lets go of the lease if this node still holds it, and tells the other nodes at once. */
    readonly release: (saleId: SaleId) => Effect.Effect<void>
    /** `listener` is called with each sale whose lease this node held and lost. */
    readonly onLost: (listener: (saleId: SaleId) => void) => void
    /** Puts this node's forward address in the node directory, kept alive by heartbeats. */
    readonly advertise: (address: string) => Effect.Effect<void>
    /** Sales whose lease this node holds. */
    readonly held: () => ReadonlyArray<SaleId>
    /** Whether ownership can be decided now: always alone, a prompt Redis answer with many. */
    readonly ready: Effect.Effect<boolean>
  }
>()("mincommerce/cluster/Ownership") {
  /** One node, no Redis: this node owns every sale it is asked about. */
  static readonly local = (nodeId: string) =>
    Layer.sync(Ownership, () => {
      const held = new Set<SaleId>()
      return Ownership.of({
        nodeId,
        cached: (saleId) => (held.has(saleId) ? local : undefined),
        lookup: (saleId) => Effect.succeed(held.has(saleId) ? local : vacant),
        forget: () => {},
        acquire: (saleId) =>
          Effect.sync(() => {
            held.add(saleId)
            return true
          }),
        release: (saleId) =>
          Effect.sync(() => {
            held.delete(saleId)
          }),
        onLost: () => {},
        advertise: () => Effect.void,
        held: () => [...held],
        ready: Effect.succeed(true)
      })
    })

  /**
   * Leases in Redis: `<prefix>lease:<saleId>` = owner node id, with a TTL the owner renews
   * every third of it; `<prefix>node:<nodeId>` = forward address, kept alive the same way.
   * Changes are published on `<prefix>owners` so every node drops its stale routes.
   */
  static readonly redis = (options: {
    readonly url: Redacted.Redacted
    readonly prefix: string
    readonly nodeId: string
    readonly leaseTtlMillis: number
  }) =>
    Layer.effect(
      Ownership,
      Effect.gen(function* () {
        const { prefix, nodeId, leaseTtlMillis: ttl } = options
        const redisOptions = {
          lazyConnect: true,
          // Fail at once while disconnected: a caller gets a retryable 503, never a hang.
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          commandTimeout: Math.max(200, Math.floor(ttl / 3)),
          retryStrategy: (attempt: number) => Math.min(50 * attempt, 500)
        }
        const client = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const redis = new Redis(Redacted.value(options.url), redisOptions)
            redis.on("error", () => {})
            await redis.connect()
            return redis
          }),
          (redis) => Effect.promise(() => redis.quit().catch(() => redis.disconnect()))
        )
        const subscriber = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const redis = new Redis(Redacted.value(options.url), {
              ...redisOptions,
              enableOfflineQueue: true
            })
            redis.on("error", () => {})
            await redis.connect()
            return redis
          }),
          // Not QUIT: with Redis away it would wait for a reconnection that may never come.
          (redis) => Effect.sync(() => redis.disconnect())
        )

        const leaseKey = (saleId: SaleId) => `${prefix}lease:${saleId}`
        const nodeKey = (id: string) => `${prefix}node:${id}`
        const channel = `${prefix}owners`

        const routes = new Map<SaleId, Route>()
        /** Held leases, with when their last successful renewal was sent. */
        const held = new Map<SaleId, number>()
        const lostListeners: Array<(saleId: SaleId) => void> = []
        let advertised: string | undefined

        const call = <A>(what: string, run: () => Promise<A>) =>
          Effect.tryPromise({
            try: run,
            catch: (cause) => new DirectoryUnavailable({ message: `${what}: ${String(cause)}` })
          })

        const lose = (saleId: SaleId) => {
          if (!held.delete(saleId)) return
          routes.delete(saleId)
          for (const listener of lostListeners) listener(saleId)
        }

        // Ownership changes from other nodes: drop the route, the next request looks it up.
        subscriber.on("message", (_channel: string, message: string) => {
          const space = message.indexOf(" ")
          const saleId = (space < 0 ? message : message.slice(0, space)) as SaleId
          const owner = space < 0 ? undefined : message.slice(space + 1)
          if (owner === nodeId) return
          routes.delete(saleId)
          // Someone else took a sale this node thinks it holds: it is no longer ours.
          if (owner !== undefined && held.has(saleId)) lose(saleId)
        })
        yield* Effect.promise(() => subscriber.subscribe(channel))

        const publish = (message: string) =>
          Effect.promise(() => client.publish(channel, message).catch(() => 0))

        // Atomic: take the lease if nobody holds it (or this node already does).
        const acquireScript = `
          local holder = redis.call('GET', KEYS[1])
          if holder == false then
            redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
            return 1
          elseif holder == ARGV[1] then
            redis.call('PEXPIRE', KEYS[1], ARGV[2])
            return 1
          end
          return 0`
        // Renew and release only by the holder: compare, then expire or delete.
        const renewScript = `
          if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('PEXPIRE', KEYS[1], ARGV[2])
          end
          return 0`
        const releaseScript = `
          if redis.call('GET', KEYS[1]) == ARGV[1] then
            return redis.call('DEL', KEYS[1])
          end
          return 0`

        const lookup = Effect.fnUntraced(function* (saleId: SaleId) {
          const holder = yield* call("lease lookup", () => client.get(leaseKey(saleId)))
          if (holder === null) return vacant
          if (holder === nodeId) return held.has(saleId) ? local : vacant
          const address = yield* call("node lookup", () => client.get(nodeKey(holder)))
          const route: Route = { _tag: "Remote", nodeId: holder, address: address ?? undefined }
          // An owner missing from the node directory is dying: not worth remembering.
          if (address !== null) routes.set(saleId, route)
          return route
        })

        const acquire = Effect.fnUntraced(function* (saleId: SaleId) {
          const sent = Date.now()
          const won = yield* call("lease acquire", () =>
            client.eval(acquireScript, 1, leaseKey(saleId), nodeId, ttl)
          )
          if (won !== 1) {
            routes.delete(saleId)
            return false
          }
          held.set(saleId, sent)
          routes.set(saleId, local)
          yield* publish(`${saleId} ${nodeId}`)
          return true
        })

        const release = (saleId: SaleId) =>
          Effect.gen(function* () {
            held.delete(saleId)
            routes.delete(saleId)
            yield* call("lease release", () => client.eval(releaseScript, 1, leaseKey(saleId), nodeId)).pipe(
              Effect.ignore
            )
            yield* publish(saleId)
          })

        // Every third of the TTL: renew every held lease in one pipeline, and the node's
        // directory entry. A lease that cannot be renewed before it may have expired is lost.
        const renew = Effect.promise(async () => {
          const sales = [...held.keys()]
          const sent = Date.now()
          const pipeline = client.pipeline()
          for (const saleId of sales) pipeline.eval(renewScript, 1, leaseKey(saleId), nodeId, ttl)
          if (advertised !== undefined) pipeline.set(nodeKey(nodeId), advertised, "PX", ttl)
          const results = await pipeline.exec().catch(() => null)
          sales.forEach((saleId, i) => {
            const result = results?.[i]
            if (result !== undefined && result[0] === null) {
              if (result[1] === 1) {
                if (held.has(saleId)) held.set(saleId, sent)
              } else lose(saleId)
            } else if (sent - (held.get(saleId) ?? sent) > ttl * 0.8) lose(saleId)
          })
        })
        yield* Effect.forkScoped(
          renew.pipe(Effect.repeat(Schedule.spaced(Math.max(50, Math.floor(ttl / 3)))))
        )

        // Planned shutdown: hand every lease back at once, and leave the directory.
        yield* Effect.addFinalizer(() =>
          Effect.gen(function* () {
            yield* Effect.forEach([...held.keys()], release, { discard: true })
            yield* call("node leave", () => client.del(nodeKey(nodeId))).pipe(Effect.ignore)
          })
        )

        return Ownership.of({
          nodeId,
          cached: (saleId) => routes.get(saleId),
          lookup,
          forget: (saleId) => {
            if (!held.has(saleId)) routes.delete(saleId)
          },
          acquire,
          release,
          onLost: (listener) => {
            lostListeners.push(listener)
          },
          advertise: (address) =>
            Effect.gen(function* () {
              advertised = address
              yield* call("node join", () => client.set(nodeKey(nodeId), address, "PX", ttl)).pipe(
                Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo({ duration: "10 seconds" }))),
                Effect.orDie
              )
            }),
          held: () => [...held.keys()],
          ready: call("ping", () => client.ping()).pipe(
            Effect.timeout("1 second"),
            Effect.as(true),
            Effect.orElseSucceed(() => false)
          )
        })
      })
    )
}

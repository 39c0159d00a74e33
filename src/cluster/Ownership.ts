import { Context, Deferred, Effect, Layer, Redacted, Schema } from "effect"
import type { SaleId } from "../domain/Ids.ts"
import { Directory } from "./Directory.ts"
import { Leases } from "./Leases.ts"
import { RedisConnection } from "./RedisConnection.ts"

/** Where a sale's purchases go, as far as this node knows. */
export type Route =
  | { readonly _tag: "Local" }
  /** Owned by another node, whose lease this node last saw run out at `expiresAt`. */
  | { readonly _tag: "Remote"; readonly nodeId: string; readonly address: string; readonly expiresAt: number }
  | { readonly _tag: "Vacant" }

/** Nobody can say who owns the sale now: Redis does not answer and no route is known. */
export class DirectoryUnavailable extends Schema.TaggedError<DirectoryUnavailable>()("DirectoryUnavailable", {
  message: Schema.String
}) {}

const local: Route = { _tag: "Local" }
const vacant: Route = { _tag: "Vacant" }

/** Routes kept past their lease (Redis unreachable) are swept after this many TTLs unused. */
const staleSweeps = 20

/**
 * Which node serves each sale, from the leases and the node directory. A route lives as
 * long as the lease it was read with: an owner whose lease this node knows to have expired
 * is asked for again, never forwarded to. While Redis does not answer, a known route is all
 * there is, and it is kept.
 */
export class Ownership extends Context.Service<
  Ownership,
  {
    readonly nodeId: string
    /**
     * A remote route whose lease has not run out (or any known one while Redis is away),
     * without a round trip; else undefined.
     */
    readonly cached: (saleId: SaleId, now: number) => Route | undefined
    /** Asks Redis who owns the sale; falls back on the last known route while Redis is away. */
    readonly lookup: (saleId: SaleId) => Effect.Effect<Route, DirectoryUnavailable>
    /** Drops a route found wrong (a "not owner" answer, an unreachable owner). */
    readonly forget: (saleId: SaleId) => void
    /** Whether Redis answers now; without it, new claims wait and known routes are kept. */
    readonly reachable: Effect.Effect<boolean>
  }
>()("mincommerce/cluster/Ownership") {
  /** Routes over the leases and the directory this layer is given. */
  static readonly layer = (leaseTtlMillis: number) =>
    Layer.effect(
      Ownership,
      Effect.gen(function* () {
        const leases = yield* Leases
        const directory = yield* Directory
        const routes = new Map<SaleId, Extract<Route, { _tag: "Remote" }>>()
        leases.onChange((saleId) => routes.delete(saleId))

        const ask = Effect.fnUntraced(function* (saleId: SaleId) {
          const holder = yield* leases.holder(saleId)
          if (holder === undefined) return vacant
          if (holder.nodeId === leases.nodeId) return leases.held().includes(saleId) ? local : vacant
          const address = yield* directory.address(holder.nodeId)
          // An owner missing from the directory is dying: wait for its lease to go.
          if (address === undefined) return vacant
          const route: Route = { _tag: "Remote", nodeId: holder.nodeId, address, expiresAt: holder.expiresAt }
          routes.set(saleId, route)
          return route
        })

        const askOrRecall = (saleId: SaleId) =>
          ask(saleId).pipe(
            Effect.catchTag("RedisUnavailable", (error) => {
              const known = routes.get(saleId)
              return known !== undefined
                ? Effect.succeed<Route>(known)
                : Effect.fail(new DirectoryUnavailable({ message: error.message }))
            })
          )

        // One question per sale at a time: the purchases that arrive meanwhile share its answer.
        const asking = new Map<SaleId, Deferred.Deferred<Route, DirectoryUnavailable>>()
        const lookup = (saleId: SaleId): Effect.Effect<Route, DirectoryUnavailable> =>
          Effect.suspend(() => {
            const inFlight = asking.get(saleId)
            if (inFlight !== undefined) return Deferred.await(inFlight)
            const answer = Deferred.makeUnsafe<Route, DirectoryUnavailable>()
            asking.set(saleId, answer)
            return Effect.exit(askOrRecall(saleId)).pipe(
              Effect.tap((exit) =>
                Effect.suspend(() => (asking.delete(saleId), Deferred.done(answer, exit)))
              ),
              Effect.andThen(Deferred.await(answer))
            )
          })
        // A route in the last third of its lease is asked for again ahead of time, so a busy
        // sale's purchases keep a fresh route instead of all missing it at once.
        const runFork = Effect.runForkWith(yield* Effect.context<never>())
        const refreshAt = leaseTtlMillis / 3

        // Routes for sales nobody asks about any more go, so the map follows the traffic.
        const sweep = Effect.sync(() => {
          const horizon = Date.now() - staleSweeps * leaseTtlMillis
          for (const [saleId, route] of routes) if (route.expiresAt < horizon) routes.delete(saleId)
        })
        yield* Effect.forkScoped(Effect.forever(Effect.andThen(Effect.sleep(leaseTtlMillis), sweep)))

        return Ownership.of({
          nodeId: leases.nodeId,
          cached: (saleId, now) => {
            const route = routes.get(saleId)
            if (route === undefined) return undefined
            // Redis away: nobody can claim the sale, the last known owner is all there is.
            if (route.expiresAt <= now) return leases.connected() ? undefined : route
            if (route.expiresAt - now < refreshAt && !asking.has(saleId))
              runFork(Effect.ignore(lookup(saleId)))
            return route
          },
          lookup,
          forget: (saleId) => void routes.delete(saleId),
          reachable: directory.reachable
        })
      })
    )

  /** One node, no Redis: this node owns every sale it is asked about. */
  static readonly local = (nodeId: string) =>
    Ownership.layer(60_000).pipe(Layer.provideMerge(Layer.merge(Leases.local(nodeId), Directory.local)))

  /** Leases and the directory in Redis, over one Redis connection for the node's life. */
  static readonly redis = (options: {
    readonly url: Redacted.Redacted
    readonly prefix: string
    readonly nodeId: string
    readonly leaseTtlMillis: number
  }) =>
    Ownership.layer(options.leaseTtlMillis).pipe(
      Layer.provideMerge(Layer.merge(Leases.redis(options), Directory.redis(options))),
      Layer.provideMerge(
        RedisConnection.layer({
          url: options.url,
          commandTimeoutMillis: Math.max(200, Math.floor(options.leaseTtlMillis / 3))
        })
      )
    )
}

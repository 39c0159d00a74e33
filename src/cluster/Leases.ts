import { Context, Effect, Layer, Schedule, Schema } from "effect"
import type { Result } from "ioredis"
import { SaleId } from "../domain/Ids.ts"
import { RedisConnection, RedisUnavailable } from "./RedisConnection.ts"

// The lease scripts, registered once per connection (ioredis sends EVALSHA, the text only
// when Redis has not seen it: after a restart or a flush).
declare module "ioredis" {
  interface RedisCommander<Context> {
    /** 1 when `node` now holds the lease (taken if vacant, or extended), 0 when another does. */
    leaseTake(key: string, node: string, ttlMillis: number): Result<number, Context>
    /** 1 when `node` held the lease and let it go. */
    leaseGive(key: string, node: string): Result<number, Context>
    /** [holder, milliseconds left] or [false, -2] when vacant. */
    leaseRead(key: string): Result<[string | null, number], Context>
  }
}

const scripts = {
  leaseTake: `
    local holder = redis.call('GET', KEYS[1])
    if holder == false then
      redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
      return 1
    elseif holder == ARGV[1] then
      redis.call('PEXPIRE', KEYS[1], ARGV[2])
      return 1
    end
    return 0`,
  leaseGive: `
    if redis.call('GET', KEYS[1]) == ARGV[1] then
      return redis.call('DEL', KEYS[1])
    end
    return 0`,
  leaseRead: `return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}`
}

/** Who holds a sale's lease, and until when (epoch milliseconds, as seen by this node). */
export interface Holder {
  readonly nodeId: string
  readonly expiresAt: number
}

/**
 * Sale leases: which node should serve a sale. A lease routes; it makes nobody safe (the
 * owner's epoch in PostgreSQL does). A held lease is kept while Redis cannot be reached:
 * nobody else can claim without Redis, and a claim made after it returns fences this node
 * at its next commit.
 */
export class Leases extends Context.Service<
  Leases,
  {
    readonly nodeId: string
    /** The lease's holder and expiry now, undefined when vacant. */
    readonly holder: (saleId: SaleId) => Effect.Effect<Holder | undefined, RedisUnavailable>
    /** Tries to take the sale's lease; true when this node now holds it. */
    readonly acquire: (saleId: SaleId) => Effect.Effect<boolean, RedisUnavailable>
    /** Lets go of the lease if this node still holds it, and tells the other nodes. */
    readonly release: (saleId: SaleId) => Effect.Effect<void>
    /** `listener` hears of each sale whose lease this node held and another node took. */
    readonly onLost: (listener: (saleId: SaleId) => void) => void
    /** `listener` hears of each lease change another node announced (undefined: released). */
    readonly onChange: (listener: (saleId: SaleId, holder: string | undefined) => void) => void
    readonly held: () => ReadonlyArray<SaleId>
    /** Whether Redis was reachable when last seen, without a round trip. */
    readonly connected: () => boolean
  }
>()("mincommerce/cluster/Leases") {
  /** One node, no Redis: every lease asked for is granted and never expires. */
  static readonly local = (nodeId: string) =>
    Layer.sync(Leases, () => {
      const held = new Set<SaleId>()
      return Leases.of({
        nodeId,
        holder: (saleId) =>
          Effect.succeed(held.has(saleId) ? { nodeId, expiresAt: Number.POSITIVE_INFINITY } : undefined),
        acquire: (saleId) => Effect.sync(() => (held.add(saleId), true)),
        release: (saleId) => Effect.sync(() => void held.delete(saleId)),
        onLost: () => {},
        onChange: () => {},
        held: () => [...held],
        connected: () => true
      })
    })

  /**
   * `<prefix>lease:<saleId>` = holder node id with a TTL renewed every third of it; changes
   * are published on `<prefix>owners` as "<saleId> <holder>" or "<saleId>" for a release.
   */
  static readonly redis = (options: LeaseOptions) =>
    Layer.effect(
      Leases,
      Effect.gen(function* () {
        const redis = yield* RedisConnection
        const { nodeId, leaseTtlMillis: ttl } = options
        for (const [name, lua] of Object.entries(scripts))
          redis.client.defineCommand(name, { numberOfKeys: 1, lua })
        const leaseKey = (saleId: SaleId) => `${options.prefix}lease:${saleId}`
        const channel = `${options.prefix}owners`
        const held = new Set<SaleId>()
        const lostListeners: Array<(saleId: SaleId) => void> = []
        const changeListeners: Array<(saleId: SaleId, holder: string | undefined) => void> = []
        const lose = (saleId: SaleId) => {
          if (!held.delete(saleId)) return
          for (const listener of lostListeners) listener(saleId)
        }
        yield* announcements(redis, channel, nodeId, (saleId, holder) => {
          for (const listener of changeListeners) listener(saleId, holder)
          if (holder !== undefined) lose(saleId)
        })
        const publish = (message: string) =>
          redis.call("publish", (client) => client.publish(channel, message)).pipe(Effect.ignore)

        const holder = Effect.fnUntraced(function* (saleId: SaleId) {
          const asked = Date.now()
          const [owner, left] = yield* redis.call("lease read", (client) =>
            client.leaseRead(leaseKey(saleId))
          )
          if (owner === null) return undefined
          // A key without expiry cannot be a lease of ours; treat it as one TTL long.
          return { nodeId: owner, expiresAt: asked + (left >= 0 ? left : ttl) }
        })
        const acquire = Effect.fnUntraced(function* (saleId: SaleId) {
          const won = yield* redis.call("lease acquire", (client) =>
            client.leaseTake(leaseKey(saleId), nodeId, ttl)
          )
          if (won !== 1) return false
          held.add(saleId)
          yield* publish(`${saleId} ${nodeId}`)
          return true
        })
        const release = (saleId: SaleId) =>
          Effect.suspend(() => {
            held.delete(saleId)
            return redis
              .call("lease release", (client) => client.leaseGive(leaseKey(saleId), nodeId))
              .pipe(Effect.ignore, Effect.andThen(publish(saleId)))
          })
        yield* keepRenewed(redis, { held, leaseKey, nodeId, ttl, lose })
        // Planned shutdown: every lease back at once.
        yield* Effect.addFinalizer(() => Effect.forEach([...held], release, { discard: true }))

        return Leases.of({
          nodeId,
          holder,
          acquire,
          release,
          onLost: (listener) => void lostListeners.push(listener),
          onChange: (listener) => void changeListeners.push(listener),
          held: () => [...held],
          connected: redis.connected
        })
      })
    )
}

export interface LeaseOptions {
  readonly prefix: string
  readonly nodeId: string
  readonly leaseTtlMillis: number
}

const decodeSaleId = Schema.decodeUnknownOption(SaleId)

/** Lease changes other nodes announce, handed to `heard` (holder undefined: released). */
const announcements = (
  redis: RedisConnection["Service"],
  channel: string,
  nodeId: string,
  heard: (saleId: SaleId, holder: string | undefined) => void
) =>
  Effect.promise(() => {
    redis.subscriber.on("message", (_channel: string, message: string) => {
      const space = message.indexOf(" ")
      const saleId = decodeSaleId(space < 0 ? message : message.slice(0, space))
      const holder = space < 0 ? undefined : message.slice(space + 1)
      if (saleId._tag === "Some" && holder !== nodeId) heard(saleId.value, holder)
    })
    return redis.subscriber.subscribe(channel)
  })

interface Renewal {
  readonly held: ReadonlySet<SaleId>
  readonly leaseKey: (saleId: SaleId) => string
  readonly nodeId: string
  readonly ttl: number
  readonly lose: (saleId: SaleId) => void
}

/**
 * Renews every held lease every third of the TTL, in one pipeline, and at once when Redis
 * comes back. Renewal takes again a lease Redis forgot (restarted, flushed) and loses only
 * one another node holds; while Redis is unreachable every lease is kept as it is.
 */
const keepRenewed = (redis: RedisConnection["Service"], { held, leaseKey, nodeId, ttl, lose }: Renewal) =>
  Effect.gen(function* () {
    let renewing = true
    const renew = Effect.gen(function* () {
      const sales = [...held]
      if (sales.length === 0) return
      const pipeline = redis.client.pipeline()
      for (const saleId of sales) pipeline.leaseTake(leaseKey(saleId), nodeId, ttl)
      const results = yield* redis.call("lease renewal", () => pipeline.exec())
      sales.forEach((saleId, i) => {
        const result = results?.[i]
        if (result !== undefined && result[0] === null && result[1] === 0) lose(saleId)
      })
      if (!renewing) yield* Effect.logInfo("leases renewed again", { held: held.size })
      renewing = true
    }).pipe(
      Effect.catchTag("RedisUnavailable", (error) =>
        Effect.suspend(() => {
          if (!renewing) return Effect.void
          renewing = false
          return Effect.logWarning("leases not renewed; this node keeps serving the sales it owns", {
            held: held.size,
            error: error.message
          })
        })
      )
    )
    yield* Effect.forkScoped(renew.pipe(Effect.repeat(Schedule.spaced(Math.max(50, Math.floor(ttl / 3))))))
    // Before another node finds a forgotten lease vacant.
    const runFork = Effect.runForkWith(yield* Effect.context<never>())
    const onReady = () => void runFork(renew)
    yield* Effect.acquireRelease(
      Effect.sync(() => redis.client.on("ready", onReady)),
      () => Effect.sync(() => redis.client.off("ready", onReady))
    )
  })

export { RedisUnavailable }

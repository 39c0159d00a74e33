/** The designs `npm run bench` compares, each started the same way and loaded the same way. */
import { Effect, type Scope } from "effect"
import { Redis } from "ioredis"
import { readFileSync } from "node:fs"
import type { SaleId } from "../src/domain/Ids.ts"
import { stockKey } from "./baselines/redis-keys.ts"
import { serve, type Served } from "./serve.ts"

export const designIds = [
  "mincommerce",
  "mincommerce-3",
  "row-lock",
  "advisory-lock",
  "redis-decrement",
  "ceiling"
] as const
export type DesignId = (typeof designIds)[number]

/** A design's servers, up for the design's phases. */
export interface Running {
  /** Where the purchases of a sale are sent (connections are spread over several). */
  readonly urls: (saleId: SaleId) => ReadonlyArray<string>
  /** Remaining units from the design's own stock of record, when that is not PostgreSQL's stock row. */
  readonly remaining?: (saleId: SaleId) => Promise<number>
}

export interface Design {
  readonly id: DesignId
  readonly title: string
  /** What it does, for the report. */
  readonly description: string
  /** MinCommerce's own designs: CI fails if one of them breaks an invariant. */
  readonly ours: boolean
  /** The ceiling answers without storing anything: nothing to check. */
  readonly checked: boolean
  /** Why it cannot run here, when it cannot. */
  readonly unavailable: () => string | undefined
  readonly start: (context: StartContext) => Effect.Effect<Running, never, Scope.Scope>
}

export interface StartContext {
  readonly databaseUrl: string
  readonly redisUrl: string
  readonly secret: string
  /** Prefix of every Redis key this run writes; removed at the end. */
  readonly redisPrefix: string
  /** Connections in each baseline's `pg` pool. */
  readonly poolSize: number
}

const purchaseUrl = (base: string) => (saleId: SaleId) => `${base}/api/sales/${saleId}/purchases`

const nodeEnv = (context: StartContext) => ({
  DATABASE_URL: context.databaseUrl,
  PORT: "0",
  JWT_SECRET: context.secret,
  LOG_LEVEL: "Info",
  // The bench sends each buyer once per sale; per-user limits would only measure themselves.
  RATE_LIMIT_PER_USER: "0"
})

const baseline = (script: string) => (context: StartContext) =>
  Effect.map(
    serve(script, {
      DATABASE_URL: context.databaseUrl,
      JWT_SECRET: context.secret,
      REDIS_URL: context.redisUrl,
      REDIS_PREFIX: context.redisPrefix,
      POOL_SIZE: String(context.poolSize),
      PORT: "0"
    }),
    (served): Running => ({ urls: (saleId) => [purchaseUrl(served.url)(saleId)] })
  )

/**
 * Three nodes need ownership leased in Redis (without it each would claim every sale and
 * fence the others). Known by the node's wiring (src/main.ts) reading the cluster settings into a Redis ownership.
 */
const clusterOwnershipBuilt = (): boolean => {
  try {
    return /Ownership\.redis\b|clusterSettings/.test(
      readFileSync(new URL("../src/main.ts", import.meta.url), "utf8")
    )
  } catch {
    return false
  }
}

export const designs: ReadonlyArray<Design> = [
  {
    id: "mincommerce",
    title: "MinCommerce, 1 node",
    description:
      "The real service (`node src/main.ts`): one actor per sale decides each purchase in memory; accepted orders are group-committed to PostgreSQL (one transaction per batch, fenced by the owner epoch) and each buyer is answered after COMMIT.",
    ours: true,
    checked: true,
    unavailable: () => undefined,
    start: (context) =>
      Effect.map(serve("src/main.ts", nodeEnv(context)), (served): Running => ({
        urls: (saleId) => [purchaseUrl(served.url)(saleId)]
      }))
  },
  {
    id: "mincommerce-3",
    title: "MinCommerce, 3 nodes",
    description:
      "Three `node src/main.ts` processes sharing PostgreSQL and Redis (sale ownership leased in Redis); the load generator spreads its connections over the three, and a node that does not own the sale forwards the purchase to the owner.",
    ours: true,
    checked: true,
    unavailable: () => (clusterOwnershipBuilt() ? undefined : "not available: cluster ownership not built"),
    start: (context) =>
      Effect.gen(function* () {
        const nodes: Array<Served> = []
        for (const nodeId of ["bench-a", "bench-b", "bench-c"]) {
          nodes.push(
            yield* serve("src/main.ts", {
              ...nodeEnv(context),
              REDIS_URL: context.redisUrl,
              REDIS_PREFIX: `${context.redisPrefix}cluster:`,
              NODE_ID: nodeId,
              FORWARD_PORT: "0"
            })
          )
        }
        return { urls: (saleId) => nodes.map((node) => purchaseUrl(node.url)(saleId)) }
      })
  },
  {
    id: "row-lock",
    title: "Row lock",
    description:
      "`bench/baselines/row-lock.ts`: per purchase one transaction on a pooled `pg` connection: `UPDATE stocks SET available = available - 1 WHERE sale_id = $1 AND available > 0`, then `INSERT` the order (`ON CONFLICT (sale_id, user_id) WHERE status IN ('reserved', 'paid') DO NOTHING`: one live order per buyer; a conflict rolls the unit back), COMMIT, answer.",
    ours: false,
    checked: true,
    unavailable: () => undefined,
    start: baseline("bench/baselines/row-lock.ts")
  },
  {
    id: "advisory-lock",
    title: "Advisory lock",
    description:
      "`bench/baselines/advisory-lock.ts`, the seed's design: per purchase one transaction on a pooled `pg` connection: `pg_advisory_xact_lock` on the sale, read the stock, look for the user's order, `INSERT` the order, decrement the stock, COMMIT (releases the lock), answer.",
    ours: false,
    checked: true,
    unavailable: () => undefined,
    start: baseline("bench/baselines/advisory-lock.ts")
  },
  {
    id: "redis-decrement",
    title: "Redis decrement",
    description:
      "`bench/baselines/redis-decrement.ts`: a Lua script checks the buyer is new and a unit is left, decrements and marks the buyer atomically in Redis; then the order is `INSERT`ed into PostgreSQL (autocommit, pooled `pg`) before answering; a failed insert gives the unit back. Redis holds the stock of record, so the stock check reads Redis.",
    ours: false,
    checked: true,
    unavailable: () => undefined,
    start: (context) =>
      Effect.gen(function* () {
        const running = yield* baseline("bench/baselines/redis-decrement.ts")(context)
        const redis = yield* Effect.acquireRelease(
          Effect.sync(() => new Redis(context.redisUrl, { lazyConnect: false })),
          (client) => Effect.promise(() => client.quit().catch(() => "")).pipe(Effect.asVoid)
        )
        return {
          ...running,
          remaining: async (saleId) => Number((await redis.get(stockKey(context.redisPrefix, saleId))) ?? 0)
        }
      })
  },
  {
    id: "ceiling",
    title: "Ceiling (bare node:http)",
    description:
      "`bench/bare.ts`: a bare `node:http` server that reads and JSON-parses the same POST body and answers a fixed JSON body. Stores nothing: the most this HTTP stack and load generator can do on this machine.",
    ours: false,
    checked: false,
    unavailable: () => undefined,
    start: () =>
      Effect.map(serve("bench/bare.ts", {}), (served): Running => ({ urls: () => [`${served.url}/`] }))
  }
]

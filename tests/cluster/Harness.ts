import { Context, Effect, Exit, Layer, Redacted, Scope } from "effect"
import { Redis } from "ioredis"
import { spawn, type ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import { Tokens } from "../../src/http/Tokens.ts"
import { DevelopmentProvider } from "../../src/payments/DevelopmentProvider.ts"
import {
  allOrders,
  Audit,
  checkInvariants,
  violations,
  type InvariantReport
} from "../../src/storage/Audit.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"
import { freshServerStorage } from "../support/TestDatabase.ts"
import { freePort, isAlive, sleep, waitFor } from "../support/Processes.ts"

export { freePort, sleep, waitFor }
import { SqlClient } from "effect/sql"

/**
 * Several real node processes on loopback, one PostgreSQL database and one Redis key
 * prefix per test: what the cluster tests and bench:cluster drive and then audit.
 */

const secret = "cluster test secret, long enough for HS256"
/** The JWT_SECRET every node of a test cluster shares (its forward links prove a key made from it). */
export const clusterSecret = new TextEncoder().encode(secret)

export interface NodeProcess {
  readonly nodeId: string
  readonly url: string
  readonly pid: number
  readonly exited: Promise<number | null>
  /** Every line the node wrote so far. */
  readonly log: Array<string>
  alive: boolean
}

export interface ClusterOptions {
  readonly redisUrl?: string
  readonly leaseTtlMillis?: number
  readonly env?: Record<string, string>
}

/** A private redis-server on a free port, without persistence: a restart forgets everything. */
export const privateRedis = async () => {
  const port = await freePort()
  let child: ChildProcess | undefined
  const start = async () => {
    child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      {
        stdio: "ignore"
      }
    )
    // A fresh client per try: one whose first connection failed stays "connecting" for ever.
    await waitFor("redis to answer", async () => {
      const probe = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null })
      probe.on("error", () => {})
      try {
        await probe.connect()
        return (await probe.ping()) === "PONG"
      } catch {
        return undefined
      } finally {
        probe.disconnect()
      }
    })
  }
  const kill = async () => {
    const running = child
    if (running === undefined) return
    const gone = new Promise((resolve) => running.once("exit", resolve))
    running.kill("SIGKILL")
    await gone
    child = undefined
  }
  await start()
  return { url: `redis://127.0.0.1:${port}`, port, start, kill }
}

/**
 * One test cluster at a time on this machine: three node processes per test already fill two
 * cores, and the failover tests measure time. Other test files keep running in parallel.
 */
const clusterLock = join(tmpdir(), "mincommerce-cluster-test.lock")

const takeClusterLock = async (): Promise<() => void> => {
  const token = `${process.pid} ${randomBytes(6).toString("hex")}`
  await waitFor(
    "the other cluster tests to finish",
    () => {
      try {
        mkdirSync(clusterLock)
        writeFileSync(join(clusterLock, "owner"), token)
        return true
      } catch {
        // Held: taken over only when its holder's process is gone.
        try {
          const holder = Number(readFileSync(join(clusterLock, "owner"), "utf8").split(" ")[0])
          if (holder > 0 && !isAlive(holder)) rmSync(clusterLock, { recursive: true, force: true })
        } catch {
          // being written or removed right now
        }
        return undefined
      }
    },
    200_000,
    100
  )
  return () => {
    try {
      if (readFileSync(join(clusterLock, "owner"), "utf8") === token)
        rmSync(clusterLock, { recursive: true, force: true })
    } catch {
      // already gone
    }
  }
}

export const sharedRedisUrl = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379"

/**
 * A test cluster: a fresh database with `saleStocks` sales and `buyers` users (with their
 * tokens), then `nodes` node processes sharing it and one Redis key prefix.
 */
export interface ClusterSpec {
  readonly nodes: number
  readonly saleStocks: ReadonlyArray<number>
  readonly buyers: number
  readonly cluster?: ClusterOptions
}

export const makeCluster = async (options: ClusterSpec) => {
  const unlock = await takeClusterLock()
  try {
    return await buildCluster(options, unlock)
  } catch (error) {
    unlock()
    throw error
  }
}

const buildCluster = async (options: ClusterSpec, unlock: () => void) => {
  const scope = Effect.runSync(Scope.make())
  const run = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>) =>
    Effect.runPromise(Scope.provide(scope)(effect))
  const { url: databaseUrl, name, storage: context } = await run(freshServerStorage({ maxConnections: 4 }))
  const withStorage = <A, E>(effect: Effect.Effect<A, E, Catalog | Audit | SqlClient.SqlClient>) =>
    Effect.runPromise(Effect.provideContext(effect, context))
  // A paused node must not hold the stock row's lock for ever: PostgreSQL ends a session
  // that sits idle inside a transaction, so the next owner's claim can go through.
  await withStorage(
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql.unsafe(`ALTER DATABASE ${name} SET idle_in_transaction_session_timeout = '1s'`)
    )
  )
  const sales: Array<SaleId> = []
  for (const stock of options.saleStocks) sales.push(await withStorage(makeSale(stock)))
  const userIds = await withStorage(makeUsers(options.buyers))
  const tokens = Tokens.make({ secret: clusterSecret, ttlSeconds: 3_600 })
  const users = await Promise.all(
    userIds.map(async (userId) => ({
      userId,
      token: (await Effect.runPromise(tokens.issue(userId, `${userId}@example.test`))).token
    }))
  )

  const prefix = `mincommerce-test-${randomBytes(4).toString("hex")}:`
  const redisUrl = options.cluster?.redisUrl ?? sharedRedisUrl
  const redis = new Redis(redisUrl, { retryStrategy: () => 50, maxRetriesPerRequest: 1 })
  redis.on("error", () => {})

  const nodes: Array<NodeProcess> = []
  let counter = 0
  const startNode = (): Promise<NodeProcess> =>
    new Promise((resolve, reject) => {
      const nodeId = `node-${++counter}`
      const child = spawn(process.execPath, ["src/main.ts"], {
        env: {
          ...process.env,
          DATABASE_URL: databaseUrl,
          REDIS_URL: redisUrl,
          REDIS_PREFIX: prefix,
          NODE_ID: nodeId,
          PORT: "0",
          FORWARD_PORT: "0",
          JWT_SECRET: secret,
          LEASE_TTL_MS: String(options.cluster?.leaseTtlMillis ?? 2_000),
          RATE_LIMIT_PER_USER: "0",
          LOG_LEVEL: "Info",
          ...options.cluster?.env
        },
        stdio: ["ignore", "pipe", "pipe"]
      })
      const log: Array<string> = []
      let pending = ""
      const collect = (chunk: Buffer) => {
        pending += chunk.toString()
        const lines = pending.split("\n")
        pending = lines.pop() ?? ""
        log.push(...lines)
        const listening = lines
          .map((line) => /Listening on (http:\/\/[0-9.:]+)/.exec(line))
          .find((m) => m !== null)
        if (listening?.[1] !== undefined) {
          const node: NodeProcess = { nodeId, url: listening[1], pid: child.pid!, exited, log, alive: true }
          nodes.push(node)
          resolve(node)
        }
      }
      child.stdout!.on("data", collect)
      child.stderr!.on("data", collect)
      const exited = new Promise<number | null>((done) =>
        child.on("exit", (code) => {
          const node = nodes.find((n) => n.pid === child.pid)
          if (node !== undefined) node.alive = false
          reject(new Error(`${nodeId} exited with ${code} before listening:\n${log.join("\n")}`))
          done(code)
        })
      )
    })
  try {
    for (let i = 0; i < options.nodes; i++) await startNode()
  } catch (error) {
    for (const node of nodes) process.kill(node.pid, "SIGKILL")
    redis.disconnect()
    await Effect.runPromise(Scope.close(scope, Exit.void))
    throw error
  }

  const signal = (node: NodeProcess, name: NodeJS.Signals) => {
    try {
      process.kill(node.pid, name)
    } catch {
      // already gone
    }
  }

  return {
    databaseUrl,
    redisUrl,
    prefix,
    redis,
    sales,
    users,
    nodes,
    startNode,
    signal,
    /** The node id holding the sale's lease, or undefined. */
    leaseHolder: async (saleId: SaleId): Promise<string | undefined> => {
      try {
        return (await redis.get(`${prefix}lease:${saleId}`)) ?? undefined
      } catch {
        return undefined
      }
    },
    nodeById: (nodeId: string | undefined) => nodes.find((n) => n.nodeId === nodeId),
    /** A first-come sale of `stock` units that holds each accepted unit `holdSeconds` for payment. */
    makeHoldSale: (stock: number, holdSeconds: number) => withStorage(makeSale(stock, { holdSeconds })),
    /** A draw sale starting now, its entry window `entryWindowMillis` long. */
    makeDrawSale: (stock: number, entryWindowMillis: number) =>
      withStorage(makeSale(stock, { startsAt: Date.now(), entryWindowMillis })),
    /** Runs a query against the cluster's database. */
    query: <A extends object>(run: (sql: SqlClient.SqlClient) => Effect.Effect<ReadonlyArray<A>, unknown>) =>
      withStorage(Effect.flatMap(SqlClient.SqlClient, run)),
    epoch: (saleId: SaleId) =>
      withStorage(
        Effect.map(
          Effect.flatMap(
            SqlClient.SqlClient,
            (sql) => sql<{ epoch: number }>`SELECT owner_epoch AS epoch FROM stocks WHERE sale_id = ${saleId}`
          ),
          (rows) => rows[0]?.epoch ?? 0
        )
      ),
    /** Checks PostgreSQL against the recorded history. */
    audit: async (saleId: SaleId, history: History) => {
      const record = await withStorage(Effect.flatMap(Audit, (audit) => audit.read(saleId)))
      const report = checkInvariants(record, history.confirmed)
      // No row, in any status, for a buyer whose every attempt was definitely refused.
      let rowsOfRefused = 0
      for (const userId of allOrders(record).values()) if (history.definitelyRefused(userId)) rowsOfRefused++
      return { ...report, record, rowsOfRefused, broken: violations(report) + rowsOfRefused }
    },
    close: async () => {
      for (const node of nodes) {
        signal(node, "SIGCONT")
        signal(node, "SIGKILL")
      }
      await Promise.all(nodes.map((n) => n.exited))
      try {
        const keys = await redis.keys(`${prefix}*`)
        if (keys.length > 0) await redis.del(...keys)
      } catch {
        // a private Redis may be gone already
      }
      redis.disconnect()
      await Effect.runPromise(Scope.close(scope, Exit.void))
      unlock()
    }
  }
}

export type Cluster = Awaited<ReturnType<typeof makeCluster>>

export type Result = "ok" | "refused" | "unknown"

/** Every attempt of every buyer, as ok (2xx with an order), refused (a 4xx) or unknown. */
export class History {
  readonly confirmed = new Map<OrderId, UserId>()
  private readonly results = new Map<UserId, Array<Result>>()
  ok = 0
  refused = 0
  unknown = 0
  soldOut = 0
  /** 503 answers without a Retry-After header: there should be none. */
  withoutRetryAfter = 0

  record(userId: UserId, result: Result, orderId?: OrderId) {
    this[result]++
    if (orderId !== undefined) this.confirmed.set(orderId, userId)
    const list = this.results.get(userId)
    if (list === undefined) this.results.set(userId, [result])
    else list.push(result)
  }

  definitelyRefused(userId: UserId): boolean {
    const list = this.results.get(userId)
    return list !== undefined && list.every((r) => r === "refused")
  }
}

export interface Buyer {
  readonly userId: UserId
  readonly token: string
}

/** One purchase attempt over HTTP, recorded in `history`: its status (0: no answer) and error code. */
export const purchase = async (
  baseUrl: string,
  saleId: SaleId,
  buyer: Buyer,
  history: History,
  timeoutMillis = 5_000
): Promise<{
  readonly status: number
  readonly code: string | undefined
  readonly reason: string | undefined
}> => {
  try {
    const response = await fetch(`${baseUrl}/api/sales/${saleId}/purchases`, {
      method: "POST",
      headers: { authorization: `Bearer ${buyer.token}` },
      signal: AbortSignal.timeout(timeoutMillis)
    })
    const body = (await response.json()) as {
      orderId?: OrderId
      error?: { code: string; details?: { reason?: string } }
    }
    if (response.status < 300 && body.orderId !== undefined) history.record(buyer.userId, "ok", body.orderId)
    else if (response.status >= 500) {
      if (response.status === 503 && response.headers.get("retry-after") === null) history.withoutRetryAfter++
      history.record(buyer.userId, "unknown")
    } else {
      if (body.error?.code === "sold_out") history.soldOut++
      history.record(buyer.userId, "refused")
    }
    return { status: response.status, code: body.error?.code, reason: body.error?.details?.reason }
  } catch {
    history.record(buyer.userId, "unknown")
    return { status: 0, code: undefined, reason: undefined }
  }
}

/** One purchase attempt over HTTP, recorded in `history`; returns the HTTP status (0: no answer). */
export const attempt = async (
  baseUrl: string,
  saleId: SaleId,
  buyer: Buyer,
  history: History,
  timeoutMillis = 5_000
): Promise<number> => (await purchase(baseUrl, saleId, buyer, history, timeoutMillis)).status

/**
 * Buyers trying until they get a definite answer (a 2xx or a 409), as people do: each
 * attempt goes to the next live node in turn; a 503 or no answer is tried again shortly,
 * up to `deadline`. `afterAnswer` sees the count of answered attempts (to inject faults).
 */
export const drive = async (options: {
  readonly targets: () => ReadonlyArray<string>
  readonly saleId: SaleId
  readonly buyers: ReadonlyArray<Buyer>
  readonly history: History
  readonly concurrency: number
  readonly deadline?: number
  readonly afterAnswer?: (answered: number) => void
}) => {
  let next = 0
  let turn = 0
  let answered = 0
  const deadline = options.deadline ?? Date.now() + 60_000
  const worker = async () => {
    while (next < options.buyers.length) {
      const buyer = options.buyers[next++]!
      while (Date.now() < deadline) {
        const targets = options.targets()
        const status = await attempt(
          targets[turn++ % targets.length]!,
          options.saleId,
          buyer,
          options.history
        )
        options.afterAnswer?.(++answered)
        if (status > 0 && status < 500) break
        await sleep(100)
      }
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, worker))
}

export const formatReport = (report: InvariantReport & { rowsOfRefused: number }) =>
  `${report.committed.toLocaleString("en-US")} committed, ${report.oversold} oversold, ` +
  `${report.duplicateBuyers} duplicate buyers, ${report.lostConfirmed} lost, ${report.rowsOfRefused} rows of refused buyers` +
  (report.lapsed === undefined || report.lapsed === 0
    ? ""
    : `; ${report.lapsed} lapsed holds, ${report.expiredPaid ?? 0} paid then lapsed, ` +
      `${report.paidAfterLapse ?? 0} payments kept without their order, ${report.paidLate ?? 0} paid past the deadline`)

/**
 * One development payment provider for a whole test cluster, run in the test's process: every
 * node is pointed at it (`env`, given to makeCluster), and its webhooks reach the cluster
 * through a forwarder that sends each delivery to the next of `targets()` in turn, as a load
 * balancer in front of the nodes would. So a payment is applied by whichever node receives its
 * webhook, and a node killed mid-test takes neither the provider nor its intents with it.
 */
export const clusterPaymentProvider = async (targets: () => ReadonlyArray<string>) => {
  const key = randomBytes(16).toString("hex")
  const webhookSecret = randomBytes(32).toString("hex")
  let turn = 0
  /** Deliveries forwarded, by the node URL that answered them, with their statuses. */
  const forwarded: Array<{ readonly target: string; readonly status: number }> = []
  const forwarder = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const live = targets()
      const target = live[turn++ % Math.max(1, live.length)]
      const reply = (status: number, body: string) => {
        forwarded.push({ target: target ?? "none", status })
        response.writeHead(status, { "content-type": "application/json" })
        response.end(body)
      }
      if (target === undefined) return reply(502, `{"error":"no live node"}`)
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(request.headers))
        if (
          typeof value === "string" &&
          name !== "host" &&
          name !== "connection" &&
          name !== "content-length"
        )
          headers[name] = value
      fetch(`${target}${request.url ?? "/"}`, {
        method: request.method ?? "POST",
        headers,
        body: Buffer.concat(chunks),
        signal: AbortSignal.timeout(5_000)
      })
        .then(async (answer) => reply(answer.status, await answer.text()))
        .catch(() => reply(502, `{"error":"the node did not answer"}`))
    })
  })
  await new Promise<void>((resolve) => forwarder.listen(0, "127.0.0.1", resolve))
  const { port } = forwarder.address() as AddressInfo
  const scope = Effect.runSync(Scope.make())
  const provider = await Effect.runPromise(
    Layer.buildWithScope(
      DevelopmentProvider.layer({
        key: Redacted.make(key),
        webhookSecret: Redacted.make(new TextEncoder().encode(webhookSecret)),
        webhookUrl: `http://127.0.0.1:${port}/api/payments/webhook`,
        delivery: { firstDelay: "100 millis", maxDelay: "1 second" }
      }),
      scope
    )
  )
  const url = Context.get(provider, DevelopmentProvider).url
  return {
    url,
    key,
    /** What every node of the cluster is started with. */
    env: { PAYMENT_PROVIDER_URL: url, PAYMENT_PROVIDER_KEY: key, PAYMENT_WEBHOOK_SECRET: webhookSecret },
    forwarded,
    close: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      forwarder.closeAllConnections()
      await new Promise((resolve) => forwarder.close(resolve))
    }
  }
}

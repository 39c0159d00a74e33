import { Redis } from "ioredis"
import { randomBytes } from "node:crypto"
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startFaultProxy } from "../support/FaultProxy.ts"
import { privatePostgres, privateRedis, sleep, waitFor } from "../support/PrivateServices.ts"
import { check, type CheckResult } from "./Checker.ts"
import { healAll, inject, type Injected, type Targets } from "./Faults.ts"
import { History } from "./History.ts"
import { purchase, runLoad, type Buyer } from "./Load.ts"
import { makeNodes, type ChaosNode } from "./Nodes.ts"
import { drawPlan, type FaultKind, type Plan } from "./Schedule.ts"
import { readSale, stockShop, tokenSigner } from "./Shop.ts"

export interface RunOptions {
  readonly seed: number
  readonly nodes?: number
  readonly leaseTtlMillis?: number
  /** The faults' share of the run (their holds and quiet spells). */
  readonly faultMillis?: number
  readonly arrivalsPerSecond?: number
  readonly kinds?: ReadonlyArray<FaultKind>
  /** Lines about what the run is doing, for a long run's progress. */
  readonly onEvent?: (line: string) => void
  /** Keep the run's folder (node logs, history) even when it passed. */
  readonly keep?: boolean
  /** The checkout the nodes run from (see Checkout.ts); the working directory if unset. */
  readonly root?: string
}

export interface RunResult {
  readonly plan: Plan
  readonly injected: ReadonlyArray<Injected>
  readonly check: CheckResult
  readonly history: History
  readonly leaseTtlMillis: number
  readonly millis: number
  /** Node logs and, on a violation, the history: kept for a failing run. */
  readonly folder?: string
}

const warmupMillis = 2_000
const requestTimeoutMillis = 3_000

/** What the runs in progress must stop: PostgreSQL is a daemon and outlives this process. */
const active = new Set<() => Promise<void>>()

/** Stops every run's nodes and servers: for a runner that is interrupted (Ctrl-C, SIGTERM). */
export const stopActiveRuns = async () => {
  for (const cleanUp of [...active]) await cleanUp()
}

/** One seeded run: private services, a cluster, load and faults, then the check. */
export const runChaos = async (options: RunOptions): Promise<RunResult> => {
  const began = Date.now()
  const say = options.onEvent ?? (() => {})
  const nodeCount = options.nodes ?? 3
  const leaseTtlMillis = options.leaseTtlMillis ?? 2_000
  const faultMillis = options.faultMillis ?? 40_000
  const arrivalsPerSecond = options.arrivalsPerSecond ?? 40
  // More units than the load's buyers can take even if every fault is harmless (faults take
  // longer than their holds), so units remain through every fault and an outage shows as a
  // gap; the drain at the end sells the rest to spare buyers.
  const expectedMillis = warmupMillis + faultMillis + 3 * leaseTtlMillis + 6_000
  const buyerCount = Math.ceil((expectedMillis / 1_000) * arrivalsPerSecond * 2)
  const stock = Math.round(((warmupMillis + 2 * faultMillis + 10_000) / 1_000) * arrivalsPerSecond)
  const spareCount = stock + 50
  const plan = drawPlan({
    seed: options.seed,
    faultMillis,
    buyers: buyerCount,
    ...(options.kinds === undefined ? {} : { kinds: options.kinds })
  })

  const folder = mkdtempSync(join(tmpdir(), `mincommerce-chaos-${options.seed}-`))
  // PostgreSQL may run under its own account (see PrivateServices) and writes its log here.
  chmodSync(folder, 0o755)
  const cleanups: Array<() => Promise<void>> = []
  const cleanUp = async () => {
    active.delete(cleanUp)
    for (const cleanup of cleanups.splice(0)) await cleanup().catch(() => {})
  }
  active.add(cleanUp)
  let keep = options.keep === true
  try {
    const postgres = await privatePostgres({ logFile: join(folder, "postgresql.log") })
    cleanups.push(postgres.close)
    const pgProxy = await startFaultProxy({ port: postgres.port })
    cleanups.push(pgProxy.close)
    const redis = await privateRedis()
    cleanups.push(redis.close)
    say(`seed ${options.seed}: PostgreSQL :${postgres.port} (proxy :${pgProxy.port}), Redis :${redis.port}`)

    const proxied = new URL(postgres.url)
    proxied.port = String(pgProxy.port)
    const prefix = `chaos-${options.seed}:`
    const secret = randomBytes(32).toString("hex")
    const nodes = await makeNodes(nodeCount, {
      databaseUrl: proxied.toString(),
      redisUrl: redis.url,
      redisPrefix: prefix,
      secret,
      leaseTtlMillis,
      logDir: folder,
      ...(options.root === undefined ? {} : { root: options.root })
    })
    cleanups.unshift(nodes.close)
    // The first node migrates the schema alone; the others then start together.
    const [first, ...rest] = nodes.nodes
    await nodes.start(first!)
    await Promise.all(rest.map((node) => nodes.start(node)))

    const shop = await stockShop(postgres.url, {
      stock,
      buyers: buyerCount + spareCount,
      tag: String(options.seed)
    })
    const saleId = shop.saleId
    const sign = tokenSigner(secret)
    const buyers: Array<Buyer> = shop.users.map(({ userId, email }) => ({
      userId,
      token: sign(userId, email)
    }))
    say(`seed ${options.seed}: ${nodeCount} nodes up; stock ${stock}, ${plan.faults.length} faults`)

    const leases = new Redis(redis.url, {
      lazyConnect: false,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      commandTimeout: 300,
      retryStrategy: () => 200
    })
    leases.on("error", () => {})
    cleanups.unshift(async () => leases.disconnect())
    let knownOwner: ChaosNode | undefined
    const owner = async () => {
      try {
        const holder = await leases.get(`${prefix}lease:${saleId}`)
        const node = nodes.nodes.find((n) => n.nodeId === holder)
        if (node !== undefined) knownOwner = node
      } catch {
        // Redis is the fault right now: the last owner it named
      }
      return knownOwner
    }

    const t0 = Date.now()
    const clock = () => Date.now() - t0
    const history = new History()
    const urls = nodes.nodes.map((n) => n.url)
    const targets: Targets = { nodes, postgres, pgProxy, redis, owner, clock }
    let until = Infinity

    // One purchase before the load: a node that refuses the suite's tokens or paths stops the
    // run here, not after a minute of 401s.
    const probe = await purchase(
      { urls, saleId, history, clock, requestTimeoutMillis: 10_000 },
      buyers.length - 1,
      buyers[buyers.length - 1]!,
      0
    )
    if (probe.outcome !== "ok")
      throw new Error(`the first purchase was answered ${probe.status} ${probe.code ?? ""}`)

    const load = runLoad({
      urls,
      saleId,
      buyers: buyers.slice(0, buyerCount),
      plans: plan.buyers,
      history,
      clock,
      arrivalsPerSecond,
      concurrency: 64,
      requestTimeoutMillis,
      maxAttempts: 6,
      until: () => until
    })

    await waitFor("the sale to have an owner", async () => (await owner()) ?? undefined, 20_000, 100)
    await sleep(warmupMillis)
    const injected: Array<Injected> = []
    try {
      for (const [index, fault] of plan.faults.entries()) {
        const owned = (await owner())?.nodeId ?? "?"
        const done = await inject(targets, fault)
        injected.push(done)
        say(
          `seed ${options.seed}: fault ${index + 1}/${plan.faults.length} ${fault.kind}` +
            `${done.nodeId === undefined ? "" : ` ${done.nodeId}${done.nodeId === owned ? " (owner)" : ""}`}` +
            ` held ${done.healedAt - done.startedAt} ms${done.note === undefined ? "" : `, ${done.note}`}; ` +
            `${history.byOutcome.ok} ok ${history.byOutcome.failed} failed ${history.byOutcome.unknown} unknown`
        )
        await sleep(fault.quietMillis)
      }
    } finally {
      await healAll(targets)
    }
    // Time for a lease to lapse and a new owner to load the sale before "sold out" must be true.
    const settledAt = clock() + 2 * leaseTtlMillis + 1_000
    until = settledAt + 3_000
    await load
    const loadEnd = clock()

    // The drain: fresh buyers until the sale says sold out, so a run always ends at its last
    // unit and a "sold out" with units left in PostgreSQL shows.
    let soldOut = false
    const spares = buyers.slice(buyerCount)
    let nextSpare = 0
    const drainUntil = clock() + 30_000
    const drainer = async () => {
      while (!soldOut && nextSpare < spares.length && clock() < drainUntil) {
        const index = buyerCount + nextSpare++
        for (let attempt = 0; attempt < 5; attempt++) {
          const op = await purchase(
            { urls, saleId, history, clock, requestTimeoutMillis },
            index,
            buyers[index]!,
            (index + attempt) % urls.length
          )
          if (op.code === "sold_out") soldOut = true
          if (op.outcome !== "unknown") break
          await sleep(100)
        }
      }
    }
    await Promise.all(Array.from({ length: 32 }, drainer))
    say(`seed ${options.seed}: load and drain done (${soldOut ? "sold out" : "NOT sold out"}), checking`)

    const record = await readSale(postgres.url, saleId)
    const result = check({
      record,
      history,
      faults: injected,
      settledAt,
      loadEnd,
      crashes: nodes.nodes.flatMap((n) => n.unexpectedExits)
    })
    if (result.violations.length > 0) {
      keep = true
      writeFileSync(
        join(folder, "history.json"),
        JSON.stringify(
          { seed: options.seed, plan: plan.faults, injected, result, operations: history.operations },
          null,
          1
        )
      )
    }
    return {
      plan,
      injected,
      check: result,
      history,
      leaseTtlMillis,
      millis: Date.now() - began,
      ...(keep ? { folder } : {})
    }
  } catch (error) {
    keep = true
    throw new Error(`seed ${options.seed} could not run (logs in ${folder}): ${String(error)}`, {
      cause: error
    })
  } finally {
    await cleanUp()
    if (!keep) rmSync(folder, { recursive: true, force: true })
  }
}

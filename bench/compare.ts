/**
 * `npm run bench`: MinCommerce (one node, three nodes) against the lock-based designs (row
 * lock, advisory lock, Redis decrement) and the bare node:http ceiling, for the same sale,
 * with the same load generator and HTTP stack, in one run. Writes a Markdown report, a JSON
 * file and an SVG chart to bench/results/ (with --docs, also docs/bench.md and docs/bench.svg
 * for the README). Fails only when one of MinCommerce's designs breaks an invariant or cannot
 * run; speed is reported, not asserted.
 *
 * Options: --quick (a smoke run of a few seconds per design), --designs a,b (of: mincommerce,
 * mincommerce-3, row-lock, advisory-lock, redis-decrement, ceiling), --stock N, --buyers N,
 * --connections 64,256, --duration S, --runs N, --warmup S, --pool N (connections in each
 * baseline's pg pool, default 20), --docs, --render FILE.json (report and chart again from a
 * run's data, without measuring).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Exit } from "effect"
import { SqlClient } from "effect/sql"
import { Redis } from "ioredis"
import { randomBytes } from "node:crypto"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { cpus, loadavg, totalmem } from "node:os"
import { basename } from "node:path"
import { parseArgs } from "node:util"
import * as prettier from "prettier"
import type { SaleId } from "../src/domain/Ids.ts"
import { Audit } from "../src/storage/Audit.ts"
import { makeSale, makeUsers } from "../tests/support/Fixtures.ts"
import { freshServerStorage } from "../tests/support/TestDatabase.ts"
import { chartSvg } from "./chart.ts"
import { designIds, designs, type Design, type Running } from "./designs.ts"
import { load } from "./load.ts"
import { phaseProgress } from "./progress.ts"
import { consoleSummary, markdown, oursBroken } from "./report.ts"
import { checkRun, type BenchResult, type DesignResult, type Run } from "./summary.ts"
import { benchSecret, signTokens } from "./tokens.ts"

const usage = (message: string): never => {
  console.error(`npm run bench: ${message}`)
  process.exit(2)
}

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    designs: { type: "string" },
    stock: { type: "string" },
    buyers: { type: "string" },
    connections: { type: "string" },
    duration: { type: "string" },
    runs: { type: "string" },
    warmup: { type: "string" },
    pool: { type: "string" },
    render: { type: "string" },
    docs: { type: "boolean", default: false }
  }
})
const quick = args.quick === true
const positive = (name: string, text: string | undefined, fallback: number): number => {
  const value = Number(text ?? fallback)
  if (!Number.isFinite(value) || value <= 0) usage(`--${name} wants a positive number, got ${text}`)
  return value
}
const settings = {
  quick,
  stock: positive("stock", args.stock, 10_000),
  buyers: positive("buyers", args.buyers, quick ? 20_000 : 200_000),
  connections: (args.connections ?? "256").split(",").map((c) => positive("connections", c, 256)),
  seconds: positive("duration", args.duration, quick ? 3 : 10),
  runs: positive("runs", args.runs, quick ? 1 : 3),
  warmupSeconds: positive("warmup", args.warmup, quick ? 1 : 3),
  poolSize: positive("pool", args.pool, 20)
}
const chosen = (args.designs ?? designIds.join(",")).split(",").map((id) => id.trim())
for (const id of chosen) {
  if (!(designIds as ReadonlyArray<string>).includes(id)) {
    usage(`--designs: unknown design ${id} (known: ${designIds.join(", ")})`)
  }
}
const selected = designs.filter((design) => chosen.includes(design.id))
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379"

const redisVersion = Effect.promise(async () => {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
  try {
    return /redis_version:(\S+)/.exec(await redis.info("server"))?.[1] ?? "unknown"
  } catch {
    return "unreachable"
  } finally {
    redis.disconnect()
  }
})

/** Removes every Redis key this run wrote. */
const dropRedisKeys = (prefix: string) =>
  Effect.promise(async () => {
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 })
    try {
      let cursor = "0"
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
        if (keys.length > 0) await redis.del(...keys)
        cursor = next
      } while (cursor !== "0")
    } catch {
      // Redis down: nothing of ours to remove.
    } finally {
      redis.disconnect()
    }
  })

/** Writes the report, the chart and the data to bench/results/ (and, with --docs, docs/). */
const publish = (result: BenchResult, name: string) =>
  Effect.gen(function* () {
    const folder = new URL("./results/", import.meta.url)
    mkdirSync(folder, { recursive: true })
    const svg = yield* Effect.promise(() => chartSvg(result, Math.max(...result.settings.connections)))
    writeFileSync(new URL(`${name}.svg`, folder), svg)
    writeFileSync(new URL(`${name}.json`, folder), `${JSON.stringify(result, null, 2)}\n`)
    // Formatted as the repository's own Markdown is, so docs/bench.md passes `npm run lint`.
    const report = (chart: string) =>
      Effect.promise(() => prettier.format(markdown(result, chart), { parser: "markdown" }))
    writeFileSync(new URL(`${name}.md`, folder), yield* report(`${name}.svg`))
    console.log(`\nreport: bench/results/${name}.md (chart ${name}.svg, data ${name}.json)`)
    if (args.docs === true) {
      const docs = new URL("../docs/", import.meta.url)
      mkdirSync(docs, { recursive: true })
      writeFileSync(new URL("bench.svg", docs), svg)
      writeFileSync(new URL("bench.md", docs), yield* report("bench.svg"))
      console.log("copied to docs/bench.md and docs/bench.svg")
    }
  })

/** --render FILE.json: the report and chart again from a run's data, without measuring. */
const render = (file: string) =>
  Effect.gen(function* () {
    const result = JSON.parse(readFileSync(file, "utf8")) as BenchResult
    console.log(consoleSummary(result))
    yield* publish(result, basename(file, ".json"))
  })

const program = Effect.gen(function* () {
  const startedAt = new Date().toISOString()
  const loadBefore = loadavg()[0]!
  const { url: databaseUrl, storage } = yield* freshServerStorage()
  const inStorage = Effect.provideContext(storage)
  const postgres = yield* Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<{ version: string }>`SELECT version()`
  ).pipe(
    inStorage,
    Effect.map((rows) => rows[0]?.version.split(" on ")[0] ?? "unknown"),
    Effect.orDie
  )
  const redis = yield* redisVersion
  const cpu = cpus()
  const machine = {
    cpu: cpu[0]?.model.trim() ?? "unknown CPU",
    cores: cpu.length,
    memoryGiB: totalmem() / 2 ** 30,
    node: process.version,
    postgres,
    redis
  }
  console.log(`MinCommerce bench${quick ? " (quick)" : ""}`)
  console.log(`machine: ${machine.cores} x ${machine.cpu}, ${machine.memoryGiB.toFixed(1)} GiB`)
  console.log(`versions: Node ${machine.node}, ${machine.postgres}, Redis ${machine.redis}`)
  console.log(
    `sale: ${settings.stock.toLocaleString("en-US")} units, ${settings.buyers.toLocaleString("en-US")} buyers; ` +
      `${settings.connections.join(",")} connections, ${settings.runs} x ${settings.seconds} s per design after a ${settings.warmupSeconds} s warm-up`
  )

  const users = yield* makeUsers(settings.buyers).pipe(inStorage)
  // Settle the database after the bulk insert, so autovacuum's analyze and a checkpoint do not
  // land on the first design's first run.
  yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.andThen(sql`VACUUM ANALYZE`, sql`CHECKPOINT`)
  ).pipe(inStorage, Effect.orDie)
  const tokens = signTokens(users)
  console.log(`${users.length.toLocaleString("en-US")} buyers signed in`)
  const redisPrefix = `bench:${randomBytes(4).toString("hex")}:`
  const context = { databaseUrl, redisUrl, secret: benchSecret, redisPrefix, poolSize: settings.poolSize }

  const readRecord = (saleId: SaleId, running: Running) =>
    Effect.gen(function* () {
      const record = yield* Effect.flatMap(Audit, (audit) => audit.read(saleId)).pipe(inStorage, Effect.orDie)
      const remaining = running.remaining
      return remaining === undefined
        ? record
        : { ...record, available: yield* Effect.promise(() => remaining(saleId)) }
    })

  // Requests the load generator gave up on at the end of a run may still be committing:
  // read until two reads a quarter second apart agree (at most ~5 s).
  const settledRecord = (saleId: SaleId, running: Running) =>
    Effect.gen(function* () {
      let record = yield* readRecord(saleId, running)
      for (let i = 0; i < 20; i++) {
        yield* Effect.sleep("250 millis")
        const again = yield* readRecord(saleId, running)
        const same = again.orders.size === record.orders.size && again.available === record.available
        record = again
        if (same) break
      }
      return record
    })

  const measure = (design: Design, running: Running, round: number) =>
    Effect.gen(function* () {
      const warmSale = yield* makeSale(settings.stock).pipe(inStorage)
      const warm = phaseProgress(`${design.title}, warm-up`, settings.warmupSeconds)
      const warmed = yield* load({
        urls: running.urls(warmSale),
        connections: Math.max(...settings.connections),
        seconds: settings.warmupSeconds,
        tokens,
        users,
        record: false,
        ticker: warm
      })
      warm.done(`${warmed.requests.toLocaleString("en-US")} requests (not counted)`)
      const byConnections = new Map<number, Run>()
      for (const connections of settings.connections) {
        const saleId = yield* makeSale(settings.stock).pipe(inStorage)
        const progress = phaseProgress(
          `${design.title}, ${connections} conn., run ${round}/${settings.runs}`,
          settings.seconds
        )
        const phase = yield* load({
          urls: running.urls(saleId),
          connections,
          seconds: settings.seconds,
          tokens,
          users,
          record: design.checked,
          ticker: progress
        })
        let invariants
        if (design.checked) {
          const record = yield* settledRecord(saleId, running)
          invariants = checkRun(record, phase.confirmed, phase.refused)
        }
        // Sold out as the buyers saw it: every unit answered 201 within the run.
        const soldOut = design.checked && phase.purchased >= settings.stock
        byConnections.set(connections, {
          seconds: phase.seconds,
          requests: phase.requests,
          requestsPerSecond: phase.requestsPerSecond,
          purchasesPerSecond: phase.purchasesPerSecond,
          purchased: phase.purchased,
          p50: phase.p50,
          p99: phase.p99,
          p999: phase.p999,
          outcomes: phase.outcomes,
          generatorCpuPercent: phase.generatorCpuPercent,
          sellOutSeconds: soldOut ? phase.lastPurchaseSeconds : undefined,
          invariants
        })
        progress.done(
          `${Math.round(phase.requestsPerSecond).toLocaleString("en-US")} req/s, ` +
            (design.id === "ceiling"
              ? ""
              : `${Math.round(phase.purchasesPerSecond).toLocaleString("en-US")} purchases/s, `) +
            `p99 ${phase.p99} ms, wrk CPU ${Math.round(phase.generatorCpuPercent)} %` +
            (invariants === undefined
              ? ""
              : `, ${invariants.committed.toLocaleString("en-US")} sold${soldOut ? ` (sold out after ${phase.lastPurchaseSeconds.toFixed(2)} s)` : ""}`)
        )
      }
      return byConnections
    })

  // Rounds: each counted run of every design, in turn, on freshly started servers, so a burst
  // of other work on a shared machine lands on one run of several designs, not on every run of one.
  const runs = new Map<Design, Map<number, Array<Run>>>()
  const skipped = new Map<Design, string>()
  const failed = new Map<Design, string>()
  for (const design of selected) {
    const why = design.unavailable()
    if (why !== undefined) skipped.set(design, why)
    runs.set(design, new Map(settings.connections.map((connections) => [connections, []])))
  }
  for (let round = 1; round <= settings.runs; round++) {
    // Each round starts one design later, so no design always runs first or last.
    const shift = (round - 1) % selected.length
    for (const design of [...selected.slice(shift), ...selected.slice(0, shift)]) {
      if (skipped.has(design) || failed.has(design)) continue
      console.log(`\n${design.title}${settings.runs > 1 ? `, round ${round}/${settings.runs}` : ""}`)
      const exit = yield* Effect.exit(
        Effect.scoped(Effect.flatMap(design.start(context), (running) => measure(design, running, round)))
      )
      if (Exit.isSuccess(exit)) {
        for (const [connections, run] of exit.value) runs.get(design)?.get(connections)?.push(run)
      } else {
        const why = String(Cause.squash(exit.cause)).split("\n")[0] ?? "failed"
        console.log(`  failed: ${why}`)
        failed.set(design, why)
      }
    }
  }
  for (const [design, why] of skipped) console.log(`\n${design.title}: ${why}`)
  const results: Array<DesignResult> = selected.map((design) => ({
    id: design.id,
    title: design.title,
    description: design.description,
    ours: design.ours,
    checked: design.checked,
    ...(skipped.has(design) ? { skipped: skipped.get(design)! } : {}),
    ...(failed.has(design) ? { failed: failed.get(design)! } : {}),
    byConnections: failed.has(design)
      ? []
      : [...(runs.get(design) ?? new Map<number, Array<Run>>())].map(([connections, list]) => ({
          connections,
          runs: list
        }))
  }))
  yield* dropRedisKeys(redisPrefix)

  const finishedAt = new Date().toISOString()
  const result: BenchResult = {
    startedAt,
    finishedAt,
    command: ["npm run bench", ...(process.argv.length > 2 ? ["--", ...process.argv.slice(2)] : [])].join(
      " "
    ),
    machine: { ...machine, loadAverage: { before: loadBefore, after: loadavg()[0]! } },
    settings,
    designs: results
  }
  console.log(consoleSummary(result))

  yield* publish(result, `bench-${finishedAt.replace(/[:.]/g, "-").slice(0, 19)}${quick ? "-quick" : ""}`)

  const broken = oursBroken(result)
  if (broken.length > 0) {
    console.log(`\nMinCommerce broke an invariant or could not run:\n  ${broken.join("\n  ")}`)
    process.exitCode = 1
  }
}).pipe(Effect.scoped)

NodeRuntime.runMain(args.render === undefined ? program : render(args.render))

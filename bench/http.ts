/**
 * `npm run bench:http`: the purchase flood over HTTP against the real service and, back to
 * back in every round, a bare node:http server that parses the body and answers a fixed JSON
 * (the ceiling), both loaded by wrk (bench/load.ts) with the same buyers and bodies. Every
 * request is a new buyer; each round sells a fresh sale. Figures are medians over the rounds
 * with min–max; a round whose ceiling moved more than `ceilingDrift` from the median is
 * flagged. Options: --quick, --rounds N, --buyers N, --stock N, --duration S,
 * --connections 64,256. Fails only when an invariant is broken. BENCH_NODE_ARGS passes flags
 * to the servers it starts.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { cpus, loadavg, totalmem } from "node:os"
import { parseArgs } from "node:util"
import { Audit, checkInvariants, violations } from "../src/storage/Audit.ts"
import { makeSale, makeUsers } from "../tests/support/Fixtures.ts"
import { freshServerStorage } from "../tests/support/TestDatabase.ts"
import { load, type Phase } from "./load.ts"
import type { ProbeStats } from "./probe.ts"
import { phaseProgress } from "./progress.ts"
import { serve, type Served } from "./serve.ts"
import { formatRate, ratio, spread, type Spread } from "./stats.ts"
import { benchSecret, signTokens } from "./tokens.ts"

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    rounds: { type: "string" },
    buyers: { type: "string" },
    stock: { type: "string" },
    duration: { type: "string" },
    connections: { type: "string" }
  }
})
const quick = args.quick === true
const rounds = Number(args.rounds ?? (quick ? 1 : 3))
const buyers = Number(args.buyers ?? (quick ? 20_000 : 200_000))
const stock = Number(args.stock ?? 10_000)
const duration = Number(args.duration ?? (quick ? 3 : 10))
const connectionCounts = (args.connections ?? (quick ? "64" : "256")).split(",").map(Number)
/** A round's ceiling further than this from the median ceiling is flagged. */
const ceilingDrift = 0.15

/** One round at one connection count: MinCommerce, then the ceiling, back to back. */
interface Round {
  readonly ours: Phase
  readonly ceiling: Phase
  readonly oursProbe: ProbeStats
  readonly ceilingProbe: ProbeStats
  readonly violations: number
}

const measured = (server: Served, phase: Effect.Effect<Phase>) =>
  Effect.gen(function* () {
    yield* Effect.promise(server.probe)
    const result = yield* phase
    return { result, probe: yield* Effect.promise(server.probe) }
  })

const fmt = (s: Spread, digits = 0) =>
  s.runs === 1
    ? s.median.toFixed(digits)
    : `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`
const rate = (s: Spread) =>
  s.runs === 1 ? formatRate(s.median) : `${formatRate(s.median)} (${formatRate(s.min)}–${formatRate(s.max)})`

const report = (connections: number, list: ReadonlyArray<Round>) => {
  const of = (f: (round: Round) => number) => spread(list.map(f))
  const ms = (f: (round: Round) => number) => fmt(of(f), 1)
  const perRequest = (cpuMillis: number, requests: number) => (1_000 * cpuMillis) / Math.max(1, requests)
  const ceilings = list.map((r) => r.ceiling.requestsPerSecond)
  const middle = spread(ceilings).median
  const drifted = ceilings.filter((c) => Math.abs(c - middle) / middle > ceilingDrift).length
  const ratios = of((r) => ratio(r.ours.requestsPerSecond, r.ceiling.requestsPerSecond) * 100)
  const ours = (r: Round) => r.ours
  const bare = (r: Round) => r.ceiling
  console.log(`\n${connections} connections, ${list.length} round(s): median (min–max)`)
  console.log(
    `  MinCommerce: ${rate(of((r) => ours(r).requestsPerSecond))} req/s, ` +
      `${rate(of((r) => ours(r).purchasesPerSecond))} purchases/s, p50 ${ms((r) => ours(r).p50)} ms, ` +
      `p99 ${ms((r) => ours(r).p99)} ms, p99.9 ${ms((r) => ours(r).p999)} ms; ` +
      `wrk CPU ${fmt(of((r) => ours(r).generatorCpuPercent))} % of a core`
  )
  console.log(
    `    server: CPU ${ms((r) => perRequest(r.oursProbe.cpuMillis, ours(r).requests))} µs per request; ` +
      `event-loop delay p99 ${ms((r) => r.oursProbe.loopDelayP99)} ms, max ${ms((r) => r.oursProbe.loopDelayMax)} ms; ` +
      `GC ${fmt(of((r) => r.oursProbe.gcCount))} pauses, ${fmt(of((r) => r.oursProbe.gcTotalMillis))} ms in all, ` +
      `longest ${ms((r) => r.oursProbe.gcMaxMillis)} ms`
  )
  console.log(
    `  bare node:http: ${rate(of((r) => bare(r).requestsPerSecond))} req/s, p50 ${ms((r) => bare(r).p50)} ms, ` +
      `p99 ${ms((r) => bare(r).p99)} ms, p99.9 ${ms((r) => bare(r).p999)} ms; ` +
      `wrk CPU ${fmt(of((r) => bare(r).generatorCpuPercent))} % of a core`
  )
  console.log(
    `    server: CPU ${ms((r) => perRequest(r.ceilingProbe.cpuMillis, bare(r).requests))} µs per request; ` +
      `event-loop delay p99 ${ms((r) => r.ceilingProbe.loopDelayP99)} ms`
  )
  console.log(
    `  ratio to the bare server: ${fmt(ratios)} % of its requests/s (goal >= 70 %); ` +
      `p99 ${fmt(
        of((r) => ours(r).p99 / bare(r).p99),
        2
      )}x the bare server's (goal <= 2x)`
  )
  if (drifted > 0)
    console.log(
      `  FLAGGED: the ceiling moved more than ${ceilingDrift * 100} % from its median in ${drifted} round(s): ` +
        `${ceilings.map(formatRate).join(", ")} req/s`
    )
  const last = list[list.length - 1]
  if (last !== undefined)
    console.log(`  outcomes by status (last round): ${JSON.stringify(last.ours.outcomes)}`)
}

const program = Effect.gen(function* () {
  const { url: databaseUrl, storage } = yield* freshServerStorage()
  const cpu = cpus()
  console.log(`MinCommerce bench:http${quick ? " (quick)" : ""}`)
  console.log(
    `machine: ${cpu.length} x ${cpu[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, load average ${loadavg()[0]?.toFixed(2)}`
  )
  console.log(
    `${buyers.toLocaleString("en-US")} signed-in buyers, ${stock.toLocaleString("en-US")} units per sale, ${duration} s per run, ` +
      `${rounds} round(s), load generator wrk (native; its CPU is stated)`
  )
  const users = yield* makeUsers(buyers).pipe(Effect.provideContext(storage))
  const tokens = signTokens(users)
  const node = yield* serve("src/main.ts", {
    DATABASE_URL: databaseUrl,
    PORT: "0",
    JWT_SECRET: benchSecret,
    LOG_LEVEL: "Info",
    RATE_LIMIT_PER_USER: "0"
  })
  const bare = yield* serve("bench/bare.ts", {})
  const phase = (url: string, connections: number, seconds: number, record: boolean, label: string) => {
    const progress = phaseProgress(label, seconds)
    return load({ urls: [url], connections, seconds, tokens, users, record, ticker: progress }).pipe(
      Effect.tap((result) =>
        Effect.sync(() =>
          progress.done(`${formatRate(result.requestsPerSecond)} req/s, p99 ${result.p99.toFixed(1)} ms`)
        )
      )
    )
  }

  // Warm-up of both servers, not counted.
  const warm = yield* makeSale(stock).pipe(Effect.provideContext(storage))
  yield* phase(`${node.url}/api/sales/${warm}/purchases`, 64, 2, false, "warm-up, MinCommerce")
  yield* phase(`${bare.url}/`, 64, 2, false, "warm-up, bare node:http")

  let broken = 0
  const results = new Map<number, Array<Round>>(connectionCounts.map((c) => [c, []]))
  for (let round = 1; round <= rounds; round++) {
    for (const connections of connectionCounts) {
      const saleId = yield* makeSale(stock).pipe(Effect.provideContext(storage))
      const label = `${connections} conn., round ${round}/${rounds}`
      const ours = yield* measured(
        node,
        phase(
          `${node.url}/api/sales/${saleId}/purchases`,
          connections,
          duration,
          true,
          `MinCommerce, ${label}`
        )
      )
      const ceiling = yield* measured(
        bare,
        phase(`${bare.url}/`, connections, duration, false, `bare, ${label}`)
      )
      const record = yield* Effect.provideContext(
        Effect.flatMap(Audit, (audit) => audit.read(saleId)),
        storage
      )
      const invariants = checkInvariants(record, ours.result.confirmed)
      broken += violations(invariants)
      console.log(
        `  invariants: committed ${invariants.committed}/${stock}, oversold ${invariants.oversold}, duplicate buyers ` +
          `${invariants.duplicateBuyers}, 2xx without a row ${invariants.lostConfirmed} -> ${violations(invariants) === 0 ? "OK" : "VIOLATED"}`
      )
      results.get(connections)?.push({
        ours: ours.result,
        ceiling: ceiling.result,
        oursProbe: ours.probe,
        ceilingProbe: ceiling.probe,
        violations: violations(invariants)
      })
    }
  }
  for (const [connections, list] of results) report(connections, list)
  if (broken > 0) {
    console.log("INVARIANT VIOLATED")
    process.exitCode = 1
  }
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)

/**
 * `npm run bench:http`: purchases over HTTP against the real service, and in the same run,
 * with the same load generator (autocannon) and bodies, a bare node:http server that parses
 * the body and answers a fixed JSON (the ceiling). Options: --quick, --buyers N, --stock N,
 * --duration S, --connections 64,256. Fails only when an invariant is broken. BENCH_NODE_ARGS
 * passes flags to the node processes it starts (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { cpus, totalmem } from "node:os"
import { parseArgs } from "node:util"
import { Audit, checkInvariants, violations } from "../src/storage/Audit.ts"
import { makeSale, makeUsers } from "../tests/support/Fixtures.ts"
import { freshServerStorage } from "../tests/support/TestDatabase.ts"
import { load } from "./load.ts"
import { serve } from "./serve.ts"
import { formatRate } from "./stats.ts"
import { benchSecret, signTokens } from "./tokens.ts"

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    buyers: { type: "string" },
    stock: { type: "string" },
    duration: { type: "string" },
    connections: { type: "string" }
  }
})
const quick = args.quick === true
const buyers = Number(args.buyers ?? (quick ? 20_000 : 200_000))
const stock = Number(args.stock ?? 10_000)
const duration = Number(args.duration ?? (quick ? 3 : 10))
const connectionCounts = (args.connections ?? (quick ? "64" : "64,256")).split(",").map(Number)
const program = Effect.gen(function* () {
  const { url: databaseUrl, storage } = yield* freshServerStorage()
  const cpu = cpus()
  console.log(`MinCommerce bench:http${quick ? " (quick)" : ""}`)
  console.log(
    `machine: ${cpu.length} x ${cpu[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`
  )
  console.log(
    `${buyers.toLocaleString("en-US")} signed-in buyers, ${stock.toLocaleString("en-US")} units per sale, ${duration} s per run`
  )

  const users = yield* makeUsers(buyers).pipe(Effect.provideContext(storage))
  const tokens = signTokens(users)
  console.log(`signed ${tokens.length.toLocaleString("en-US")} tokens`)

  const node = yield* serve("src/main.ts", {
    DATABASE_URL: databaseUrl,
    PORT: "0",
    JWT_SECRET: benchSecret,
    LOG_LEVEL: "Info",
    RATE_LIMIT_PER_USER: "0"
  })
  const bare = yield* serve("bench/bare.ts", {})
  let broken = 0

  // Warm-up, not counted.
  const warm = yield* makeSale(stock).pipe(Effect.provideContext(storage))
  yield* load({
    urls: [`${node.url}/api/sales/${warm}/purchases`],
    connections: 64,
    seconds: 2,
    tokens,
    users
  })
  yield* load({ urls: [`${bare.url}/`], connections: 64, seconds: 2, tokens, users })

  for (const connections of connectionCounts) {
    const saleId = yield* makeSale(stock).pipe(Effect.provideContext(storage))
    console.log(`\n${connections} connections`)
    const ours = yield* load({
      urls: [`${node.url}/api/sales/${saleId}/purchases`],
      connections,
      seconds: duration,
      tokens,
      users
    })
    const ceiling = yield* load({ urls: [`${bare.url}/`], connections, seconds: duration, tokens, users })
    const record = yield* Effect.provideContext(
      Effect.flatMap(Audit, (audit) => audit.read(saleId)),
      storage
    )
    const report = checkInvariants(record, ours.confirmed)
    broken += violations(report)
    console.log(
      `  MinCommerce: ${formatRate(ours.requestsPerSecond)} req/s, ${formatRate(ours.purchasesPerSecond)} purchases/s ` +
        `(sold ${ours.purchased} in ${ours.lastPurchaseSeconds.toFixed(2)} s), latency p50 ${ours.p50} ms, ` +
        `p99 ${ours.p99} ms, p99.9 ${ours.p999} ms`
    )
    console.log(`  outcomes by status: ${JSON.stringify(ours.outcomes)}`)
    console.log(
      `  bare node:http: ${formatRate(ceiling.requestsPerSecond)} req/s, p50 ${ceiling.p50} ms, p99 ${ceiling.p99} ms`
    )
    console.log(
      `  ratio to the bare server: ${((100 * ours.requestsPerSecond) / ceiling.requestsPerSecond).toFixed(0)} % ` +
        `(goal >= 70 %); p99 ${ours.p99} ms (goal <= 25 ms at 256 connections)`
    )
    console.log(
      `  invariants: committed ${report.committed}/${stock}, oversold ${report.oversold}, duplicate buyers ` +
        `${report.duplicateBuyers}, 2xx without a row ${report.lostConfirmed} -> ${violations(report) === 0 ? "OK" : "VIOLATED"}`
    )
  }
  if (broken > 0) {
    console.log("INVARIANT VIOLATED")
    process.exitCode = 1
  }
}).pipe(Effect.scoped)

NodeRuntime.runMain(program)

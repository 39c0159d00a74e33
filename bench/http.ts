/**
 * `npm run bench:http`: purchases over HTTP against the real service, and in the same run,
 * with the same load generator (autocannon) and bodies, a bare node:http server that parses
 * the body and answers a fixed JSON (the ceiling). Options: --quick, --buyers N, --stock N,
 * --duration S, --connections 64,256. Fails only when an invariant is broken. BENCH_NODE_ARGS
 * passes flags to the node processes it starts (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
 */
import { NodeRuntime } from "@effect/platform-node"
import autocannon from "autocannon"
import { Effect, Layer, Redacted } from "effect"
import { SignJWT } from "jose"
import { spawn } from "node:child_process"
import { cpus, totalmem } from "node:os"
import { parseArgs } from "node:util"
import type { OrderId, UserId } from "../src/domain/Ids.ts"
import { Audit, checkInvariants, violations } from "../src/storage/Audit.ts"
import { Catalog } from "../src/storage/Catalog.ts"
import { Database } from "../src/storage/Database.ts"
import { makeSale, makeUsers } from "../tests/support/Fixtures.ts"
import { freshServerDatabase } from "../tests/support/TestDatabase.ts"
import { formatRate } from "./stats.ts"

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
const secret = "bench:http secret, shared with the node it starts"

/** A process that logs "Listening on <url>"; killed when the scope closes. */
const serve = (script: string, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly url: string; readonly kill: () => void }>((resume) => {
      const child = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS?.split(" ") ?? []), script], {
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "inherit"]
      })
      let output = ""
      child.stdout.on("data", (chunk: Buffer) => {
        output += chunk.toString()
        const url = /Listening on (http:\/\/[0-9.:]+)/.exec(output)?.[1]
        if (url !== undefined) resume(Effect.succeed({ url, kill: () => child.kill("SIGTERM") }))
      })
      child.on("exit", (code) => resume(Effect.die(new Error(`${script} exited with ${code}`))))
    }),
    ({ kill }) => Effect.sync(kill)
  )

interface Phase {
  readonly requestsPerSecond: number
  readonly purchasesPerSecond: number
  readonly p50: number
  readonly p99: number
  readonly p999: number
  readonly byStatus: Record<number, number>
  readonly confirmed: Map<OrderId, UserId>
  readonly sellOutSeconds: number
}

const load = (
  url: string,
  connections: number,
  seconds: number,
  tokens: ReadonlyArray<string>,
  users: ReadonlyArray<UserId>
) =>
  Effect.promise(async (): Promise<Phase> => {
    let next = 0
    const byStatus: Record<number, number> = {}
    const confirmed = new Map<OrderId, UserId>()
    const started = performance.now()
    let lastPurchase = started
    const result = await autocannon({
      url,
      connections,
      duration: seconds,
      requests: [
        {
          method: "POST",
          body: '{"quantity":1}',
          setupRequest: (request, context: { user?: number }) => {
            const i = next++ % tokens.length
            context.user = i
            return {
              ...request,
              headers: {
                ...request.headers,
                "content-type": "application/json",
                authorization: `Bearer ${tokens[i]}`
              }
            }
          },
          onResponse: (status, body, context: { user?: number }) => {
            byStatus[status] = (byStatus[status] ?? 0) + 1
            if (status === 201) {
              lastPurchase = performance.now()
              const orderId = (JSON.parse(body) as { orderId?: OrderId }).orderId
              if (orderId !== undefined && context.user !== undefined)
                confirmed.set(orderId, users[context.user]!)
            }
          }
        }
      ]
    })
    const sellOutSeconds = (lastPurchase - started) / 1_000
    return {
      requestsPerSecond: result.requests.average,
      purchasesPerSecond: confirmed.size / Math.max(sellOutSeconds, 0.001),
      p50: result.latency.p50,
      p99: result.latency.p99,
      p999: result.latency.p99_9,
      byStatus,
      confirmed,
      sellOutSeconds
    }
  })

const program = Effect.gen(function* () {
  const { url: databaseUrl } = yield* freshServerDatabase
  const storage = yield* Layer.build(
    Layer.mergeAll(Catalog.layer, Audit.layer).pipe(
      Layer.provideMerge(Database.server(Redacted.make(databaseUrl)))
    )
  )
  const cpu = cpus()
  console.log(`MinCommerce bench:http${quick ? " (quick)" : ""}`)
  console.log(
    `machine: ${cpu.length} x ${cpu[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}`
  )
  console.log(
    `${buyers.toLocaleString("en-US")} signed-in buyers, ${stock.toLocaleString("en-US")} units per sale, ${duration} s per run`
  )

  const users = yield* makeUsers(buyers).pipe(Effect.provideContext(storage))
  const key = new TextEncoder().encode(secret)
  const tokens = yield* Effect.promise(() =>
    Promise.all(
      users.map((userId, i) =>
        new SignJWT({ email: `buyer-${i}@example.test`, admin: false })
          .setProtectedHeader({ alg: "HS256" })
          .setSubject(userId)
          .setExpirationTime("2h")
          .sign(key)
      )
    )
  )
  console.log(`signed ${tokens.length.toLocaleString("en-US")} tokens`)

  const node = yield* serve("src/main.ts", {
    DATABASE_URL: databaseUrl,
    PORT: "0",
    JWT_SECRET: secret,
    LOG_LEVEL: "Info",
    RATE_LIMIT_PER_USER: "0"
  })
  const bare = yield* serve("bench/bare.ts", {})
  let broken = 0

  // Warm-up, not counted.
  const warm = yield* makeSale(stock).pipe(Effect.provideContext(storage))
  yield* load(`${node.url}/api/sales/${warm}/purchases`, 64, 2, tokens, users)
  yield* load(`${bare.url}/`, 64, 2, tokens, users)

  for (const connections of connectionCounts) {
    const saleId = yield* makeSale(stock).pipe(Effect.provideContext(storage))
    console.log(`\n${connections} connections`)
    const ours = yield* load(
      `${node.url}/api/sales/${saleId}/purchases`,
      connections,
      duration,
      tokens,
      users
    )
    const ceiling = yield* load(`${bare.url}/`, connections, duration, tokens, users)
    const record = yield* Effect.provideContext(
      Effect.flatMap(Audit, (audit) => audit.read(saleId)),
      storage
    )
    const report = checkInvariants(record, ours.confirmed)
    broken += violations(report)
    console.log(
      `  MinCommerce: ${formatRate(ours.requestsPerSecond)} req/s, ${formatRate(ours.purchasesPerSecond)} purchases/s ` +
        `(sold ${ours.confirmed.size} in ${ours.sellOutSeconds.toFixed(2)} s), latency p50 ${ours.p50} ms, ` +
        `p99 ${ours.p99} ms, p99.9 ${ours.p999} ms`
    )
    console.log(`  outcomes by status: ${JSON.stringify(ours.byStatus)}`)
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

/**
 * `npm run bench:auth`: what built-in identity costs. Argon2id is slow on purpose, so this
 * states its parameters and measures, against a real node on a fresh database:
 *
 * - Argon2id hashes per second on one core (in this process, one hash at a time);
 * - sign-ups and sign-ins per second through HTTP, with their latency;
 * - the purchase flood (wrk, as bench:http) alone, then again while sign-ins run at the same
 *   time, with the node's event-loop delay in both: hashing runs on libuv's thread pool, never
 *   on the event loop that serves purchases, so the loop's delay stays low; what purchases lose
 *   is CPU time the hashes take on a machine this small.
 *
 * Options: --quick, --seconds S (each phase), --concurrency N (sign-in clients), --buyers N.
 * The node's sign-in limits are off for the run (every client is one loopback address).
 */
import { hash } from "@node-rs/argon2"
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { cpus, loadavg, totalmem } from "node:os"
import { parseArgs } from "node:util"
import { argon2Parameters } from "../src/http/Passwords.ts"
import { makeSale, makeUsers } from "../tests/support/Fixtures.ts"
import { freshServerStorage } from "../tests/support/TestDatabase.ts"
import { load, type Phase } from "./load.ts"
import type { ProbeStats } from "./probe.ts"
import { serve } from "./serve.ts"
import { formatRate, percentile } from "./stats.ts"
import { benchSecret, signTokens } from "./tokens.ts"

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    seconds: { type: "string" },
    concurrency: { type: "string" },
    buyers: { type: "string" }
  }
})
const quick = args.quick === true
const seconds = Number(args.seconds ?? (quick ? 3 : 10))
const concurrency = Number(args.concurrency ?? 8)
const buyers = Number(args.buyers ?? (quick ? 40_000 : 150_000))
const accounts = quick ? 40 : 100
const password = "a bench password, long enough"

interface Calls {
  readonly count: number
  readonly failed: number
  readonly perSecond: number
  readonly p50: number
  readonly p99: number
}

/** `concurrency` clients calling `send(i)` back to back, for `count` calls or until `until`. */
const drive = async (
  send: (i: number) => Promise<Response>,
  options: { readonly count?: number; readonly until?: number }
): Promise<Calls> => {
  const latencies: Array<number> = []
  let failed = 0
  let next = 0
  const started = performance.now()
  const more = () => (options.count !== undefined ? next < options.count : Date.now() < (options.until ?? 0))
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (more()) {
        const i = next++
        const at = performance.now()
        const response = await send(i)
        await response.arrayBuffer()
        latencies.push(performance.now() - at)
        if (!response.ok) failed++
      }
    })
  )
  const elapsed = (performance.now() - started) / 1_000
  return {
    count: latencies.length,
    failed,
    perSecond: (latencies.length - failed) / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99)
  }
}

const post = (url: string, body: unknown) =>
  fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })

const calls = (c: Calls) =>
  `${formatRate(c.perSecond)}/s, p50 ${c.p50.toFixed(0)} ms, p99 ${c.p99.toFixed(0)} ms (${c.count} calls, ${c.failed} failed)`

const purchases = (p: Phase, probe: ProbeStats) =>
  `${formatRate(p.requestsPerSecond)} req/s, ${formatRate(p.purchasesPerSecond)} purchases/s, p50 ${p.p50.toFixed(1)} ms, ` +
  `p99 ${p.p99.toFixed(1)} ms; node event-loop delay p99 ${probe.loopDelayP99.toFixed(1)} ms, max ${probe.loopDelayMax.toFixed(1)} ms`

/** Hashes per second on one core: one at a time, so one pool thread works. */
const hashesPerCore = async () => {
  await hash(password, argon2Parameters)
  const started = performance.now()
  let n = 0
  while (performance.now() - started < 2_000) {
    await hash(password, argon2Parameters)
    n++
  }
  return n / ((performance.now() - started) / 1_000)
}

const program = Effect.gen(function* () {
  const cpu = cpus()
  console.log(`MinCommerce bench:auth${quick ? " (quick)" : ""}`)
  console.log(
    `machine: ${cpu.length} x ${cpu[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, ` +
      `load average ${loadavg()[0]?.toFixed(2)}, libuv pool ${process.env.UV_THREADPOOL_SIZE ?? "4"} threads`
  )
  console.log(
    `Argon2id: m=${argon2Parameters.memoryCost} KiB (${(argon2Parameters.memoryCost / 1024).toFixed(0)} MiB), ` +
      `t=${argon2Parameters.timeCost}, p=${argon2Parameters.parallelism} (OWASP's baseline)`
  )
  const perCore = yield* Effect.promise(hashesPerCore)
  console.log(`  one core: ${perCore.toFixed(1)} hashes/s (${(1_000 / perCore).toFixed(0)} ms per hash)`)

  const { url: databaseUrl, storage } = yield* freshServerStorage()
  const users = yield* makeUsers(buyers).pipe(Effect.provideContext(storage))
  const tokens = signTokens(users)
  const node = yield* serve("src/main.ts", {
    DATABASE_URL: databaseUrl,
    PORT: "0",
    JWT_SECRET: benchSecret,
    LOG_LEVEL: "Info",
    RATE_LIMIT_PER_USER: "0",
    AUTH_LIMIT_PER_ADDRESS: "0",
    AUTH_LIMIT_PER_ACCOUNT: "0",
    AUTH_SIGNUPS_PER_ADDRESS: "0",
    AUTH_FAILURES_PER_ACCOUNT: "0"
  })
  const email = (i: number) => `bench-${i % accounts}@example.test`

  const signUps = yield* Effect.promise(() =>
    drive((i) => post(`${node.url}/api/auth/signup`, { email: email(i), password }), { count: accounts })
  )
  console.log(`\nsign-ups, ${concurrency} clients: ${calls(signUps)}`)
  const signIns = yield* Effect.promise(() =>
    drive((i) => post(`${node.url}/api/auth/login`, { email: email(i), password }), {
      until: Date.now() + seconds * 1_000
    })
  )
  console.log(
    `sign-ins, ${concurrency} clients: ${calls(signIns)}; ${(signIns.perSecond / cpu.length).toFixed(1)}/s per core of ${cpu.length}`
  )
  const wrong = yield* Effect.promise(() =>
    drive((i) => post(`${node.url}/api/auth/login`, { email: email(i), password: "not the password" }), {
      count: concurrency * 4
    })
  )
  const unknown = yield* Effect.promise(() =>
    drive((i) => post(`${node.url}/api/auth/login`, { email: `nobody-${i}@example.test`, password }), {
      count: concurrency * 4
    })
  )
  console.log(
    `refused sign-ins (401): wrong password p50 ${wrong.p50.toFixed(0)} ms, unknown email p50 ${unknown.p50.toFixed(0)} ms`
  )

  // Purchases, alone and then with sign-ins at the same time, each on a fresh sale with
  // a unit for every buyer, so every answer is a purchase.
  const flood = (label: string) =>
    Effect.gen(function* () {
      const saleId = yield* makeSale(buyers).pipe(Effect.provideContext(storage))
      yield* Effect.promise(node.probe)
      const phase = yield* load({
        urls: [`${node.url}/api/sales/${saleId}/purchases`],
        connections: 64,
        seconds,
        tokens,
        users
      })
      return { label, phase, probe: yield* Effect.promise(node.probe) }
    })
  const warm = yield* makeSale(buyers).pipe(Effect.provideContext(storage))
  yield* load({
    urls: [`${node.url}/api/sales/${warm}/purchases`],
    connections: 64,
    seconds: 2,
    tokens,
    users
  })
  const alone = yield* flood("alone")
  const during = yield* Effect.all(
    [
      flood("with sign-ins"),
      Effect.promise(() =>
        drive((i) => post(`${node.url}/api/auth/login`, { email: email(i), password }), {
          until: Date.now() + seconds * 1_000
        })
      )
    ],
    { concurrency: 2 }
  )
  console.log(`\npurchases (wrk, 64 connections, ${seconds} s):`)
  console.log(`  alone:         ${purchases(alone.phase, alone.probe)}`)
  console.log(`  with sign-ins: ${purchases(during[0].phase, during[0].probe)}`)
  console.log(`  sign-ins meanwhile: ${calls(during[1])}`)
  console.log(
    `  purchases/s with sign-ins: ${((during[0].phase.requestsPerSecond / alone.phase.requestsPerSecond) * 100).toFixed(0)} % of alone`
  )
})

NodeRuntime.runMain(program.pipe(Effect.scoped))

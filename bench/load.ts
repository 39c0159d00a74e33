import { Effect } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { OrderId, UserId } from "../src/domain/Ids.ts"

/** What one load phase measured. */
export interface Phase {
  readonly seconds: number
  readonly requests: number
  readonly requestsPerSecond: number
  /** 201 answers per second from the start until the last 201 (while stock lasted). */
  readonly purchasesPerSecond: number
  readonly p50: number
  readonly p99: number
  readonly p999: number
  /** Answers by HTTP status, plus "errors" (connection errors) and "timeouts". */
  readonly outcomes: Record<string, number>
  /** Every 2xx answer with an order id: order id -> the buyer whose token was sent. */
  readonly confirmed: Map<OrderId, UserId>
  /** The same answers by the buyer's index in `tokens` (with `paths`, buyer i went to path i mod n). */
  readonly confirmedIndex: Map<OrderId, number>
  /** Buyers answered a definite refusal (a 4xx other than 408). */
  readonly refused: Set<UserId>
  readonly purchased: number
  /** Seconds from the start to the last 201. */
  readonly lastPurchaseSeconds: number
  /** The load generator's CPU time over the phase, as a share of one core (100 = one core busy). */
  readonly generatorCpuPercent: number
}

/** Live counts, for a progress bar. */
export interface Ticker {
  readonly onTick: (elapsedSeconds: number, requests: number, purchased: number) => void
}

const script = new URL("./wrk/purchase.lua", import.meta.url).pathname

interface ThreadLine {
  readonly purchased: number
  readonly lastPurchaseMs: number
  readonly statuses: Record<string, number>
  readonly confirmed: ReadonlyArray<string>
  /** Buyer indexes answered a definite refusal (a 4xx other than 408 and 429). */
  readonly refused: ReadonlyArray<number>
}

interface Summary {
  readonly requests: number
  readonly durationMicros: number
  readonly errors: Record<string, number>
  readonly p50: number
  readonly p99: number
  readonly p999: number
}

interface Run {
  readonly threads: ReadonlyArray<ThreadLine>
  readonly summary: Summary
  readonly cpuTicks: number
}

const runWrk = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  new Promise<Run>((resolve, reject) => {
    const child = spawn("wrk", args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    let errors = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => (errors += chunk.toString()))
    child.on("error", reject)
    // "close", not "exit": a thread's line can be long (every order it confirmed), and "exit"
    // may come before the pipe has given the last of it.
    child.on("close", (code) => {
      const lines = output.split("\n")
      const tagged = (tag: string) =>
        lines
          .filter((line) => line.startsWith(`${tag} `))
          .map((line) => JSON.parse(line.slice(tag.length + 1)))
      const [summary] = tagged("SUMMARY") as Array<Summary>
      const [cpu] = tagged("CPU") as Array<{ ticks: number }>
      if (code !== 0 || summary === undefined || cpu === undefined)
        return reject(new Error(`wrk exited with ${code}: ${errors}${output.slice(-2_000)}`))
      resolve({ threads: tagged("THREAD") as Array<ThreadLine>, summary, cpuTicks: cpu.ticks })
    })
  })

/**
 * The purchase flood through wrk, a native load generator, so the generator does not take the
 * server's CPU the way a Node one would: POSTs `{"quantity":1}` to `urls` for `seconds`, each
 * request with the next buyer's token (every buyer once while buyers last). One wrk process
 * per URL, `connections` spread evenly. With `record`, every answer is counted by status and
 * every 2xx matched to its buyer (what the invariant check needs); without it, wrk runs no Lua
 * per answer and only the latency and request count are known (the ceiling's case).
 */
export const load = (options: {
  readonly urls: ReadonlyArray<string>
  readonly connections: number
  readonly seconds: number
  readonly tokens: ReadonlyArray<string>
  readonly users: ReadonlyArray<UserId>
  /** Default true; false for a server whose answers need no checking (the ceiling). */
  readonly record?: boolean
  /** Paths on every URL's host: buyer i goes to path i mod n (default: each URL's own path). */
  readonly paths?: ReadonlyArray<string>
  /** wrk threads per process; default one per URL up to two in all (this machine's cores). */
  readonly threads?: number
  readonly ticker?: Ticker
}) =>
  Effect.acquireUseRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "mincommerce-wrk-"))),
    (folder) =>
      Effect.promise(async (): Promise<Phase> => {
        const tokensFile = join(folder, "tokens")
        writeFileSync(tokensFile, options.tokens.join("\n") + "\n")
        const pathsFile = join(folder, "paths")
        writeFileSync(pathsFile, options.paths === undefined ? "" : options.paths.join("\n") + "\n")
        const threads = options.threads ?? Math.max(1, Math.floor(2 / options.urls.length))
        const perUrl = Math.max(threads, Math.floor(options.connections / options.urls.length))
        const started = Date.now()
        // wrk prints nothing until it ends: the ticker shows the time only.
        const ticks = setInterval(() => options.ticker?.onTick((Date.now() - started) / 1_000, 0, 0), 200)
        const runs = await Promise.all(
          options.urls.map((url, i) =>
            runWrk(
              [
                "-t",
                String(threads),
                "-c",
                String(perUrl),
                "-d",
                `${options.seconds}s`,
                "--latency",
                "-s",
                script,
                url
              ],
              {
                BENCH_TOKENS: tokensFile,
                BENCH_PATHS: pathsFile,
                BENCH_FIRST: String(i * threads),
                BENCH_STRIDE: String(threads * options.urls.length),
                BENCH_RECORD: options.record === false ? "0" : "1"
              }
            )
          )
        ).finally(() => clearInterval(ticks))
        return summarise(runs, options, started)
      }),
    (folder) => Effect.sync(() => rmSync(folder, { recursive: true, force: true }))
  )

const summarise = (
  runs: ReadonlyArray<Run>,
  options: { readonly seconds: number; readonly users: ReadonlyArray<UserId> },
  started: number
): Phase => {
  const outcomes: Record<string, number> = {}
  const confirmed = new Map<OrderId, UserId>()
  const confirmedIndex = new Map<OrderId, number>()
  const refused = new Set<UserId>()
  let purchased = 0
  let lastPurchaseMs = 0
  for (const thread of runs.flatMap((run) => run.threads)) {
    for (const [status, n] of Object.entries(thread.statuses)) outcomes[status] = (outcomes[status] ?? 0) + n
    purchased += thread.purchased
    lastPurchaseMs = Math.max(lastPurchaseMs, thread.lastPurchaseMs)
    for (const line of thread.confirmed) {
      const [buyer, , orderId] = line.split(" ")
      const index = Number(buyer?.slice(1))
      const userId = options.users[index]
      if (userId !== undefined && orderId !== undefined) {
        confirmed.set(orderId as OrderId, userId)
        confirmedIndex.set(orderId as OrderId, index)
      }
    }
    for (const buyer of thread.refused) {
      const userId = options.users[buyer]
      if (userId !== undefined) refused.add(userId)
    }
  }
  const requests = runs.reduce((sum, run) => sum + run.summary.requests, 0)
  const seconds = Math.max(...runs.map((run) => run.summary.durationMicros)) / 1e6
  // wrk counts every answer outside 2xx/3xx as a "status" error: those are outcomes, not errors.
  const errors = runs.reduce((sum, run) => {
    const { status: _answered, ...failed } = run.summary.errors
    return sum + Object.values(failed).reduce((a, b) => a + b, 0)
  }, 0)
  if (errors > 0) outcomes.errors = errors
  // Latency: the worst process's percentile (with one URL, wrk's own).
  const worst = (key: "p50" | "p99" | "p999") => Math.max(...runs.map((run) => run.summary[key])) / 1_000
  const lastPurchaseSeconds = purchased === 0 ? 0 : Math.max(0.001, (lastPurchaseMs - started) / 1_000)
  return {
    seconds,
    requests,
    requestsPerSecond: requests / seconds,
    purchasesPerSecond: purchased === 0 ? 0 : purchased / lastPurchaseSeconds,
    p50: worst("p50"),
    p99: worst("p99"),
    p999: worst("p999"),
    outcomes,
    confirmed,
    confirmedIndex,
    refused,
    purchased,
    lastPurchaseSeconds,
    // Ticks are hundredths of a second (CLK_TCK 100): ticks / seconds is the percent of a core.
    generatorCpuPercent: runs.reduce((sum, run) => sum + run.cpuTicks, 0) / seconds
  }
}

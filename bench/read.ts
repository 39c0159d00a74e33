/**
 * `npm run bench:read`: what a crowd that watches costs the node.
 *
 * 1. Status reads: wrk against `GET /api/flash-sale/status` of a MinCommerce node and, back to
 *    back in each round, a bare node:http server answering the same JSON (the ceiling);
 *    PostgreSQL transactions of the bench's database counted over the rounds.
 * 2. Watchers, on a node started afresh: as many SSE connections as asked (default 15,000),
 *    spread over client processes (5,000 each: the per-process open-files limit is 20,000);
 *    the node's idle CPU with them connected, its memory per watcher (resident memory and the
 *    JavaScript heap in use after V8's last-resort collection, before and after they connect:
 *    bench/probe.ts), and the time one stock change takes to reach 50 / 99 / 100 % of them.
 * 3. Mixed, in alternating rounds: purchases/s of a sale nobody watches with no readers,
 *    then of the sale the watchers follow, with a crowd reading its status at a steady rate
 *    (--crowd-rate, default 1,000 reads/s: 15,000 pages each refreshed every 15 s; 0 reads
 *    flat out).
 * 4. The same watchers held by a bare node:http server started afresh (same run): its memory
 *    per watcher, idle CPU and fan-out time, the floor node:http itself sets on this machine.
 *
 * Options: --quick (fewer watchers, shorter runs), --duration S, --connections N,
 * --watchers N, --crowd-rate N, --rounds N (status-read and mixed rounds, default 4). Fails
 * when a purchase run breaks an invariant. The same file is the bare server
 * (BENCH_READ_ROLE=bare) and a watcher client
 * (BENCH_READ_ROLE=watchers): one script, several processes.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { createParser } from "eventsource-parser"
import { fork, spawn, type ChildProcess } from "node:child_process"
import { readFileSync } from "node:fs"
import { Agent, createServer, get, request, type ServerResponse } from "node:http"
import { cpus, loadavg, totalmem } from "node:os"
import { parseArgs } from "node:util"
import pg from "pg"
import type { SaleId } from "../src/domain/Ids.ts"
import { Audit, checkInvariants, violations } from "../src/storage/Audit.ts"
import { makeSale, makeUsers } from "../tests/support/Fixtures.ts"
import { adminUrl, freshServerStorage } from "../tests/support/TestDatabase.ts"
import { load, type Phase } from "./load.ts"
import { serve } from "./serve.ts"
import { formatRate, median, percentile, spread } from "./stats.ts"
import { benchSecret, signTokens } from "./tokens.ts"

const perClient = 5_000

// ---- role: the bare ceiling, answering the status JSON it is given -------------------------
/**
 * Also the bare SSE server: `GET /events` holds a watcher (the preamble and one event, as the
 * node sends), `POST /fire?remaining=N` writes one event to every watcher, so the watcher
 * phase can measure what node:http itself costs per held connection and per fan-out.
 */
const bare = () => {
  const body = process.env.BENCH_READ_BODY ?? "{}"
  const watchers = new Set<ServerResponse>()
  const event = (remaining: number) =>
    Buffer.from(
      `id: 1.${remaining}.active\nevent: sale\ndata: {"status":"active","remaining":${remaining}}\n\n`
    )
  const server = createServer((request, response) => {
    if (request.url === "/events") {
      response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
      response.socket?.setNoDelay(true)
      response.socket?.setTimeout(0)
      response.write("retry: 2000\n\n")
      response.write(event(-1))
      watchers.add(response)
      response.on("close", () => watchers.delete(response))
      return
    }
    if (request.method === "POST" && request.url?.startsWith("/fire?remaining=") === true) {
      const bytes = event(Number(request.url.slice("/fire?remaining=".length)))
      for (const watcher of watchers) watcher.write(bytes)
      response.end()
      return
    }
    response.writeHead(200, { "content-type": "application/json", "cache-control": "public, max-age=1" })
    response.end(body)
  })
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    console.log(
      `Listening on http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`
    )
  })
}

// ---- role: a watcher client, holding `count` SSE connections --------------------------------
const watchers = () => {
  const url = new URL(process.env.BENCH_READ_URL ?? "")
  const count = Number(process.env.BENCH_READ_COUNT ?? 0)
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity })
  let connected = 0
  let refused = 0
  let target = -1
  const arrivals: Array<number> = []
  const open = () =>
    new Promise<void>((resolve) => {
      const req = get({ host: url.hostname, port: url.port, path: url.pathname, agent }, (response) => {
        if (response.statusCode !== 200) {
          refused++
          response.resume()
          return resolve()
        }
        connected++
        resolve()
        const parser = createParser({
          onEvent: (event) => {
            if (target < 0 || event.event !== "sale") return
            if ((JSON.parse(event.data) as { remaining: number }).remaining === target)
              arrivals.push(Date.now())
          }
        })
        response.setEncoding("utf8")
        response.on("data", (chunk: string) => parser.feed(chunk))
      })
      req.on("error", () => {
        refused++
        resolve()
      })
    })
  process.on("message", (message: { readonly expect?: number; readonly report?: boolean }) => {
    if (message.expect !== undefined) {
      target = message.expect
      arrivals.length = 0
      process.send?.({ armed: true })
    }
    if (message.report === true) process.send?.({ arrivals })
  })
  void (async () => {
    const began = Date.now()
    // 200 connections opening at a time, so the node's accept queue is not flooded.
    let next = 0
    await Promise.all(
      Array.from({ length: 200 }, async () => {
        while (next < count) {
          next++
          await open()
        }
      })
    )
    process.send?.({ connected, refused, millis: Date.now() - began })
  })()
}

// ---- the driver ----------------------------------------------------------------------------
const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    duration: { type: "string" },
    connections: { type: "string" },
    watchers: { type: "string" },
    "crowd-rate": { type: "string" },
    rounds: { type: "string" }
  }
})
const quick = args.quick === true
const duration = Number(args.duration ?? (quick ? 3 : 10))
const connections = Number(args.connections ?? 128)
const watcherCount = Number(args.watchers ?? (quick ? 1_000 : 15_000))
const crowdRate = Number(args["crowd-rate"] ?? 1_000)
const rounds = Number(args.rounds ?? (quick ? 1 : 4))
/** Idle CPU is read over one heartbeat period (each watcher hears one in it). */
const idleMillis = quick ? 5_000 : 30_000

const pacedScript = new URL("./wrk/paced.lua", import.meta.url).pathname

/** `wrk` GET run (at `rate` requests/s in all when given): requests/s and the count of non-2xx/3xx answers. */
const wrkGet = (url: string, seconds: number, conns: number, rate?: number) =>
  new Promise<{ readonly perSecond: number; readonly bad: number }>((resolve, reject) => {
    const paced = rate !== undefined && rate > 0 ? ["-s", pacedScript] : []
    const child = spawn("wrk", ["-t", "2", "-c", String(conns), "-d", `${seconds}s`, ...paced, url], {
      stdio: ["ignore", "pipe", "inherit"],
      env: {
        ...process.env,
        BENCH_PAUSE_MS: rate === undefined || rate <= 0 ? "0" : String(Math.round((conns * 1_000) / rate))
      }
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()))
    child.on("error", reject)
    child.on("close", () => {
      const perSecond = Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1] ?? 0)
      const bad = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(output)?.[1] ?? 0)
      resolve({ perSecond, bad })
    })
  })

const committed = async (database: string) => {
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    const { rows } = await client.query<{ n: string }>(
      "SELECT xact_commit AS n FROM pg_stat_database WHERE datname = $1",
      [database]
    )
    return Number(rows[0]?.n ?? 0)
  } finally {
    await client.end()
  }
}
/** An idle backend reports its counts after 10 s (PostgreSQL 15's PGSTAT_IDLE_INTERVAL): wait that long, then read. */
const settledCommits = async (database: string) => {
  await new Promise((resolve) => setTimeout(resolve, 11_000))
  return committed(database)
}

const procStat = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8")
    .replace(/^.*\) /, "")
    .split(" ")
  return Number(fields[11]) + Number(fields[12])
}
/** Share of one core the process used over `millis`. */
const cpuPercent = async (pid: number, millis: number) => {
  const before = procStat(pid)
  await new Promise((resolve) => setTimeout(resolve, millis))
  return ((procStat(pid) - before) / 100 / (millis / 1_000)) * 100
}

const post = (url: string, token: string) =>
  new Promise<number>((resolve) => {
    const req = request(
      url,
      { method: "POST", headers: { authorization: `Bearer ${token}` } },
      (response) => {
        response.resume()
        response.on("end", () => resolve(response.statusCode ?? 0))
      }
    )
    req.on("error", () => resolve(0))
    req.end()
  })

interface Memory {
  readonly rssBytes: number
  readonly heapUsedBytes: number
}
const perWatcher = (before: number, after: number, watchers: number) =>
  ((after - before) / Math.max(1, watchers) / 1024).toFixed(1)

type Reply = Partial<Record<string, unknown>> | undefined

const ask = <A>(child: ChildProcess, message: unknown, wanted: (reply: Reply) => boolean) =>
  new Promise<A>((resolve) => {
    const onMessage = (reply: unknown) => {
      if (!wanted(reply as Reply)) return
      child.off("message", onMessage)
      resolve(reply as A)
    }
    child.on("message", onMessage)
    if (message !== undefined) child.send(message as object)
  })

const driver = Effect.gen(function* () {
  const started = Date.now()
  const { url: databaseUrl, name, storage } = yield* freshServerStorage()
  const cpu = cpus()
  console.log(`MinCommerce bench:read${quick ? " (quick)" : ""}`)
  console.log(
    `machine: ${cpu.length} x ${cpu[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, load average ${loadavg()[0]?.toFixed(2)} (other work on the machine shows here)`
  )
  const buyers = quick ? 20_000 : 100_000
  const users = yield* makeUsers(buyers).pipe(Effect.provideContext(storage))
  // PostgreSQL's own autovacuum would count as transactions of this database during the read
  // runs; it is on again for the purchase runs, whose tables it keeps from bloating.
  const autovacuum = (enabled: boolean) =>
    Effect.promise(async () => {
      const client = new pg.Client({ connectionString: databaseUrl })
      await client.connect()
      const { rows } = await client.query<{ name: string }>(
        "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
      )
      for (const { name: table } of rows)
        await client.query(`ALTER TABLE "${table}" SET (autovacuum_enabled = ${enabled})`)
      await client.end()
    })
  yield* autovacuum(false)
  const tokens = signTokens(users)
  // The current sale (started a day ago, so it is the running one), watched and read.
  const watched = yield* makeSale(1_000_000, { startsAt: Date.now() - 86_400_000 }).pipe(
    Effect.provideContext(storage)
  )
  const startNode = serve("src/main.ts", {
    DATABASE_URL: databaseUrl,
    PORT: "0",
    JWT_SECRET: benchSecret,
    LOG_LEVEL: "Info",
    RATE_LIMIT_PER_USER: "0",
    MAX_WATCHERS: String(watcherCount + 1_000)
  })
  const statusOf = (url: string) =>
    Effect.promise(async () => (await fetch(`${url}/api/flash-sale/status`)).text())

  // 1. Status reads, node and bare back to back in each round (which goes first alternates),
  // from a node and a bare server of their own: the watchers below get fresh ones, so the
  // memory a watcher costs is not read against what the read runs left behind.
  const body = yield* Effect.scoped(
    Effect.gen(function* () {
      const node = yield* startNode
      const statusUrl = `${node.url}/api/flash-sale/status`
      const body = yield* statusOf(node.url)
      const ceiling = yield* serve("bench/read.ts", { BENCH_READ_ROLE: "bare", BENCH_READ_BODY: body })
      // PostgreSQL transactions counted from before the first round to after the last.
      yield* Effect.promise(() => wrkGet(statusUrl, 1, 32))
      yield* Effect.promise(() => wrkGet(`${ceiling.url}/`, 1, 32))
      const before = yield* Effect.promise(() => settledCommits(name))
      const readRounds: Array<{ readonly ours: number; readonly bare: number }> = []
      let bad = 0
      for (let round = 0; round < rounds; round++) {
        const runOurs = Effect.promise(() => wrkGet(statusUrl, duration, connections))
        const runBare = Effect.promise(() => wrkGet(`${ceiling.url}/`, duration, connections))
        let ours: { readonly perSecond: number; readonly bad: number }
        let bareRun: { readonly perSecond: number }
        if (round % 2 === 0) {
          ours = yield* runOurs
          bareRun = yield* runBare
        } else {
          bareRun = yield* runBare
          ours = yield* runOurs
        }
        bad += ours.bad
        readRounds.push({ ours: ours.perSecond, bare: bareRun.perSecond })
        console.log(
          `  status reads round ${round + 1}/${rounds}: MinCommerce ${formatRate(ours.perSecond)} req/s, ` +
            `bare ${formatRate(bareRun.perSecond)} req/s -> ${((ours.perSecond / bareRun.perSecond) * 100).toFixed(0)} %`
        )
      }
      const after = yield* Effect.promise(() => settledCommits(name))
      yield* autovacuum(true)
      const readRatios = spread(readRounds.map((r) => (r.ours / r.bare) * 100))
      console.log(
        `status reads (${connections} connections, ${duration} s, median of ${rounds} (min–max)): ` +
          `MinCommerce ${formatRate(spread(readRounds.map((r) => r.ours)).median)} req/s, ` +
          `bare node:http ${formatRate(spread(readRounds.map((r) => r.bare)).median)} req/s -> ` +
          `${readRatios.median.toFixed(0)} % (${readRatios.min.toFixed(0)}–${readRatios.max.toFixed(0)} %); ` +
          `PostgreSQL transactions during the runs: ${after - before}; non-2xx: ${bad}`
      )
      return body
    })
  )

  // 2. Watchers, on a node started afresh (its view of the sale warmed by one read).
  const node = yield* startNode
  const statusUrl = `${node.url}/api/flash-sale/status`
  yield* statusOf(node.url)
  const self = new URL(import.meta.url).pathname
  /** Watcher clients holding `watcherCount` SSE connections to `eventsUrl`, 5,000 per process. */
  const connectWatchers = (eventsUrl: string) =>
    Effect.gen(function* () {
      const clients = Math.max(1, Math.ceil(watcherCount / perClient))
      const children = Array.from({ length: clients }, (_, i) =>
        fork(self, [], {
          env: {
            ...process.env,
            BENCH_READ_ROLE: "watchers",
            BENCH_READ_URL: eventsUrl,
            BENCH_READ_COUNT: String(Math.min(perClient, watcherCount - i * perClient))
          },
          execArgv: ["--experimental-strip-types", "--no-warnings"],
          stdio: ["ignore", "inherit", "inherit", "ipc"]
        })
      )
      yield* Effect.addFinalizer(() => Effect.sync(() => children.forEach((child) => child.kill("SIGKILL"))))
      const counts = yield* Effect.promise(() =>
        Promise.all(
          children.map((child) =>
            ask<{ connected: number; refused: number; millis: number }>(
              child,
              undefined,
              (reply) => reply?.connected !== undefined
            )
          )
        )
      )
      return {
        children,
        clients,
        connected: counts.reduce((sum, c) => sum + c.connected, 0),
        refused: counts.reduce((sum, c) => sum + c.refused, 0),
        connectMillis: Math.max(...counts.map((c) => c.millis))
      }
    })
  /** Arms every client for `expect` remaining, makes the change, and returns each watcher's delay, sorted. */
  const delivery = (children: ReadonlyArray<ChildProcess>, expect: number, change: () => Promise<unknown>) =>
    Effect.gen(function* () {
      yield* Effect.promise(() =>
        Promise.all(children.map((child) => ask(child, { expect }, (reply) => reply?.armed === true)))
      )
      const changedAt = Date.now()
      const answer = yield* Effect.promise(change)
      // For a purchase: its batch has committed, and the owner publishes after the commit.
      const answeredMillis = Date.now() - changedAt
      yield* Effect.sleep("3 seconds")
      const arrivals = (yield* Effect.promise(() =>
        Promise.all(
          children.map((child) =>
            ask<{ arrivals: Array<number> }>(child, { report: true }, (r) => r?.arrivals !== undefined)
          )
        )
      )).flatMap((r) => r.arrivals.map((at) => Math.max(0, at - changedAt)))
      arrivals.sort((a, b) => a - b)
      const reach = (p: number) => (arrivals.length === 0 ? NaN : percentile(arrivals, p))
      return { answer, answeredMillis, arrivals, reach }
    })
  const watcherLine = (
    who: string,
    w: { clients: number; connected: number; refused: number; connectMillis: number },
    idle: number,
    baseline: Memory,
    loaded: Memory,
    reached: { arrivals: ReadonlyArray<number>; reach: (p: number) => number },
    change: string
  ) =>
    `${who}: ${w.connected} watchers connected in ${(w.connectMillis / 1_000).toFixed(1)} s over ${w.clients} client process(es) ` +
    `(${w.refused} refused); idle CPU ${idle.toFixed(1)} % of a core; memory ${(baseline.rssBytes / 2 ** 20).toFixed(0)} -> ` +
    `${(loaded.rssBytes / 2 ** 20).toFixed(0)} MB, ${perWatcher(baseline.rssBytes, loaded.rssBytes, w.connected)} KB per watcher ` +
    `(JavaScript heap: ${perWatcher(baseline.heapUsedBytes, loaded.heapUsedBytes, w.connected)} KB of it); ` +
    `one change (${change}) reached ${reached.arrivals.length}/${w.connected}: 50 % in ${reached.reach(50).toFixed(0)} ms, ` +
    `99 % in ${reached.reach(99).toFixed(0)} ms, 100 % in ${reached.reach(100).toFixed(0)} ms`

  // Settled at both ends. The collection leaves V8 collecting again as the watchers' memory
  // comes in, which the idle window below sees (13 pauses in one run, none without it): the
  // idle CPU read is, if anything, higher than the watchers' own.
  const baseline = yield* Effect.promise(node.settledMemory)
  const held = yield* connectWatchers(`${node.url}/api/sales/${watched}/events`)
  const connected = held.connected
  // The connections' own garbage is collected before the node is called idle.
  yield* Effect.sleep(quick ? "2 seconds" : "5 seconds")
  const idle = yield* Effect.promise(() => cpuPercent(node.pid, idleMillis))
  const loaded = yield* Effect.promise(node.settledMemory)
  // One stock change: a purchase; the time from its answer to each watcher's event.
  // A first purchase starts the sale's actor (lease, epoch, state from PostgreSQL): the change
  // measured is the next one, a sale already selling.
  yield* Effect.promise(() => post(`${node.url}/api/sales/${watched}/purchases`, tokens[1]!))
  // The first change spent the node's write budget on the watchers: the one measured finds it full again.
  yield* Effect.sleep("4 seconds")
  const status = JSON.parse(yield* Effect.promise(async () => (await fetch(statusUrl)).text())) as {
    remaining: number
  }
  // From the purchase leaving: the owner publishes its figures once the order's batch has committed.
  const reached = yield* delivery(held.children, status.remaining - 1, () =>
    post(`${node.url}/api/sales/${watched}/purchases`, tokens[0]!)
  )
  console.log(
    watcherLine(
      "MinCommerce",
      held,
      idle,
      baseline,
      loaded,
      reached,
      `a purchase, answered ${reached.answer} in ${reached.answeredMillis} ms`
    )
  )

  // 3. Mixed, in alternating rounds: purchases of a sale nobody watches with no readers, then
  // of the watched sale, its 15,000 watchers hearing each change and a crowd reading its
  // status. Each round's buyers are new to both sales; every answer is held against PostgreSQL.
  let broken = 0
  const perRound = Math.floor(buyers / rounds)
  const purchaseRun = (saleId: SaleId, round: number) =>
    Effect.gen(function* () {
      const run = yield* load({
        urls: [`${node.url}/api/sales/${saleId}/purchases`],
        connections: 64,
        seconds: duration,
        tokens: tokens.slice(round * perRound, (round + 1) * perRound),
        users: users.slice(round * perRound, (round + 1) * perRound),
        record: true
      })
      const record = yield* Effect.provideContext(
        Effect.flatMap(Audit, (audit) => audit.read(saleId)),
        storage
      )
      const invariants = checkInvariants(record, run.confirmed)
      broken += violations(invariants)
      if (violations(invariants) > 0) console.log(`  invariants VIOLATED: ${JSON.stringify(invariants)}`)
      return run
    })
  const alone: Array<number> = []
  const crowded: Array<number> = []
  const reads: Array<number> = []
  const p99s: Array<[number, number]> = []
  for (let round = 0; round < rounds; round++) {
    const quietRun = Effect.flatMap(makeSale(buyers).pipe(Effect.provideContext(storage)), (sale) =>
      purchaseRun(sale, round)
    )
    const busyRun = Effect.all(
      [purchaseRun(watched, round), Effect.promise(() => wrkGet(statusUrl, duration, 64, crowdRate))],
      { concurrency: 2 }
    )
    // Alone first in even rounds, second in odd ones: a drift over the run weighs on both alike.
    let quiet: Phase
    let busy: Phase
    let crowd: { readonly perSecond: number }
    if (round % 2 === 0) {
      quiet = yield* quietRun
      ;[busy, crowd] = yield* busyRun
    } else {
      ;[busy, crowd] = yield* busyRun
      quiet = yield* quietRun
    }
    alone.push(quiet.purchasesPerSecond)
    crowded.push(busy.purchasesPerSecond)
    reads.push(crowd.perSecond)
    p99s.push([quiet.p99, busy.p99])
    console.log(
      `  mixed round ${round + 1}/${rounds}: ${formatRate(quiet.purchasesPerSecond)}/s alone, ` +
        `${formatRate(busy.purchasesPerSecond)}/s watched and read (${formatRate(crowd.perSecond)} reads/s); ` +
        `p99 ${quiet.p99.toFixed(1)} -> ${busy.p99.toFixed(1)} ms`
    )
  }
  console.log(
    `mixed (median of ${rounds}): purchases ${formatRate(median(alone))}/s alone, ${formatRate(median(crowded))}/s with ` +
      `${connected} watchers of the sale bought and ${formatRate(median(reads))} status reads/s at the same time ` +
      `-> ${((median(crowded) / median(alone)) * 100).toFixed(0)} % (rounds: ${alone
        .map((quiet, i) => `${(((crowded[i] ?? 0) / quiet) * 100).toFixed(0)} %`)
        .join(", ")}) ` +
      `(p99 ${median(p99s.map(([q]) => q)).toFixed(1)} -> ${median(p99s.map(([, b]) => b)).toFixed(1)} ms); ` +
      `invariants ${broken === 0 ? "OK" : "VIOLATED"}`
  )
  yield* Effect.sync(() => held.children.forEach((child) => child.kill("SIGKILL")))
  // 4. The same watchers held by a bare node:http server: what node:http itself costs per
  // held connection and per fan-out, on the same machine in the same run.
  const ceiling = yield* serve("bench/read.ts", { BENCH_READ_ROLE: "bare", BENCH_READ_BODY: body })
  yield* Effect.sleep("2 seconds")
  const bareBaseline = yield* Effect.promise(ceiling.settledMemory)
  const bareHeld = yield* connectWatchers(`${ceiling.url}/events`)
  yield* Effect.sleep(quick ? "2 seconds" : "5 seconds")
  const bareIdle = yield* Effect.promise(() => cpuPercent(ceiling.pid, idleMillis))
  const bareLoaded = yield* Effect.promise(ceiling.settledMemory)
  const bareReached = yield* delivery(bareHeld.children, 7, () =>
    fetch(`${ceiling.url}/fire?remaining=7`, { method: "POST" }).then((r) => r.status)
  )
  console.log(
    watcherLine(
      "bare node:http",
      bareHeld,
      bareIdle,
      bareBaseline,
      bareLoaded,
      bareReached,
      "one write to each"
    )
  )
  console.log(`bench:read took ${((Date.now() - started) / 1_000).toFixed(0)} s`)
  if (broken > 0) return yield* Effect.die(new Error(`${broken} invariant violation(s)`))
}).pipe(Effect.scoped)

const role = process.env.BENCH_READ_ROLE
if (role === "bare") bare()
else if (role === "watchers") watchers()
else NodeRuntime.runMain(driver)

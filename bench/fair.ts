/**
 * `npm run bench:fair`: who gets the units, a bot farm or people? A real node serves one sale
 * per allocation mode; two client processes play the crowd:
 *
 * - the farm: one client holding K fresh accounts, firing every one of them at the opening
 *   instant (and, where the sale asks for proof of work, solving each account's challenge as
 *   fast as its CPU allows);
 * - the people: H accounts, one request each, each arriving at a random moment in the first
 *   seconds of the sale.
 *
 * For each mode it reports the share of units the farm won against its share of the crowd
 * (with the 95 % band a fair draw stays in), the farm's CPU time per unit won and the people's
 * answer latencies; `docs/fair.md` and `docs/fair.svg` get the table and chart. Every sale
 * ends checked against PostgreSQL (no oversell, one order per buyer, every 2xx has its row);
 * the bench fails only when an invariant is broken. Options: --quick, --farm K, --people H,
 * --units N, --spread S (seconds over which people arrive), --difficulty N (proof of work, the
 * most key derivations a solve takes; default the admin console's suggestion, 100 with --quick:
 * the smoke run checks the path and the invariants, not the farm's cost).
 */
import { NodeRuntime } from "@effect/platform-node"
import { solveChallenge } from "altcha-lib"
import { deriveKey } from "altcha-lib/algorithms/pbkdf2"
import { Effect } from "effect"
import { fork, type ChildProcess } from "node:child_process"
import { writeFileSync } from "node:fs"
import { cpus, loadavg, totalmem } from "node:os"
import { parseArgs } from "node:util"
import * as prettier from "prettier"
import type { OrderId, SaleId, UserId } from "../src/domain/Ids.ts"
import { ProofOfWork } from "../src/http/ProofOfWork.ts"
import { Audit, checkInvariants, violations } from "../src/storage/Audit.ts"
import { newSeed } from "../src/domain/Draw.ts"
import { DrawRecords } from "../src/storage/DrawRecords.ts"
import { Products } from "../src/storage/Products.ts"
import { Sales } from "../src/storage/Sales.ts"
import { makeUsers } from "../tests/support/Fixtures.ts"
import { freshServerStorage } from "../tests/support/TestDatabase.ts"
import { fairChartSvg } from "./fairChart.ts"
import { serve } from "./serve.ts"
import { percentile } from "./stats.ts"
import { benchSecret, signTokens } from "./tokens.ts"

/** What one client process was asked to do. */
interface Crowd {
  readonly url: string
  readonly saleId: string
  readonly tokens: ReadonlyArray<string>
  /** Epoch ms of the sale's opening. */
  readonly openAt: number
  /** Each request leaves at openAt + this many ms (0 for the farm). */
  readonly delays: ReadonlyArray<number>
  /** The sale asks a solved challenge with each attempt. */
  readonly pow: boolean
}

/** One answer as a client saw it. */
interface Answer {
  readonly index: number
  readonly status: number
  readonly orderId: string | undefined
  readonly millis: number
}

interface CrowdReport {
  readonly answers: ReadonlyArray<Answer>
  /** The client's own CPU time (user + system), from its first challenge or request to its last answer, ms. */
  readonly cpuMillis: number
  /** How late the client was ready for the opening (its solving took longer than the lead), ms; <= 0: on time. */
  readonly lateMillis: number
}

// ---- role: a client process (farm or people) -------------------------------------------------
/** A solved challenge for this buyer and sale, as the `Proof-Of-Work` header carries it. */
const proofFor = async (crowd: Crowd, token: string): Promise<string> => {
  const response = await fetch(`${crowd.url}/api/sales/${crowd.saleId}/challenge`, {
    headers: { authorization: `Bearer ${token}` }
  })
  if (response.status !== 200) throw new Error(`challenge: ${response.status} ${await response.text()}`)
  const challenge = (await response.json()) as Parameters<typeof solveChallenge>[0]["challenge"]
  const solution = await solveChallenge({ challenge, deriveKey })
  if (solution === null) throw new Error("the solver gave up")
  return Buffer.from(JSON.stringify({ challenge, solution })).toString("base64")
}

/**
 * Every account's proof, four at a time (libuv's thread pool runs the key derivations): each
 * challenge is fetched just before it is solved, so none expires waiting in a queue.
 */
const solveAll = async (crowd: Crowd): Promise<Array<string>> => {
  const proofs: Array<string> = []
  let next = 0
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < crowd.tokens.length) {
        const index = next++
        proofs[index] = await proofFor(crowd, crowd.tokens[index] ?? "")
      }
    })
  )
  return proofs
}

const attempt = async (crowd: Crowd, token: string, proof: string | undefined) => {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` }
  if (proof !== undefined) headers["proof-of-work"] = proof
  const response = await fetch(`${crowd.url}/api/sales/${crowd.saleId}/purchases`, {
    method: "POST",
    headers
  })
  const body = (await response.json()) as { order?: { orderId?: string } }
  return { status: response.status, orderId: body.order?.orderId }
}

/**
 * Two messages from the driver: the crowd (prepare: every challenge is fetched and solved
 * before the opening, as a farm does; a person's solving happens on their own device, so it
 * is done here ahead of time too and its cost reported, not counted in their latency), then
 * `{ go: true }`, after which each request leaves at its moment.
 */
const client = () => {
  let crowd: Crowd | undefined
  let proofs: ReadonlyArray<string> = []
  const cpu = process.cpuUsage()
  process.on("message", (message: Crowd | { readonly go: true }) => {
    void (async () => {
      if (!("go" in message)) {
        crowd = message
        const current = message
        proofs = current.pow ? await solveAll(current) : []
        const used = process.cpuUsage(cpu)
        process.send?.({ ready: true, cpuMillis: (used.user + used.system) / 1_000 })
        return
      }
      const ready = crowd
      if (ready === undefined) throw new Error("go before the crowd")
      const late = Date.now() - ready.openAt
      const answers = await Promise.all(
        ready.tokens.map(async (token, index): Promise<Answer> => {
          const delay = ready.openAt + (ready.delays[index] ?? 0) - Date.now()
          if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
          const sent = performance.now()
          try {
            return {
              index,
              ...(await attempt(ready, token, proofs[index])),
              millis: performance.now() - sent
            }
          } catch {
            return { index, status: 0, orderId: undefined, millis: performance.now() - sent }
          }
        })
      )
      const used = process.cpuUsage(cpu)
      const report: CrowdReport = { answers, cpuMillis: (used.user + used.system) / 1_000, lateMillis: late }
      process.send?.(report, () => process.exit(0))
    })()
  })
}

// ---- the driver ------------------------------------------------------------------------------
const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    farm: { type: "string" },
    people: { type: "string" },
    units: { type: "string" },
    spread: { type: "string" },
    difficulty: { type: "string" }
  }
})
const quick = args.quick === true
const farmSize = Number(args.farm ?? (quick ? 50 : 100))
const peopleSize = Number(args.people ?? (quick ? 200 : 400))
const units = Number(args.units ?? (quick ? 30 : 100))
const spreadMillis = Number(args.spread ?? 3) * 1_000

export interface ModeResult {
  readonly mode: string
  readonly title: string
  readonly units: number
  readonly farmAccounts: number
  readonly people: number
  readonly farmWon: number
  readonly peopleWon: number
  /** The farm's share of the crowd: what a fair allocation gives it on average. */
  readonly farmShareOfCrowd: number
  readonly farmShareOfUnits: number
  /** Half-width of the 95 % band of the farm's share under a uniform draw of `units` from the crowd. */
  readonly fairBand: number
  readonly farmCpuMillisPerUnit: number | undefined
  /** The farm's CPU time in all (solving its challenges, sending its requests), ms. */
  readonly farmCpuMillis: number
  /** A person's CPU time for their proof of work (on their own device, before the request), ms. */
  readonly personSolveMillis: number | undefined
  /** Requests answered 5xx or not at all. */
  readonly failed: number
  readonly peopleP50: number
  readonly peopleP99: number
  readonly violations: number
}

/**
 * The spread of a uniform draw without replacement (hypergeometric): `n` winners out of `total`
 * entries of which `marked` are the farm's; 1.96 standard deviations of the farm's share.
 */
export const fairBand = (n: number, marked: number, total: number): number => {
  if (total <= 1 || n === 0) return 0
  const p = marked / total
  const variance = n * p * (1 - p) * ((total - n) / (total - 1))
  return (1.96 * Math.sqrt(variance)) / n
}

interface Mode {
  readonly id: string
  readonly title: string
  readonly pow: boolean
  readonly olderAccountsOnly: boolean
  /** A draw among everyone who entered in the window from the opening. */
  readonly draw: boolean
}

const modes: ReadonlyArray<Mode> = [
  { id: "first_come", title: "first come, first served", pow: false, olderAccountsOnly: false, draw: false },
  {
    id: "first_come_pow",
    title: "first come, proof of work",
    pow: true,
    olderAccountsOnly: false,
    draw: false
  },
  { id: "draw", title: "draw", pow: false, olderAccountsOnly: false, draw: true },
  { id: "draw_pow", title: "draw, proof of work", pow: true, olderAccountsOnly: false, draw: true },
  {
    id: "first_come_older",
    title: "first come, older accounts only",
    pow: false,
    olderAccountsOnly: true,
    draw: false
  }
]

/** The entry window: everyone arrives within it. */
const entryWindowMillis = () => spreadMillis + 2_000

/** Proof of work when a sale asks it: the admin console suggests 2,000 (web/src/admin/NewSale.tsx). */
const difficulty = Number(args.difficulty ?? (quick ? 100 : 2_000))

/** CPU time of one solve at `difficulty` on this machine, ms: sets how long before the opening challenges are handed out. */
const calibrate = Effect.gen(function* () {
  const pow = ProofOfWork.make(new TextEncoder().encode("bench:fair calibration, long enough for HMAC"))
  const cpu = process.cpuUsage()
  for (let i = 0; i < 3; i++) {
    const challenge = yield* pow.issue(
      "00000000-0000-4000-8000-000000000001" as SaleId,
      "00000000-0000-4000-8000-000000000002" as UserId,
      difficulty
    )
    yield* Effect.promise(() => solveChallenge({ challenge, deriveKey }))
  }
  const used = process.cpuUsage(cpu)
  return (used.user + used.system) / 1_000 / 3
})

const saleFor = (mode: Mode, openAt: number) =>
  Effect.gen(function* () {
    const productId = yield* (yield* Products).create("Limited sneaker", "bench:fair")
    return yield* (yield* Sales).create({
      productId,
      priceCents: 12_900,
      stock: units,
      startsAt: openAt,
      endsAt: openAt + 600_000,
      powDifficulty: mode.pow ? difficulty : undefined,
      olderAccountsOnly: mode.olderAccountsOnly,
      draw: mode.draw ? { entryWindowMillis: entryWindowMillis(), seed: newSeed() } : undefined
    })
  })

/** The sale's published draw, once drawn (polled each 500 ms for at most a minute). */
const drawnRecord = (saleId: SaleId) =>
  Effect.gen(function* () {
    const records = yield* DrawRecords
    for (let i = 0; i < 120; i++) {
      const found = yield* records.published(saleId).pipe(Effect.orDie)
      if (found?.draw !== undefined) return found.draw
      yield* Effect.sleep("500 millis")
    }
    return yield* Effect.die(new Error(`sale ${saleId} was not drawn within a minute of its window`))
  })

/** A client process with its crowd handed over; `prepared` once its challenges are solved. */
const startCrowd = (crowd: Crowd) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child: ChildProcess = fork(new URL(import.meta.url).pathname, [], {
        env: { ...process.env, BENCH_FAIR_ROLE: "client" },
        execArgv: ["--experimental-strip-types", "--no-warnings"],
        stdio: ["ignore", "inherit", "inherit", "ipc"]
      })
      const replies: Array<unknown> = []
      const waiting: Array<() => void> = []
      child.on("message", (reply) => {
        replies.push(reply)
        waiting.splice(0).forEach((wake) => wake())
      })
      child.once("exit", (code) => {
        if (code !== 0) replies.push({ failed: code })
        waiting.splice(0).forEach((wake) => wake())
      })
      child.send(crowd)
      const next = <A>(): Promise<A> =>
        new Promise((resolve, reject) => {
          const take = () => {
            const reply = replies.shift() as (A & { failed?: number }) | undefined
            if (reply === undefined) return void waiting.push(take)
            if (reply.failed !== undefined) reject(new Error(`a crowd client exited with ${reply.failed}`))
            else resolve(reply)
          }
          take()
        })
      return {
        prepared: Effect.promise(() => next<{ readonly cpuMillis: number }>()),
        go: Effect.promise(() => {
          child.send({ go: true })
          return next<CrowdReport>()
        }),
        child
      }
    }),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
  )

const shuffledDelays = (count: number) => Array.from({ length: count }, () => Math.random() * spreadMillis)

const driver = Effect.gen(function* () {
  const started = Date.now()
  const { url: databaseUrl, storage } = yield* freshServerStorage()
  const cpu = cpus()
  console.log(`MinCommerce bench:fair${quick ? " (quick)" : ""}`)
  console.log(
    `machine: ${cpu.length} x ${cpu[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, load average ${loadavg()[0]?.toFixed(2)}`
  )
  console.log(
    `crowd per sale: a farm of ${farmSize} accounts firing at the opening, ${peopleSize} people arriving over ` +
      `${spreadMillis / 1_000} s; ${units} units`
  )
  const node = yield* serve("src/main.ts", {
    DATABASE_URL: databaseUrl,
    PORT: "0",
    JWT_SECRET: benchSecret,
    LOG_LEVEL: "Info",
    RATE_LIMIT_PER_USER: "0"
  })

  const solveMillis = yield* calibrate
  console.log(
    `proof of work at difficulty ${difficulty}: ${solveMillis.toFixed(0)} ms of CPU per solve on this machine`
  )
  const results: Array<ModeResult> = []
  for (const mode of modes) {
    const farmUsers = yield* makeUsers(farmSize).pipe(Effect.provideContext(storage))
    const people = yield* makeUsers(peopleSize).pipe(Effect.provideContext(storage))
    const peopleTokens = signTokens(people)
    // Long enough for both clients to solve every challenge first, where the sale asks for them.
    const lead = 6_000 + (mode.pow ? ((farmSize + peopleSize) * solveMillis * 1.4) / cpus().length : 0)
    const openAt = Date.now() + lead
    const saleId = yield* saleFor(mode, openAt).pipe(Effect.provideContext(storage))
    // The farm's accounts are made once the sale is published, as a farm makes them for a drop.
    const farmIds = mode.olderAccountsOnly
      ? yield* makeUsers(farmSize).pipe(Effect.provideContext(storage))
      : farmUsers
    const farmTokens = signTokens(farmIds)
    console.log(`  ${mode.title}: sale opens in ${(lead / 1_000).toFixed(0)} s ...`)
    const farmClient = yield* startCrowd({
      url: node.url,
      saleId,
      tokens: farmTokens,
      openAt,
      delays: farmTokens.map(() => 0),
      pow: mode.pow
    })
    const peopleClient = yield* startCrowd({
      url: node.url,
      saleId,
      tokens: peopleTokens,
      openAt,
      delays: shuffledDelays(peopleSize),
      pow: mode.pow
    })
    const [, peoplePrepared] = yield* Effect.all([farmClient.prepared, peopleClient.prepared], {
      concurrency: 2
    })
    const [farm, crowd] = yield* Effect.all([farmClient.go, peopleClient.go], { concurrency: 2 })
    for (const [who, report] of [
      ["the farm's", farm],
      ["the people's", crowd]
    ] as const)
      if (report.lateMillis > 0)
        console.log(
          `    (${who} client was ready ${report.lateMillis.toFixed(0)} ms after the opening: starting and solving outlasted the lead)`
        )
    // A draw sale: every node looks for due draws each second; wait for it, then hold every
    // 202 against the published entries (each must be in the draw).
    let entriesMissing = 0
    if (mode.draw) {
      const published = yield* drawnRecord(saleId).pipe(Effect.provideContext(storage))
      const entrants = new Set<string>(published.entries.map((entry) => entry.userId))
      const enteredUsers = [
        ...farm.answers.filter((a) => a.status === 202).map((a) => farmIds[a.index]),
        ...crowd.answers.filter((a) => a.status === 202).map((a) => people[a.index])
      ]
      entriesMissing = enteredUsers.filter((userId) => userId === undefined || !entrants.has(userId)).length
      console.log(
        `    drawn ${new Date(published.drawnAt ?? 0).toISOString()}: ${published.entries.length} entries, ` +
          `${enteredUsers.length} answered 202, ${entriesMissing} of them missing from the draw`
      )
    }
    const record = yield* Effect.flatMap(Audit, (audit) => audit.read(saleId)).pipe(
      Effect.provideContext(storage)
    )
    const confirmed = new Map<OrderId, UserId>()
    const told = (answers: ReadonlyArray<Answer>, users: ReadonlyArray<UserId>) => {
      for (const answer of answers) {
        const userId = users[answer.index]
        if (
          (answer.status === 201 || answer.status === 200) &&
          answer.orderId !== undefined &&
          userId !== undefined
        )
          confirmed.set(answer.orderId as OrderId, userId)
      }
    }
    told(farm.answers, farmIds)
    told(crowd.answers, people)
    // Who holds a unit, by PostgreSQL: the people's orders, and everyone else's (the farm's).
    const peopleSet = new Set<UserId>(people)
    const sold = record.orders.size
    const peopleWon = [...record.orders.values()].filter((userId) => peopleSet.has(userId)).length
    const farmWon = sold - peopleWon
    const invariants = checkInvariants(record, confirmed)
    const latencies = crowd.answers.map((a) => a.millis).sort((a, b) => a - b)
    const result: ModeResult = {
      mode: mode.id,
      title: mode.title,
      units,
      farmAccounts: farmSize,
      people: peopleSize,
      farmWon,
      peopleWon,
      farmShareOfCrowd: mode.olderAccountsOnly ? 0 : farmSize / (farmSize + peopleSize),
      farmShareOfUnits: sold === 0 ? 0 : farmWon / sold,
      fairBand: mode.olderAccountsOnly ? 0 : fairBand(sold, farmSize, farmSize + peopleSize),
      farmCpuMillisPerUnit: farmWon === 0 ? undefined : farm.cpuMillis / farmWon,
      farmCpuMillis: farm.cpuMillis,
      personSolveMillis: mode.pow ? peoplePrepared.cpuMillis / peopleSize : undefined,
      peopleP50: percentile(latencies, 50),
      peopleP99: percentile(latencies, 99),
      failed: [...farm.answers, ...crowd.answers].filter((a) => a.status === 0 || a.status >= 500).length,
      violations: violations(invariants) + entriesMissing
    }
    results.push(result)
    console.log(
      `  ${mode.title}: farm won ${farmWon} of ${sold} units (${pct(result.farmShareOfUnits)}) with ` +
        `${pct(result.farmShareOfCrowd)} of the crowd (a fair draw: ${pct(result.farmShareOfCrowd)} ± ${pct(result.fairBand)}); ` +
        `farm CPU ${(farm.cpuMillis / 1_000).toFixed(2)} s in all, ${result.farmCpuMillisPerUnit?.toFixed(1) ?? "-"} ms per unit won; ` +
        `people answered in p50 ${result.peopleP50.toFixed(0)} ms, p99 ${result.peopleP99.toFixed(0)} ms` +
        `${result.personSolveMillis === undefined ? "" : ` after solving for ${result.personSolveMillis.toFixed(0)} ms of CPU each`}; ` +
        `${result.failed} requests failed (5xx or no answer); invariants: committed ` +
        `${invariants.committed}/${units}, oversold ${invariants.oversold}, duplicate buyers ${invariants.duplicateBuyers}, ` +
        `2xx without a row ${invariants.lostConfirmed} -> ${result.violations === 0 ? "OK" : "VIOLATED"}`
    )
  }

  // A quick run (CI's smoke run) is too small to publish: only a full run rewrites the docs.
  if (!quick) {
    // Formatted as the repository's Markdown is, so the lint gate passes on a fresh report.
    const report = yield* Effect.promise(() => prettier.format(fairMarkdown(results), { parser: "markdown" }))
    writeFileSync("docs/fair.md", report)
    writeFileSync("docs/fair.svg", yield* Effect.promise(() => fairChartSvg(results)))
    console.log("wrote docs/fair.md and docs/fair.svg")
  }
  console.log(`bench:fair took ${((Date.now() - started) / 1_000).toFixed(0)} s`)
  const broken = results.filter((r) => r.violations > 0)
  if (broken.length > 0) {
    console.error(`invariants broken in: ${broken.map((r) => r.title).join(", ")}`)
    process.exitCode = 1
  }
}).pipe(Effect.scoped)

const pct = (share: number) => `${(share * 100).toFixed(1)} %`

const fairMarkdown = (results: ReadonlyArray<ModeResult>) =>
  [
    "# Who wins a flash sale: `npm run bench:fair`",
    "",
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} cores; written by the bench. A farm of`,
    `${results[0]?.farmAccounts ?? 0} accounts fires at the opening instant; ${results[0]?.people ?? 0} people`,
    `arrive one request each over the first ${spreadMillis / 1_000} s. A fair allocation gives the farm its share of the`,
    "crowd, within the 95 % band of a uniform draw.",
    "",
    "![share of units won by the farm, per mode](fair.svg)",
    "",
    "| mode | units | farm won | farm's share of units | farm's share of the crowd (fair band) | farm CPU in all / per unit won | people's answer p50 / p99 | invariants |",
    "| ---- | ----- | -------- | --------------------- | ------------------------------------- | ------------------------------ | ------------------------- | ---------- |",
    ...results.map(
      (r) =>
        `| ${r.title} | ${r.units} | ${r.farmWon} | ${pct(r.farmShareOfUnits)} | ${pct(r.farmShareOfCrowd)} ± ${pct(r.fairBand)} | ` +
        `${(r.farmCpuMillis / 1_000).toFixed(2)} s / ${r.farmCpuMillisPerUnit === undefined ? "–" : `${r.farmCpuMillisPerUnit.toFixed(1)} ms`} | ` +
        `${r.peopleP50.toFixed(0)} / ${r.peopleP99.toFixed(0)} ms | ${r.violations === 0 ? "OK" : "VIOLATED"} |`
    ),
    ""
  ].join("\n")

if (process.env.BENCH_FAIR_ROLE === "client") client()
else NodeRuntime.runMain(driver)

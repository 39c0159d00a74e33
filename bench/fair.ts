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
 * --units N, --spread S (seconds over which people arrive).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect } from "effect"
import { fork, type ChildProcess } from "node:child_process"
import { writeFileSync } from "node:fs"
import { cpus, loadavg, totalmem } from "node:os"
import { parseArgs } from "node:util"
import type { OrderId, SaleId, UserId } from "../src/domain/Ids.ts"
import { Audit, checkInvariants, violations } from "../src/storage/Audit.ts"
import { makeSale, makeUsers } from "../tests/support/Fixtures.ts"
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
  /** The client's own CPU time (user + system) from its first request to its last answer, ms. */
  readonly cpuMillis: number
}

// ---- role: a client process (farm or people) -------------------------------------------------
const client = () => {
  process.once("message", (crowd: Crowd) => {
    void (async () => {
      const wait = crowd.openAt - Date.now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      const cpu = process.cpuUsage()
      const answers = await Promise.all(
        crowd.tokens.map(async (token, index) => {
          const delay = crowd.openAt + (crowd.delays[index] ?? 0) - Date.now()
          if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
          const sent = performance.now()
          try {
            const response = await fetch(`${crowd.url}/api/sales/${crowd.saleId}/purchases`, {
              method: "POST",
              headers: { authorization: `Bearer ${token}` }
            })
            const body = (await response.json()) as { order?: { orderId?: string } }
            return {
              index,
              status: response.status,
              orderId: body.order?.orderId,
              millis: performance.now() - sent
            }
          } catch {
            return { index, status: 0, orderId: undefined, millis: performance.now() - sent }
          }
        })
      )
      const used = process.cpuUsage(cpu)
      const report: CrowdReport = { answers, cpuMillis: (used.user + used.system) / 1_000 }
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
    spread: { type: "string" }
  }
})
const quick = args.quick === true
const farmSize = Number(args.farm ?? (quick ? 100 : 200))
const peopleSize = Number(args.people ?? (quick ? 400 : 800))
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

const runCrowd = (crowd: Crowd) =>
  Effect.callback<CrowdReport>((resume) => {
    const child: ChildProcess = fork(new URL(import.meta.url).pathname, [], {
      env: { ...process.env, BENCH_FAIR_ROLE: "client" },
      execArgv: ["--experimental-strip-types", "--no-warnings"],
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    child.once("message", (report) => resume(Effect.succeed(report as CrowdReport)))
    child.once("exit", (code) => {
      if (code !== 0) resume(Effect.die(new Error(`a crowd client exited with ${code}`)))
    })
    child.send(crowd)
    return Effect.sync(() => child.kill("SIGKILL"))
  })

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

  const results: Array<ModeResult> = []
  for (const mode of [{ id: "first_come", title: "first come, first served" }]) {
    const farmUsers = yield* makeUsers(farmSize).pipe(Effect.provideContext(storage))
    const people = yield* makeUsers(peopleSize).pipe(Effect.provideContext(storage))
    const openAt = Date.now() + 3_000
    const saleId: SaleId = yield* makeSale(units, { startsAt: openAt, endsAt: openAt + 600_000 }).pipe(
      Effect.provideContext(storage)
    )
    console.log(`  ${mode.title}: sale opens in 3 s ...`)
    const [farm, crowd] = yield* Effect.all(
      [
        runCrowd({
          url: node.url,
          saleId,
          tokens: signTokens(farmUsers),
          openAt,
          delays: farmUsers.map(() => 0)
        }),
        runCrowd({
          url: node.url,
          saleId,
          tokens: signTokens(people),
          openAt,
          delays: shuffledDelays(peopleSize)
        })
      ],
      { concurrency: 2 }
    )
    const confirmed = new Map<OrderId, UserId>()
    const won = (answers: ReadonlyArray<Answer>, users: ReadonlyArray<UserId>) => {
      let count = 0
      for (const answer of answers) {
        const userId = users[answer.index]
        if (answer.status !== 201 && answer.status !== 200) continue
        count++
        if (answer.orderId !== undefined && userId !== undefined)
          confirmed.set(answer.orderId as OrderId, userId)
      }
      return count
    }
    const farmWon = won(farm.answers, farmUsers)
    const peopleWon = won(crowd.answers, people)
    const record = yield* Effect.flatMap(Audit, (audit) => audit.read(saleId)).pipe(
      Effect.provideContext(storage)
    )
    const invariants = checkInvariants(record, confirmed)
    const latencies = crowd.answers.map((a) => a.millis).sort((a, b) => a - b)
    const sold = farmWon + peopleWon
    const result: ModeResult = {
      mode: mode.id,
      title: mode.title,
      units,
      farmAccounts: farmSize,
      people: peopleSize,
      farmWon,
      peopleWon,
      farmShareOfCrowd: farmSize / (farmSize + peopleSize),
      farmShareOfUnits: sold === 0 ? 0 : farmWon / sold,
      fairBand: fairBand(sold, farmSize, farmSize + peopleSize),
      farmCpuMillisPerUnit: farmWon === 0 ? undefined : farm.cpuMillis / farmWon,
      peopleP50: percentile(latencies, 50),
      peopleP99: percentile(latencies, 99),
      violations: violations(invariants)
    }
    results.push(result)
    console.log(
      `  ${mode.title}: farm won ${farmWon} of ${sold} units (${pct(result.farmShareOfUnits)}) with ` +
        `${pct(result.farmShareOfCrowd)} of the crowd (a fair draw: ${pct(result.farmShareOfCrowd)} ± ${pct(result.fairBand)}); ` +
        `farm CPU ${result.farmCpuMillisPerUnit?.toFixed(1) ?? "-"} ms per unit won; people answered in ` +
        `p50 ${result.peopleP50.toFixed(0)} ms, p99 ${result.peopleP99.toFixed(0)} ms; invariants: committed ` +
        `${invariants.committed}/${units}, oversold ${invariants.oversold}, duplicate buyers ${invariants.duplicateBuyers}, ` +
        `2xx without a row ${invariants.lostConfirmed} -> ${result.violations === 0 ? "OK" : "VIOLATED"}`
    )
  }

  // A quick run (CI's smoke run) is too small to publish: only a full run rewrites the docs.
  if (!quick) {
    writeFileSync("docs/fair.md", fairMarkdown(results))
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
    "| mode | units | farm won | farm's share of units | farm's share of the crowd (fair band) | farm CPU per unit won | people's answer p50 / p99 | invariants |",
    "| ---- | ----- | -------- | --------------------- | ------------------------------------- | --------------------- | ------------------------- | ---------- |",
    ...results.map(
      (r) =>
        `| ${r.title} | ${r.units} | ${r.farmWon} | ${pct(r.farmShareOfUnits)} | ${pct(r.farmShareOfCrowd)} ± ${pct(r.fairBand)} | ` +
        `${r.farmCpuMillisPerUnit === undefined ? "–" : `${r.farmCpuMillisPerUnit.toFixed(1)} ms`} | ` +
        `${r.peopleP50.toFixed(0)} / ${r.peopleP99.toFixed(0)} ms | ${r.violations === 0 ? "OK" : "VIOLATED"} |`
    ),
    ""
  ].join("\n")

if (process.env.BENCH_FAIR_ROLE === "client") client()
else NodeRuntime.runMain(driver)

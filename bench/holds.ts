/**
 * `npm run bench:holds`: what holding units for payment costs. One real node serves, in one
 * run and under the same load, a sale without holds and hold sales, then a hold sale whose new
 * buyers keep arriving while the holds of those who never pay expire:
 *
 * - purchase rate: a closed loop of `--connections` clients, a fresh buyer per request, for
 *   `--duration` seconds against each of three sales with stock for all (none sells out):
 *   without holds; with holds nobody pays (from `--hold` seconds on every unit sold expires,
 *   beside the purchases); with holds `--unpaid` never pay and the others pay within their
 *   hold. Reported: purchases per second over the run, before `--hold` seconds (no hold can
 *   have expired yet) and from then on (while expiries run), with answer latencies, each
 *   against the sale without holds, and the CPU of the node and of this process.
 * - resale: a hold sale of `--stock` units; new buyers arrive at `--rate` per second for
 *   `--arrivals` seconds, each pressing Buy once; `--unpaid` of the winners never pay. Each
 *   unit given back by an expiry is matched to the order that took it next (units come back
 *   in deadline order and are sold first come; PostgreSQL's created_at is the owner's decision
 *   time); reported: the time from each expired hold's payBy to that sale, and whether every
 *   unit that came back while buyers arrived was sold again.
 *
 * A buyer who pays asks the node for a checkout (`POST /api/orders/:id/pay`: the node creates
 * the intent at the provider) at a random moment in the first 70 % of the hold and presses
 * "Pay" at the development provider, which runs in a process of its own (as a real provider
 * runs apart from the node and from the load) and sends its signed webhook to the node; the
 * checkout page itself is not fetched, as it is the provider's work, not the node's. The
 * load comes from this process (node:http, keep-alive). Every sale ends checked against
 * PostgreSQL (src/storage/Audit.ts: every 2xx has its row in some status, live orders within
 * the stock and one per buyer, the stock row equal to units minus live orders, no paid order
 * expired, no payment kept without its order, none paid past its deadline); the bench fails
 * only when an invariant is broken or a unit that came back was left unsold while buyers
 * arrived, never on a figure. Options: --quick, --stock N, --hold S, --unpaid F, --rate N,
 * --arrivals S, --connections N, --duration S.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Context, Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { fork, type ChildProcess } from "node:child_process"
import { Agent, request } from "node:http"
import { cpus, loadavg, totalmem } from "node:os"
import { parseArgs } from "node:util"
import type { OrderId, SaleId, UserId } from "../src/domain/Ids.ts"
import { type IntentView, paths } from "../src/payments/DevelopmentProtocol.ts"
import { DevelopmentProvider } from "../src/payments/DevelopmentProvider.ts"
import { freePort } from "../tests/support/Processes.ts"
import { Audit, checkInvariants, violations } from "../src/storage/Audit.ts"
import { makeSale, makeUsers } from "../tests/support/Fixtures.ts"
import { freshServerStorage } from "../tests/support/TestDatabase.ts"
import { phaseProgress } from "./progress.ts"
import { serve } from "./serve.ts"
import { formatRate, percentile } from "./stats.ts"
import { benchSecret, signTokens } from "./tokens.ts"

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    stock: { type: "string" },
    hold: { type: "string" },
    unpaid: { type: "string" },
    rate: { type: "string" },
    arrivals: { type: "string" },
    connections: { type: "string" },
    duration: { type: "string" }
  }
})
const quick = args.quick === true
const stock = Number(args.stock ?? (quick ? 300 : 2_000))
const holdSeconds = Number(args.hold ?? (quick ? 2 : 5))
const unpaidShare = Number(args.unpaid ?? 0.3)
const arrivalRate = Number(args.rate ?? (quick ? 200 : 400))
const arrivalSeconds = Number(args.arrivals ?? 4 * holdSeconds)
const connections = Number(args.connections ?? (quick ? 16 : 32))
const duration = Number(args.duration ?? (quick ? 5 : 2 * holdSeconds + 2))
/** Purchases per second no closed loop here outruns: buyers are made for this many per second. */
const ceilingRate = 10_000
const closedLoopBuyers = Math.ceil(duration * ceilingRate)
const warmupSeconds = Math.min(2, duration)
const holdMillis = holdSeconds * 1_000
/** Payments are made this far into the hold at the latest, so none reaches the node late. */
const payWithin = 0.7

const webhookSecret = "bench webhook secret, shared with the node the bench starts"
const providerKey = "bench provider key"

// ---- role: the development provider, in a process of its own --------------------------------
const providerProcess = Effect.gen(function* () {
  const provider = Context.get(
    yield* Layer.build(
      DevelopmentProvider.layer({
        key: Redacted.make(providerKey),
        webhookSecret: Redacted.make(new TextEncoder().encode(webhookSecret)),
        webhookUrl: process.env.BENCH_HOLDS_WEBHOOK_URL ?? ""
      })
    ),
    DevelopmentProvider
  )
  process.send?.({ url: provider.url })
  return yield* Effect.never
}).pipe(Effect.scoped)

/** Forks this file as the provider's process; it is killed when the scope closes. */
const startProvider = (webhookUrl: string) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly url: string; readonly child: ChildProcess }>((resume) => {
      const child = fork(new URL(import.meta.url).pathname, [], {
        env: { ...process.env, BENCH_HOLDS_ROLE: "provider", BENCH_HOLDS_WEBHOOK_URL: webhookUrl },
        execArgv: ["--experimental-strip-types", "--no-warnings"],
        stdio: ["ignore", "inherit", "inherit", "ipc"]
      })
      let started = false
      child.once("message", (message: { readonly url: string }) => {
        started = true
        resume(Effect.succeed({ url: message.url, child }))
      })
      child.once("exit", (code) => {
        if (!started) resume(Effect.die(new Error(`the provider's process exited with ${code}`)))
      })
    }),
    ({ child }) => Effect.sync(() => child.kill("SIGKILL"))
  ).pipe(Effect.map(({ url }) => url))

// ---- HTTP, as a load generator: keep-alive sockets, no client-side parsing beyond JSON -----
const agent = new Agent({ keepAlive: true, maxSockets: 1_024 })

interface Reply {
  readonly status: number
  readonly text: string
}

const send = (url: string, headers: Record<string, string>, body?: string): Promise<Reply> =>
  new Promise((resolve) => {
    const outgoing = request(url, { method: "POST", headers, agent }, (response) => {
      let text = ""
      response.setEncoding("utf8")
      response.on("data", (chunk: string) => (text += chunk))
      response.on("end", () => resolve({ status: response.statusCode ?? 0, text }))
      response.on("error", () => resolve({ status: 0, text }))
    })
    outgoing.setTimeout(10_000, () => outgoing.destroy())
    outgoing.on("error", () => resolve({ status: 0, text: "" }))
    outgoing.end(body)
  })

interface Buyers {
  readonly users: ReadonlyArray<UserId>
  readonly tokens: ReadonlyArray<string>
}

/** One answered purchase, timed from the start of its phase. */
interface Purchase {
  readonly userId: UserId
  readonly status: number
  readonly orderId: OrderId | undefined
  readonly payBy: number | undefined
  readonly sentAt: number
  readonly millis: number
}

const purchase = async (
  url: string,
  saleId: SaleId,
  buyers: Buyers,
  index: number,
  start: number
): Promise<Purchase> => {
  const sent = performance.now()
  const reply = await send(`${url}/api/sales/${saleId}/purchases`, {
    authorization: `Bearer ${buyers.tokens[index]!}`
  })
  const millis = performance.now() - sent
  let orderId: OrderId | undefined
  let payBy: number | undefined
  if (reply.status === 201 || reply.status === 200) {
    const body = JSON.parse(reply.text) as { orderId?: OrderId; payBy?: string }
    orderId = body.orderId
    payBy = body.payBy === undefined ? undefined : Date.parse(body.payBy)
  }
  return { userId: buyers.users[index]!, status: reply.status, orderId, payBy, sentAt: sent - start, millis }
}

/** The development provider the bench runs for the node, and the key to read its intents. */
interface Provider {
  readonly url: string
  readonly key: string
}

/**
 * The winners who pay: each, at a random moment in the first part of its hold, asks the node
 * for a checkout (`POST /api/orders/:id/pay`, for which the node creates the intent at the
 * provider) and presses "Pay" on the provider's page; the provider then sends its signed
 * webhook to the node. `settled` resolves once every payment started so far was pressed and
 * the provider has delivered (or given up) every event it sent.
 */
const payments = (node: string, provider: Provider, unpaid: number) => {
  const pending: Array<Promise<void>> = []
  const intents: Array<string> = []
  const answers = {
    started: 0,
    pressed: 0,
    /** The node's answers to `pay`, ms: they include its call to the provider. */
    checkoutMillis: [] as Array<number>,
    other: new Map<string, number>(),
    delivered: 0,
    abandoned: 0,
    /** Events the node did not take at the first attempt (a 503 asks the provider to retry). */
    redelivered: 0
  }
  const otherwise = (what: string, reply: Reply) => {
    const key = `${what} ${reply.status} ${reply.text.slice(0, 80)}`
    answers.other.set(key, (answers.other.get(key) ?? 0) + 1)
  }
  const pay = (orderId: OrderId, token: string) =>
    new Promise<void>((resolve) => {
      setTimeout(
        () => {
          void (async () => {
            answers.started++
            const sent = performance.now()
            const checkout = await send(`${node}/api/orders/${orderId}/pay`, {
              authorization: `Bearer ${token}`
            })
            answers.checkoutMillis.push(performance.now() - sent)
            if (checkout.status !== 200) return otherwise("pay", checkout)
            const checkoutUrl = (JSON.parse(checkout.text) as { checkoutUrl: string }).checkoutUrl
            const intentId = decodeURIComponent(new URL(checkoutUrl).pathname.split("/").at(-1) ?? "")
            intents.push(intentId)
            const pressed = await send(new URL(paths.answer(intentId, "pay"), checkoutUrl).toString(), {})
            if (pressed.status === 303) answers.pressed++
            else otherwise("press", pressed)
          })().finally(resolve)
        },
        Math.random() * payWithin * holdMillis
      )
    })
  const settled = async () => {
    await Promise.all(pending)
    let next = 0
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < intents.length) {
          const intentId = intents[next++]!
          for (;;) {
            const view = await new Promise<IntentView | undefined>((resolve) => {
              const outgoing = request(
                `${provider.url}${paths.intent(intentId)}`,
                { headers: { authorization: `Bearer ${provider.key}` }, agent },
                (response) => {
                  let text = ""
                  response.setEncoding("utf8")
                  response.on("data", (chunk: string) => (text += chunk))
                  response.on("end", () =>
                    resolve(response.statusCode === 200 ? (JSON.parse(text) as IntentView) : undefined)
                  )
                }
              )
              outgoing.on("error", () => resolve(undefined))
              outgoing.end()
            })
            const events = view?.events ?? []
            if (events.some((event) => event.delivery === "sending")) {
              await new Promise((resolve) => setTimeout(resolve, 200))
              continue
            }
            for (const event of events) {
              if (event.delivery === "delivered") answers.delivered++
              else answers.abandoned++
              if (event.attempts > 1) answers.redelivered++
            }
            break
          }
        }
      })
    )
  }
  return {
    answers,
    /** Decides for a winner: pays (soon) or never does. */
    winner: (orderId: OrderId, token: string) => {
      if (Math.random() >= unpaid) pending.push(pay(orderId, token))
    },
    settled
  }
}

// ---- the purchase-rate phase: a closed loop ------------------------------------------------
interface RatePhase {
  readonly purchases: ReadonlyArray<Purchase>
  readonly seconds: number
  readonly exhausted: boolean
}

const closedLoop = async (
  url: string,
  saleId: SaleId,
  buyers: Buyers,
  seconds: number,
  label: string,
  onWin: (orderId: OrderId, token: string) => void
): Promise<RatePhase> => {
  const progress = phaseProgress(label, seconds)
  const purchases: Array<Purchase> = []
  const start = performance.now()
  const end = start + seconds * 1_000
  let next = 0
  let sold = 0
  const ticker = setInterval(
    () => progress.onTick((performance.now() - start) / 1_000, purchases.length, sold),
    100
  )
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end && next < buyers.users.length) {
        const index = next++
        const answer = await purchase(url, saleId, buyers, index, start)
        purchases.push(answer)
        if (answer.status === 201 && answer.orderId !== undefined) {
          sold++
          onWin(answer.orderId, buyers.tokens[index]!)
        }
      }
    })
  )
  clearInterval(ticker)
  const elapsed = (performance.now() - start) / 1_000
  progress.done(`${formatRate(sold / elapsed)} purchases/s`)
  return { purchases, seconds: elapsed, exhausted: next >= buyers.users.length }
}

/** Purchases per second and answer latencies, over the answers sent in [from, to) seconds. */
const window = (phase: RatePhase, from: number, to: number) => {
  const inside = phase.purchases.filter((p) => p.sentAt >= from * 1_000 && p.sentAt < to * 1_000)
  const sold = inside.filter((p) => p.status === 201).length
  const latencies = inside.map((p) => p.millis)
  return {
    purchasesPerSecond: sold / Math.max(0.001, to - from),
    answersPerSecond: inside.length / Math.max(0.001, to - from),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    failed: inside.filter((p) => p.status === 0 || p.status >= 500).length
  }
}

// ---- the resale phase: open-loop arrivals --------------------------------------------------
const arrivals = async (
  url: string,
  saleId: SaleId,
  buyers: Buyers,
  label: string,
  onWin: (orderId: OrderId, token: string) => void
): Promise<ReadonlyArray<Purchase>> => {
  const progress = phaseProgress(label, arrivalSeconds)
  const start = performance.now()
  const total = Math.min(buyers.users.length, Math.round(arrivalRate * arrivalSeconds))
  const inFlight: Array<Promise<Purchase>> = []
  let sold = 0
  await new Promise<void>((done) => {
    const tick = setInterval(() => {
      const elapsed = (performance.now() - start) / 1_000
      const due = Math.min(total, Math.floor(elapsed * arrivalRate))
      while (inFlight.length < due) {
        const index = inFlight.length
        const answer = purchase(url, saleId, buyers, index, start)
        void answer.then((p) => {
          if (p.status === 201 && p.orderId !== undefined) {
            sold++
            onWin(p.orderId, buyers.tokens[index]!)
          }
        })
        inFlight.push(answer)
      }
      progress.onTick(elapsed, inFlight.length, sold)
      if (inFlight.length >= total) {
        clearInterval(tick)
        done()
      }
    }, 5)
  })
  const answered = await Promise.all(inFlight)
  progress.done(`${inFlight.length} buyers, ${sold} holds`)
  return answered
}

/** Each unit an expiry gave back, matched to the order that took it next. */
const resales = (
  rows: ReadonlyArray<{ readonly status: string; readonly payBy: number; readonly createdAt: number }>,
  arrivalsEnd: number
) => {
  const byCreation = [...rows].sort((a, b) => a.createdAt - b.createdAt)
  const expired = rows.filter((row) => row.status === "expired").sort((a, b) => a.payBy - b.payBy)
  // Orders beyond the stock each took a unit that came back, in the order they came back.
  const takers = byCreation.slice(stock)
  const lags = expired.slice(0, takers.length).map((row, k) => takers[k]!.createdAt - row.payBy)
  const unsold = expired.slice(takers.length)
  return {
    paid: rows.filter((row) => row.status === "paid").length,
    expired: expired.length,
    resold: lags.length,
    lags,
    // A unit that came back while buyers still arrived must have been sold.
    unsoldWhileArriving: unsold.filter((row) => row.payBy < arrivalsEnd - 1_000).length,
    unsoldAfter: unsold.filter((row) => row.payBy >= arrivalsEnd - 1_000).length
  }
}

const payingFigures = (answers: ReturnType<typeof payments>["answers"]) =>
  `${answers.pressed} pressed Pay; the node's checkout answered p50 ${ms(percentile(answers.checkoutMillis, 50))}, ` +
  `p99 ${ms(percentile(answers.checkoutMillis, 99))}; webhooks ${answers.delivered} delivered, ` +
  `${answers.redelivered} after a retry, ${answers.abandoned} given up`

const ms = (value: number) => (Number.isNaN(value) ? "-" : `${value.toFixed(0)} ms`)
const pct = (value: number) => `${(value * 100).toFixed(0)} %`

const program = Effect.gen(function* () {
  const { url: databaseUrl, storage } = yield* freshServerStorage()
  const inStorage = Effect.provideContext(storage)
  const cpu = cpus()
  console.log(`MinCommerce bench:holds${quick ? " (quick)" : ""}`)
  console.log(
    `machine: ${cpu.length} x ${cpu[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, load average ${loadavg()[0]?.toFixed(2)}`
  )
  console.log(
    `holds of ${holdSeconds} s; ${pct(unpaidShare)} of winners never pay, the others pay at the development provider within ` +
      `${pct(payWithin)} of their hold; the load comes from this process (node:http, keep-alive)`
  )
  const buyersNeeded =
    Math.ceil(warmupSeconds * ceilingRate) + 3 * closedLoopBuyers + Math.round(arrivalRate * arrivalSeconds)
  const users = yield* inStorage(makeUsers(buyersNeeded))
  const tokens = signTokens(users)
  let taken = 0
  const take = (count: number): Buyers => {
    const from = taken
    taken += count
    return { users: users.slice(from, taken), tokens: tokens.slice(from, taken) }
  }
  // The provider runs in a process of its own, as a real one runs apart from the node and
  // from the load: the node's port is chosen first, so that it knows where to send webhooks.
  const port = yield* Effect.promise(freePort)
  const provider = yield* startProvider(`http://127.0.0.1:${port}/api/payments/webhook`)
  const node = yield* serve("src/main.ts", {
    DATABASE_URL: databaseUrl,
    PORT: String(port),
    JWT_SECRET: benchSecret,
    LOG_LEVEL: "Info",
    RATE_LIMIT_PER_USER: "0",
    PAYMENT_PROVIDER_URL: provider,
    PAYMENT_PROVIDER_KEY: providerKey,
    PAYMENT_WEBHOOK_SECRET: webhookSecret
  })
  const providerAt = { url: provider, key: providerKey }
  const bigStock = closedLoopBuyers
  const newSale = (units: number, hold: number) => inStorage(makeSale(units, { holdSeconds: hold }))
  const audits: Array<{
    readonly label: string
    readonly saleId: SaleId
    readonly purchases: ReadonlyArray<Purchase>
  }> = []

  // Warm-up, not counted: the plain path and the webhook route.
  const warmSale = yield* newSale(bigStock, 0)
  yield* Effect.promise(() =>
    closedLoop(
      node.url,
      warmSale,
      take(Math.ceil(warmupSeconds * ceilingRate)),
      warmupSeconds,
      "warm-up",
      () => {}
    )
  )

  // The purchase rate, same load: without holds; with holds nobody pays (every unit expires,
  // from the hold's length on, beside the purchases); with holds most are paid.
  console.log(
    `\npurchase rate: ${connections} connections, a fresh buyer per request, ${duration} s per sale of ` +
      `${bigStock.toLocaleString("en-US")} units (none sells out); rates from ${holdSeconds} s on are while expiries run`
  )
  const runs = [
    { label: "without holds", hold: 0, unpaid: 1 },
    { label: "holds, nobody pays", hold: holdSeconds, unpaid: 1 },
    { label: `holds, ${pct(unpaidShare)} never pay`, hold: holdSeconds, unpaid: unpaidShare }
  ]
  const measured: Array<{
    readonly label: string
    readonly all: ReturnType<typeof window>
    /** Before the first hold can expire, and after. */
    readonly early: ReturnType<typeof window>
    readonly late: ReturnType<typeof window>
    readonly paid: ReturnType<typeof payments>["answers"]
    readonly expired: number
    readonly exhausted: boolean
    /** CPU over the run, % of one core: the node's, and this process's (load, provider). */
    readonly cpu: { readonly node: number; readonly bench: number; readonly loopDelayP99: number }
  }> = []
  for (const run of runs) {
    const saleId = yield* newSale(bigStock, run.hold)
    const paying = payments(node.url, providerAt, run.unpaid)
    yield* Effect.promise(node.probe)
    const ownCpu = process.cpuUsage()
    const phase = yield* Effect.promise(() =>
      closedLoop(
        node.url,
        saleId,
        take(closedLoopBuyers),
        duration,
        run.label,
        run.hold > 0 ? paying.winner : () => {}
      )
    )
    const probe = yield* Effect.promise(node.probe)
    const used = process.cpuUsage(ownCpu)
    const cpu = {
      node: probe.cpuMillis / phase.seconds / 10,
      bench: (used.user + used.system) / 1_000 / phase.seconds / 10,
      loopDelayP99: probe.loopDelayP99
    }
    audits.push({ label: `rate, ${run.label}`, saleId, purchases: phase.purchases })
    yield* Effect.promise(paying.settled)
    const [expired] = yield* inStorage(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) =>
          sql<{
            n: number
          }>`SELECT count(*)::int AS n FROM orders WHERE sale_id = ${saleId} AND status = 'expired'`
      )
    )
    measured.push({
      label: run.label,
      all: window(phase, 0, phase.seconds),
      early: window(phase, 0, holdSeconds),
      late: window(phase, holdSeconds, phase.seconds),
      paid: paying.answers,
      expired: expired?.n ?? 0,
      exhausted: phase.exhausted,
      cpu
    })
    // This sale's last holds end before the next run starts.
    if (run.hold > 0) yield* Effect.sleep(holdMillis + 1_000)
  }
  const baseline = measured[0]!
  for (const run of measured) {
    const others = [...run.paid.other].map(([answer, n]) => `${n} x ${answer}`).join(", ")
    console.log(
      `  ${run.label}: ${formatRate(run.all.purchasesPerSecond)} purchases/s over the run (p50 ${ms(run.all.p50)}, p99 ${ms(run.all.p99)}); ` +
        `before ${holdSeconds} s ${formatRate(run.early.purchasesPerSecond)} purchases/s ` +
        `(${pct(run.early.purchasesPerSecond / baseline.early.purchasesPerSecond)} of without holds); ` +
        `from ${holdSeconds} s on ${formatRate(run.late.purchasesPerSecond)} purchases/s ` +
        `(${pct(run.late.purchasesPerSecond / baseline.late.purchasesPerSecond)} of without holds; p50 ${ms(run.late.p50)}, p99 ${ms(run.late.p99)}); ` +
        `${run.all.failed} failed; CPU node ${run.cpu.node.toFixed(0)} % (event-loop delay p99 ${ms(run.cpu.loopDelayP99)}), bench ${run.cpu.bench.toFixed(0)} % of a core` +
        (run === baseline
          ? ""
          : `; beside them ` +
            (run.paid.started === 0
              ? ""
              : `${run.paid.started} payments (${payingFigures(run.paid)}${others === "" ? "" : `, ${others}`}), `) +
            `${run.expired} holds expired`) +
        (run.exhausted ? " (FLAGGED: ran out of buyers; the rate is a lower bound)" : "")
    )
  }

  // Resale: new buyers keep arriving while the unpaid holds expire.
  console.log(
    `\nresale: ${stock.toLocaleString("en-US")} units held ${holdSeconds} s, new buyers arriving at ${arrivalRate}/s ` +
      `for ${arrivalSeconds} s, one press of Buy each`
  )
  const resaleSale = yield* newSale(stock, holdSeconds)
  const resalePayments = payments(node.url, providerAt, unpaidShare)
  const startedAt = Date.now()
  const resale = yield* Effect.promise(() =>
    arrivals(
      node.url,
      resaleSale,
      take(Math.round(arrivalRate * arrivalSeconds)),
      "arrivals",
      resalePayments.winner
    )
  )
  const arrivalsEnd = Date.now()
  audits.push({ label: "resale sale", saleId: resaleSale, purchases: resale })
  yield* Effect.promise(resalePayments.settled)
  // Every hold taken while buyers arrived has ended (paid or expired) before the rows are read.
  const lastPayBy = Math.max(startedAt, ...resale.flatMap((p) => (p.payBy === undefined ? [] : [p.payBy])))
  yield* Effect.sleep(Math.max(0, lastPayBy + 1_500 - Date.now()))
  const rows = yield* inStorage(
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) => sql<{ status: string; payBy: number; createdAt: number }>`
        SELECT status, (extract(epoch FROM pay_by) * 1000)::float8 AS "payBy",
               (extract(epoch FROM created_at) * 1000)::float8 AS "createdAt"
        FROM orders WHERE sale_id = ${resaleSale}`
    )
  )
  const matched = resales(
    rows.map((row) => ({ status: row.status, payBy: Number(row.payBy), createdAt: Number(row.createdAt) })),
    arrivalsEnd
  )
  const soldOut = resale.filter((p) => p.status === 409).length
  const holds = resale.filter((p) => p.status === 201).length
  console.log(
    `  ${resale.length} buyers: ${holds} holds, ${soldOut} sold out, ${resale.filter((p) => p.status === 0 || p.status >= 500).length} failed; ` +
      `${resalePayments.answers.started} payments (${payingFigures(resalePayments.answers)}), ${matched.paid} paid, ${matched.expired} expired`
  )
  console.log(
    `  units back by expiry and sold again: ${matched.resold} of ${matched.expired}; from payBy to sold again ` +
      `p50 ${ms(percentile(matched.lags, 50))}, p99 ${ms(percentile(matched.lags, 99))}, max ${ms(matched.lags.length === 0 ? Number.NaN : Math.max(...matched.lags))}`
  )
  console.log(
    `  every unit that came back while buyers arrived was sold again: ${matched.unsoldWhileArriving === 0 ? "yes" : `NO, ${matched.unsoldWhileArriving} unsold`}` +
      `${matched.unsoldAfter === 0 ? "" : ` (${matched.unsoldAfter} came back in the last second of arrivals or after, with nobody left to buy)`}`
  )

  // Invariants, sale by sale.
  console.log("\ninvariants (PostgreSQL):")
  let broken = matched.unsoldWhileArriving
  for (const { label, saleId, purchases } of audits) {
    const confirmed = new Map<OrderId, UserId>()
    for (const p of purchases) if (p.orderId !== undefined) confirmed.set(p.orderId, p.userId)
    const record = yield* inStorage(Effect.flatMap(Audit, (audit) => audit.read(saleId)))
    const report = checkInvariants(record, confirmed)
    broken += violations(report)
    console.log(
      `  ${label}: ${report.committed} live orders (${record.stock} units, ${record.available} available), ${report.lapsed} lapsed; ` +
        `oversold ${report.oversold}, duplicate buyers ${report.duplicateBuyers}, stock row off ${report.stockMismatch}, ` +
        `2xx without a row ${report.lostConfirmed}, paid then expired ${report.expiredPaid}, ` +
        `payments kept without their order ${report.paidAfterLapse}, paid past the deadline ${report.paidLate} -> ` +
        `${violations(report) === 0 ? "OK" : "VIOLATED"}`
    )
  }
  if (broken > 0) {
    console.log("INVARIANT VIOLATED")
    process.exitCode = 1
  }
}).pipe(Effect.scoped)

if (process.env.BENCH_HOLDS_ROLE === "provider") NodeRuntime.runMain(providerProcess)
else NodeRuntime.runMain(program)

/**
 * `npm run bench:actor`: the sale actor's throughput, with a lock-per-purchase baseline
 * measured in the same run on the same PostgreSQL. Prints figures; fails only when an
 * invariant is broken. Options: --quick, --stock N, --buyers N, --batch N (most orders per
 * commit, default 4000), --in-flight N (commits in flight at once, default 3). It runs in a fresh database
 * on the server at TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { cpus, totalmem } from "node:os"
import { randomUUID } from "node:crypto"
import { parseArgs } from "node:util"
import * as Sale from "../src/actors/SaleState.ts"
import { SaleRegistry } from "../src/actors/SaleRegistry.ts"
import type { CommitReport } from "../src/actors/SaleActor.ts"
import type { OrderId, SaleId, UserId } from "../src/domain/Ids.ts"
import { Audit, checkInvariants, violations, type InvariantReport } from "../src/storage/Audit.ts"
import { Catalog } from "../src/storage/Catalog.ts"
import { Database } from "../src/storage/Database.ts"
import { OrderStore, type Batch } from "../src/storage/OrderStore.ts"
import { freshServerDatabase } from "../tests/support/TestDatabase.ts"
import { makeSale, makeUsers } from "../tests/support/Fixtures.ts"
import { formatMillis, formatRate, mean, percentile } from "./stats.ts"

const { values: args } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    stock: { type: "string" },
    buyers: { type: "string" },
    batch: { type: "string" },
    "in-flight": { type: "string" }
  }
})
const quick = args.quick === true
const stock = Number(args.stock ?? (quick ? 10_000 : 100_000))
const buyers = Number(args.buyers ?? (quick ? 20_000 : 200_000))
const decisions = quick ? 1_000_000 : 5_000_000
const baselineSeconds = quick ? 2 : 5
const baselineCallers = 50

const line = (text = "") => console.log(text)

/** Decisions per second of the pure core, accepting (distinct buyers) and rejecting (sold out). */
const measureDecide = () => {
  const saleId = randomUUID() as SaleId
  const users = Array.from({ length: 1_000_000 }, () => randomUUID() as UserId)
  const orders = Array.from({ length: 1_000_000 }, () => randomUUID() as OrderId)
  const run = (total: number, count: number) => {
    let state = Sale.initialState({
      saleId,
      total,
      startsAt: 0,
      endsAt: 10,
      cancelled: false,
      buyers: new Map()
    })
    const started = performance.now()
    for (let i = 0; i < count; i++) {
      const k = i % users.length
      ;[state] = Sale.decide(state, { _tag: "Purchase", userId: users[k]!, orderId: orders[k]!, now: 5 })
    }
    return count / ((performance.now() - started) / 1_000)
  }
  run(1_000_000, 200_000) // warm-up, not counted
  return {
    accepting: run(1_000_000, users.length),
    mixed: run(users.length / 2, decisions),
    soldOut: run(0, decisions)
  }
}

const report = (name: string, invariants: InvariantReport) => {
  const broken = violations(invariants)
  line(
    `  invariants (${name}): committed ${invariants.committed}, oversold ${invariants.oversold}, ` +
      `duplicate buyers ${invariants.duplicateBuyers}, lost 2xx ${invariants.lostConfirmed}, ` +
      `stock mismatch ${invariants.stockMismatch} -> ${broken === 0 ? "OK" : "VIOLATED"}`
  )
  return broken
}

/** Every buyer once, through mailbox + actor + group commit. */
const commits: Array<CommitReport> = []
const measureActor = Effect.gen(function* () {
  const users = yield* makeUsers(buyers)
  const saleId = yield* makeSale(stock)
  line(`  ${buyers.toLocaleString("en-US")} buyers for ${stock.toLocaleString("en-US")} units`)
  const latencies = new Array<number>(users.length)
  const confirmed = new Map<OrderId, UserId>()
  const outcomes: Record<string, number> = {}
  const registry = yield* SaleRegistry
  const actor = yield* registry.actor(saleId)
  const started = performance.now()
  let soldOutAt = Number.NaN
  // Offered the way the HTTP fast path offers: a plain callback per purchase, 20,000 waiting
  // at any time, each answered only after its decision (and, if accepted, its COMMIT).
  yield* Effect.callback<void>((resume) => {
    let next = 0
    let answered = 0
    const offerNext = () => {
      const i = next++
      if (i >= users.length) return
      const userId = users[i]!
      const offered = performance.now()
      actor.offer(userId, (reply) => {
        latencies[i] = performance.now() - offered
        outcomes[reply._tag] = (outcomes[reply._tag] ?? 0) + 1
        if (reply._tag === "Accepted") {
          confirmed.set(reply.orderId, userId)
          if (confirmed.size === stock) soldOutAt = performance.now()
        }
        if (++answered === users.length) resume(Effect.void)
        else offerNext()
      })
    }
    for (let k = 0; k < 20_000; k++) offerNext()
  })
  const elapsed = (performance.now() - started) / 1_000
  yield* registry.stop(saleId)
  const audit = yield* Audit
  const invariants = checkInvariants(yield* audit.read(saleId), confirmed)
  const sellingSeconds = Number.isNaN(soldOutAt) ? elapsed : (soldOutAt - started) / 1_000
  const orderCommits = commits.filter((c) => c.orders > 0)
  return {
    ordersPerSecond: invariants.committed / sellingSeconds,
    attemptsPerSecond: users.length / elapsed,
    meanBatch: mean(orderCommits.map((c) => c.orders)),
    commits: orderCommits.length,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    commitP50: percentile(
      commits.map((c) => c.millis),
      50
    ),
    commitP99: percentile(
      commits.map((c) => c.millis),
      99
    ),
    outcomes,
    invariants
  }
}).pipe(
  Effect.provide(
    Layer.unwrap(
      Effect.sync(() =>
        SaleRegistry.make({
          mailboxCapacity: 50_000,
          maxBatchSize: Number(args.batch ?? 4_000),
          commitsInFlight: Number(args["in-flight"] ?? 3),
          idleMillis: 600_000,
          onCommit: (commit) => commits.push(commit)
        })
      )
    )
  )
)

/**
 * PostgreSQL's own figure for the actor's rows: the same orders and accepted-attempt rows,
 * through the same `commit_batch`, in batches of the actor's mean size, committed one after
 * another on one connection with nothing else in the process. The actor's committed orders/s
 * are stated as a share of this.
 */
const measureDirect = (batchSize: number) =>
  Effect.gen(function* () {
    const store = yield* OrderStore
    const users = yield* makeUsers(stock)
    const saleId = yield* makeSale(stock)
    const { epoch } = yield* store.claim(saleId)
    const size = Math.max(1, Math.round(batchSize))
    const batches: Array<Batch> = []
    for (let from = 0; from < users.length; from += size) {
      const at = Date.now()
      const orders = users
        .slice(from, from + size)
        .map((userId) => ({ orderId: randomUUID() as OrderId, userId, at }))
      const attempts = orders.map((o) => ({ userId: o.userId, outcome: "accepted", at }))
      batches.push({ batchId: randomUUID(), saleId, epoch, orders, attempts, refusals: [] })
    }
    const confirmed = new Map<OrderId, UserId>()
    const started = performance.now()
    for (const batch of batches) {
      yield* store.commit(batch)
      for (const o of batch.orders) confirmed.set(o.orderId, o.userId)
    }
    const elapsed = (performance.now() - started) / 1_000
    const audit = yield* Audit
    const invariants = checkInvariants(yield* audit.read(saleId), confirmed)
    return { ordersPerSecond: confirmed.size / elapsed, batches: batches.length, size, invariants }
  })

/** The usual design: one transaction per purchase, the stock row locked by each. */
const measureRowLock = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const users = yield* makeUsers(50_000)
  const saleId = yield* makeSale(quick ? 1_000 : 5_000)
  const confirmed = new Map<OrderId, UserId>()
  const latencies: Array<number> = []
  let next = 0
  let soldOut = false
  const deadline = performance.now() + baselineSeconds * 1_000
  const purchase = (userId: UserId) =>
    sql.withTransaction(
      Effect.gen(function* () {
        const taken = yield* sql`
          UPDATE stocks SET available = available - 1
          WHERE sale_id = ${saleId} AND available > 0 RETURNING available`
        if (taken.length === 0) return undefined
        const orderId = randomUUID() as OrderId
        yield* sql`
          INSERT INTO orders (id, sale_id, user_id, price_cents, owner_epoch, created_at)
          VALUES (${orderId}, ${saleId}, ${userId}, 12900, 0, now())`
        return orderId
      })
    )
  const caller = Effect.gen(function* () {
    while (!soldOut && performance.now() < deadline && next < users.length) {
      const userId = users[next++]!
      const started = performance.now()
      const orderId = yield* purchase(userId)
      latencies.push(performance.now() - started)
      if (orderId === undefined) soldOut = true
      else confirmed.set(orderId, userId)
    }
  })
  const started = performance.now()
  yield* Effect.all(
    Array.from({ length: baselineCallers }, () => caller),
    { concurrency: "unbounded" }
  )
  const elapsed = (performance.now() - started) / 1_000
  const audit = yield* Audit
  const invariants = checkInvariants(yield* audit.read(saleId), confirmed)
  return {
    ordersPerSecond: confirmed.size / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    invariants
  }
})

const program = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  const version = (yield* sql<{ v: string }>`SELECT current_setting('server_version') AS v`)[0]?.v ?? "?"
  const cpu = cpus()
  line(`MinCommerce bench:actor${quick ? " (quick)" : ""}`)
  line(`machine: ${cpu.length} x ${cpu[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB`)
  line(`Node ${process.version}, PostgreSQL ${version}`)

  line()
  line("1. pure decision core (decide, no IO)")
  const rates = measureDecide()
  line(`  accepting (distinct buyers):   ${formatRate(rates.accepting)} decisions/s`)
  line(`  mixed (half accepted, repeats): ${formatRate(rates.mixed)} decisions/s`)
  line(`  sold out (all rejected):       ${formatRate(rates.soldOut)} decisions/s   (goal >= 2,000,000)`)

  line()
  line("2. end to end: mailbox + actor + group commit into PostgreSQL")
  const actor = yield* measureActor
  line(`  committed orders/s while stock lasted: ${formatRate(actor.ordersPerSecond)}   (goal >= 100,000)`)
  line(`  attempts decided/s over the whole run: ${formatRate(actor.attemptsPerSecond)}`)
  line(`  commits with orders: ${actor.commits}, mean batch ${actor.meanBatch.toFixed(1)} orders`)
  line(`  offer -> reply: p50 ${formatMillis(actor.p50)}, p99 ${formatMillis(actor.p99)}`)
  line(`  commit latency: p50 ${formatMillis(actor.commitP50)}, p99 ${formatMillis(actor.commitP99)}`)
  line(`  outcomes: ${JSON.stringify(actor.outcomes)}`)
  let broken = report("actor", actor.invariants)

  line()
  line(
    "3. PostgreSQL's own figure: the same rows through commit_batch, one connection, one batch after another"
  )
  const direct = yield* measureDirect(actor.meanBatch)
  line(
    `  committed orders/s: ${formatRate(direct.ordersPerSecond)} (${direct.batches} batches of ${direct.size})`
  )
  broken += report("direct", direct.invariants)
  line(
    `  actor at ${((actor.ordersPerSecond / direct.ordersPerSecond) * 100).toFixed(0)} % of PostgreSQL's own figure ` +
      `(goal >= 80 %)`
  )

  line()
  line(`4. baseline: one row-locking transaction per purchase, ${baselineCallers} concurrent callers`)
  const baseline = yield* measureRowLock
  line(`  purchases/s: ${formatRate(baseline.ordersPerSecond)}`)
  line(`  latency: p50 ${formatMillis(baseline.p50)}, p99 ${formatMillis(baseline.p99)}`)
  broken += report("baseline", baseline.invariants)

  line()
  line(
    `ratio: actor ${formatRate(actor.ordersPerSecond)} / baseline ${formatRate(baseline.ordersPerSecond)} = ` +
      `${(actor.ordersPerSecond / baseline.ordersPerSecond).toFixed(1)}x`
  )
  if (broken > 0) {
    line("INVARIANT VIOLATED")
    process.exitCode = 1
  }
})

const Storage = Layer.mergeAll(OrderStore.layer, Catalog.layer, Audit.layer).pipe(
  Layer.provideMerge(
    Layer.unwrap(
      Effect.map(freshServerDatabase, ({ url }) =>
        Database.server(Redacted.make(url), { maxConnections: 60 })
      )
    )
  )
)

NodeRuntime.runMain(program.pipe(Effect.provide(Storage)), { disableErrorReporting: false })

import { describe, expect, it } from "vitest"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import type { SaleRecord } from "../../src/storage/Audit.ts"
import { markdown, oursBroken } from "../../bench/report.ts"
import {
  checkRun,
  ratios,
  summarize,
  type BenchResult,
  type DesignResult,
  type Run
} from "../../bench/summary.ts"

const saleId = "00000000-0000-4000-8000-000000000001" as SaleId
const user = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, "0")}` as UserId
const order = (n: number) => `10000000-0000-4000-8000-${n.toString().padStart(12, "0")}` as OrderId

/** A bench run of a sale of `stock` units, its rows and its 2xx answers given as [order, user] pairs. */
const run = (
  stock: number,
  rows: ReadonlyArray<readonly [number, number]>,
  answered: ReadonlyArray<readonly [number, number]>,
  figures: Partial<Run> = {},
  refused: ReadonlyArray<number> = []
): Run => {
  const record: SaleRecord = {
    saleId,
    stock,
    available: Math.max(0, stock - rows.length),
    orders: new Map(rows.map(([o, u]) => [order(o), user(u)]))
  }
  return {
    seconds: 10,
    requests: 1_000,
    requestsPerSecond: 100,
    purchasesPerSecond: 50,
    purchased: answered.length,
    p50: 5,
    p99: 20,
    p999: 30,
    outcomes: { 201: answered.length },
    sellOutSeconds: undefined,
    invariants: checkRun(
      record,
      new Map(answered.map(([o, u]) => [order(o), user(u)])),
      new Set(refused.map(user))
    ),
    ...figures
  }
}

const design = (
  id: DesignResult["id"],
  runs: ReadonlyArray<Run>,
  ours = id.startsWith("mincommerce")
): DesignResult => ({
  id,
  title: id,
  description: `${id} design`,
  ours,
  checked: id !== "ceiling",
  byConnections: [{ connections: 256, runs }]
})

const result = (designs: ReadonlyArray<DesignResult>): BenchResult => ({
  startedAt: "2026-11-24T22:00:00.000Z",
  finishedAt: "2026-11-24T22:05:00.000Z",
  command: "npm run bench",
  machine: {
    cpu: "test CPU",
    cores: 2,
    memoryGiB: 24,
    node: "v24",
    postgres: "PostgreSQL 15",
    redis: "7",
    loadAverage: { before: 0, after: 0 }
  },
  settings: {
    quick: false,
    stock: 3,
    buyers: 10,
    connections: [256],
    seconds: 10,
    runs: 3,
    warmupSeconds: 3,
    poolSize: 20
  },
  designs
})

const clean = [
  [1, 1],
  [2, 2],
  [3, 3]
] as const

describe("summarize", () => {
  it("takes medians and min–max over runs, and counts the runs that sold out", () => {
    const summary = summarize([
      run(3, clean, clean, { purchasesPerSecond: 300, p99: 12, sellOutSeconds: 1.5 }),
      run(3, clean, clean, { purchasesPerSecond: 100, p99: 30, sellOutSeconds: undefined }),
      run(3, clean, clean, { purchasesPerSecond: 200, p99: 18, sellOutSeconds: 2.5 })
    ])
    expect(summary.purchasesPerSecond).toEqual({ median: 200, min: 100, max: 300, runs: 3 })
    expect(summary.p99.median).toBe(18)
    expect(summary.soldOutRuns).toBe(2)
    expect(summary.sellOutSeconds.median).toBe(2)
    expect(summary.violations).toBe(0)
  })

  it("gives the median count per outcome, zero for a run that had none", () => {
    const summary = summarize([
      run(3, clean, clean, { outcomes: { 201: 3, 409: 10 } }),
      run(3, clean, clean, { outcomes: { 201: 3 } }),
      run(3, clean, clean, { outcomes: { 201: 3, 409: 4, timeouts: 1 } })
    ])
    expect(summary.outcomes).toEqual({ 201: 3, 409: 4, timeouts: 0 })
  })
})

describe("a history with a planted oversell and a planted lost 2xx", () => {
  // Stock 3: four rows were committed (one unit oversold), and buyer 5 was answered 2xx for
  // order 5, which is not in PostgreSQL.
  const rows = [...clean, [4, 4]] as const
  const answered = [...rows, [5, 5]] as const
  const planted = run(3, rows, answered)

  it("the checker catches both", () => {
    expect(planted.invariants?.oversold).toBe(1)
    expect(planted.invariants?.lostConfirmed).toBe(1)
  })

  it("the summary counts them even when the other runs were clean", () => {
    const summary = summarize([run(3, clean, clean), planted, run(3, clean, clean)])
    expect(summary.violations).toBeGreaterThanOrEqual(2)
    expect(summary.worst?.oversold).toBe(1)
    expect(summary.worst?.lostConfirmed).toBe(1)
  })

  it("fails the bench when the design is MinCommerce's, and flags it in red in the report", () => {
    const bench = result([
      design("mincommerce", [run(3, clean, clean), planted]),
      design("row-lock", [run(3, clean, clean)])
    ])
    const broken = oursBroken(bench)
    expect(broken).toHaveLength(1)
    expect(broken[0]).toContain("oversold 1")
    expect(broken[0]).toContain("2xx without a row 1")
    const report = markdown(bench, undefined)
    expect(report).toMatch(/\| mincommerce \|.*🔴 \*\*VIOLATED\*\*/)
    expect(report).toMatch(/\| row-lock \|.*\| OK \|/)
  })

  it("flags a broken baseline without failing the bench", () => {
    const bench = result([
      design("mincommerce", [run(3, clean, clean)]),
      design("redis-decrement", [planted])
    ])
    expect(oursBroken(bench)).toEqual([])
    expect(markdown(bench, undefined)).toMatch(/\| redis-decrement \|.*🔴 \*\*VIOLATED\*\*/)
  })
})

describe("a buyer told no who has an order anyway", () => {
  it("is caught, unless the same buyer was also told yes", () => {
    // Buyer 3 was answered 409 and never 2xx, yet has order 3; buyer 2 got a 409 on a retry after a 201.
    const answered = [
      [1, 1],
      [2, 2]
    ] as const
    const refusedRun = run(5, clean, answered, {}, [2, 3])
    expect(refusedRun.invariants?.refusedWithRow).toBe(1)
    expect(summarize([refusedRun]).violations).toBe(1)
    expect(oursBroken(result([design("mincommerce", [refusedRun])]))[0]).toContain(
      "rows for buyers told no 1"
    )
  })
})

describe("ratios", () => {
  it("compare medians: purchases/s with the row lock, requests/s with the ceiling", () => {
    const ours = design("mincommerce", [
      run(3, clean, clean, { purchasesPerSecond: 8_000, requestsPerSecond: 9_000 }),
      run(3, clean, clean, { purchasesPerSecond: 10_000, requestsPerSecond: 11_000 })
    ])
    const bench = result([
      ours,
      design("row-lock", [run(3, clean, clean, { purchasesPerSecond: 225 })]),
      design("ceiling", [run(3, [], [], { requestsPerSecond: 12_500, invariants: undefined })], false)
    ])
    const { purchasesVsRowLock, purchasesVsCeiling, requestsVsCeiling } = ratios(bench, ours, 256)
    expect(purchasesVsRowLock).toBe(40)
    expect(purchasesVsCeiling).toBe(0.72)
    expect(requestsVsCeiling).toBe(0.8)
  })
})

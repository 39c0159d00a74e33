/** What `npm run bench` measured, as written to the JSON file, and its per-design summaries. */
import type { OrderId, UserId } from "../src/domain/Ids.ts"
import { checkInvariants, violations, type InvariantReport, type SaleRecord } from "../src/storage/Audit.ts"
import type { DesignId } from "./designs.ts"
import { median, ratio, spread, type Spread } from "./stats.ts"

/** The service's invariants, and one only a load generator can see. */
export interface RunInvariants extends InvariantReport {
  /** Orders of buyers who were told no (a 4xx other than 408) and never told yes. */
  readonly refusedWithRow: number
}

export const runViolations = (report: RunInvariants): number => violations(report) + report.refusedWithRow

/**
 * Checks a sale's rows against what the load generator was answered: order ids answered 2xx
 * (order id -> buyer), and buyers answered a definite refusal.
 */
export const checkRun = (
  record: SaleRecord,
  confirmed: ReadonlyMap<OrderId, UserId>,
  refused: ReadonlySet<UserId>
): RunInvariants => {
  const told = new Set(confirmed.values())
  let refusedWithRow = 0
  for (const userId of record.orders.values()) if (refused.has(userId) && !told.has(userId)) refusedWithRow++
  return { ...checkInvariants(record, confirmed), refusedWithRow }
}

/** One counted run of one design at one connection count. */
export interface Run {
  readonly seconds: number
  readonly requests: number
  readonly requestsPerSecond: number
  readonly purchasesPerSecond: number
  readonly purchased: number
  readonly p50: number
  readonly p99: number
  readonly p999: number
  readonly outcomes: Record<string, number>
  /** wrk's own CPU over the run, percent of one core (absent in results made before it was measured). */
  readonly generatorCpuPercent?: number
  /** Seconds from the first request to the last unit sold; undefined when stock remained. */
  readonly sellOutSeconds: number | undefined
  /** Read back from PostgreSQL after the run; undefined for the ceiling, which stores nothing. */
  readonly invariants: RunInvariants | undefined
}

export interface Summary {
  readonly purchasesPerSecond: Spread
  readonly requestsPerSecond: Spread
  readonly p50: Spread
  readonly p99: Spread
  readonly p999: Spread
  /** Over the runs that sold out; `soldOutRuns` says how many did. */
  readonly sellOutSeconds: Spread
  readonly soldOutRuns: number
  /** Median count per outcome over the runs. */
  readonly outcomes: Record<string, number>
  /** Worst run for each invariant. */
  readonly worst: RunInvariants | undefined
  /** Invariant violations over all runs: a design with any is flagged. */
  readonly violations: number
}

export interface DesignResult {
  readonly id: DesignId
  readonly title: string
  readonly description: string
  readonly ours: boolean
  readonly checked: boolean
  /** Set when the design did not run: why. */
  readonly skipped?: string
  /** Set when the design failed to run. */
  readonly failed?: string
  readonly byConnections: ReadonlyArray<{ readonly connections: number; readonly runs: ReadonlyArray<Run> }>
}

export interface BenchResult {
  readonly startedAt: string
  readonly finishedAt: string
  readonly command: string
  readonly machine: {
    readonly cpu: string
    readonly cores: number
    readonly memoryGiB: number
    readonly node: string
    readonly postgres: string
    readonly redis: string
    /** 1-minute load average before and after the bench: other work on a shared machine shows here. */
    readonly loadAverage: { readonly before: number; readonly after: number }
  }
  readonly settings: {
    readonly quick: boolean
    readonly stock: number
    readonly buyers: number
    readonly connections: ReadonlyArray<number>
    readonly seconds: number
    readonly runs: number
    readonly warmupSeconds: number
    /** Connections in each baseline's `pg` pool. */
    readonly poolSize: number
  }
  readonly designs: ReadonlyArray<DesignResult>
}

const worstOf = (reports: ReadonlyArray<RunInvariants>): RunInvariants | undefined =>
  reports.length === 0
    ? undefined
    : {
        committed: Math.max(...reports.map((r) => r.committed)),
        oversold: Math.max(...reports.map((r) => r.oversold)),
        duplicateBuyers: Math.max(...reports.map((r) => r.duplicateBuyers)),
        stockMismatch: Math.max(...reports.map((r) => r.stockMismatch)),
        lostConfirmed: Math.max(...reports.map((r) => r.lostConfirmed)),
        unconfirmedRows: Math.max(...reports.map((r) => r.unconfirmedRows)),
        refusedWithRow: Math.max(...reports.map((r) => r.refusedWithRow))
      }

export const summarize = (runs: ReadonlyArray<Run>): Summary => {
  const soldOut = runs.flatMap((run) => (run.sellOutSeconds === undefined ? [] : [run.sellOutSeconds]))
  const codes = [...new Set(runs.flatMap((run) => Object.keys(run.outcomes)))].sort()
  const reports = runs.flatMap((run) => (run.invariants === undefined ? [] : [run.invariants]))
  return {
    purchasesPerSecond: spread(runs.map((run) => run.purchasesPerSecond)),
    requestsPerSecond: spread(runs.map((run) => run.requestsPerSecond)),
    p50: spread(runs.map((run) => run.p50)),
    p99: spread(runs.map((run) => run.p99)),
    p999: spread(runs.map((run) => run.p999)),
    sellOutSeconds: spread(soldOut),
    soldOutRuns: soldOut.length,
    outcomes: Object.fromEntries(
      codes.map((code) => [code, median(runs.map((run) => run.outcomes[code] ?? 0))])
    ),
    worst: worstOf(reports),
    violations: reports.reduce((sum, report) => sum + runViolations(report), 0)
  }
}

/** A design's summary at a connection count, if it ran there. */
export const summaryAt = (design: DesignResult, connections: number): Summary | undefined => {
  const runs = design.byConnections.find((entry) => entry.connections === connections)?.runs
  return runs === undefined || runs.length === 0 ? undefined : summarize(runs)
}

/**
 * The ratios the issue asks for: purchases/s against the row lock's; purchases/s and requests/s
 * against the ceiling's requests/s (every ceiling answer is a stand-in for a purchase).
 */
export const ratios = (result: BenchResult, design: DesignResult, connections: number) => {
  const ours = summaryAt(design, connections)
  const rowLock = result.designs.find((d) => d.id === "row-lock")
  const ceiling = result.designs.find((d) => d.id === "ceiling")
  const base = rowLock === undefined ? undefined : summaryAt(rowLock, connections)
  const top = ceiling === undefined ? undefined : summaryAt(ceiling, connections)
  return {
    purchasesVsRowLock: ratio(
      ours?.purchasesPerSecond.median ?? Number.NaN,
      base?.purchasesPerSecond.median ?? Number.NaN
    ),
    purchasesVsCeiling: ratio(
      ours?.purchasesPerSecond.median ?? Number.NaN,
      top?.requestsPerSecond.median ?? Number.NaN
    ),
    requestsVsCeiling: ratio(
      ours?.requestsPerSecond.median ?? Number.NaN,
      top?.requestsPerSecond.median ?? Number.NaN
    )
  }
}

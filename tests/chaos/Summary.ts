import type { RunResult } from "./Run.ts"
import { faultClass } from "./Schedule.ts"

/** Results of many seeds, per fault class: what `npm run chaos -- --seeds N` prints. */

export interface ClassRow {
  readonly faultClass: string
  readonly injected: number
  /** Violations that followed a fault of this class (during it or soon after). */
  readonly violations: number
  readonly unavailability: ReadonlyArray<number>
  /** Faults after which no sale came before the load stopped. */
  readonly openEnded: number
}

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!

export const byClass = (results: ReadonlyArray<RunResult>): Array<ClassRow> => {
  const rows = new Map<
    string,
    { injected: number; violations: number; unavailability: Array<number>; openEnded: number }
  >()
  const row = (name: string) => {
    let found = rows.get(name)
    if (found === undefined) {
      found = { injected: 0, violations: 0, unavailability: [], openEnded: 0 }
      rows.set(name, found)
    }
    return found
  }
  for (const result of results) {
    result.injected.forEach((injected, index) => {
      const r = row(faultClass(injected.fault))
      r.injected++
      const outage = result.check.unavailability[index]
      if (outage !== undefined) {
        r.unavailability.push(outage.millis)
        if (outage.openEnded) r.openEnded++
      }
    })
    for (const violation of result.check.violations) {
      const fault = violation.fault === undefined ? undefined : result.injected[violation.fault]
      row(fault === undefined ? "(no fault nearby)" : faultClass(fault.fault)).violations++
    }
  }
  return [...rows.entries()]
    .map(([name, r]) => ({
      faultClass: name,
      ...r,
      unavailability: [...r.unavailability].sort((a, b) => a - b)
    }))
    .sort((a, b) => a.faultClass.localeCompare(b.faultClass))
}

const seconds = (millis: number) => (Number.isNaN(millis) ? "-" : (millis / 1_000).toFixed(1))

export const formatTable = (results: ReadonlyArray<RunResult>): string => {
  const ttl = results[0]?.leaseTtlMillis ?? 0
  const header = [
    "fault class",
    "injected",
    "violations",
    "unavail p50 s",
    "unavail max s",
    "max / TTL",
    "no sale after"
  ]
  const lines = byClass(results).map((r) => {
    const max = r.unavailability[r.unavailability.length - 1] ?? NaN
    return [
      r.faultClass,
      String(r.injected),
      String(r.violations),
      seconds(percentile(r.unavailability, 0.5)),
      seconds(max),
      Number.isNaN(max) || ttl === 0 ? "-" : `${(max / ttl).toFixed(1)}x`,
      String(r.openEnded)
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)))
  const format = (cells: ReadonlyArray<string>) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`
  return [
    format(header),
    `|${widths.map((w, i) => (i === 0 ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`,
    ...lines.map(format)
  ].join("\n")
}

/** One line per run: the seed, its faults and what the check found. */
export const formatRun = (result: RunResult): string => {
  const c = result.check
  const { ok, failed, unknown } = result.history.byOutcome
  return (
    `seed ${result.plan.seed}: ${result.injected.length} faults, ${c.committed}/${c.stock} sold, ` +
    `${ok} ok ${failed} failed ${unknown} unknown answers, ${c.violations.length} violations` +
    `${c.earlySoldOut > 0 ? `, ${c.earlySoldOut} "sold out" before a later sale` : ""} ` +
    `(${(result.millis / 1_000).toFixed(0)} s)\n  answers: ${[...result.history.codes()]
      .sort((a, b) => b[1] - a[1])
      .map(([code, count]) => `${code} ${count}`)
      .join(", ")}`
  )
}

export const formatViolations = (result: RunResult): string =>
  result.check.violations
    .map((v) => {
      const fault = v.fault === undefined ? undefined : result.injected[v.fault]
      const after =
        fault === undefined
          ? ""
          : ` [after fault ${v.fault! + 1} ${faultClass(fault.fault)}${fault.nodeId === undefined ? "" : ` ${fault.nodeId}`} at ${fault.startedAt} ms]`
      return `  seed ${result.plan.seed} ${v.invariant}: ${v.detail}${after}`
    })
    .join("\n")

/** One line per fault of a run: what it hit, how long it held, how long no sale came. */
export const formatFaults = (result: RunResult): string =>
  result.injected
    .map((injected, index) => {
      const outage = result.check.unavailability[index]
      const node = injected.nodeId === undefined ? "" : ` ${injected.nodeId}`
      const note = injected.note === undefined ? "" : ` (${injected.note})`
      const gap =
        outage === undefined ? "-" : `${(outage.millis / 1_000).toFixed(1)} s${outage.openEnded ? "+" : ""}`
      return (
        `  ${index + 1}. ${faultClass(injected.fault)}${node} at ${(injected.startedAt / 1_000).toFixed(1)} s, ` +
        `held ${injected.healedAt - injected.startedAt} ms${note}: no sale for ${gap}`
      )
    })
    .join("\n")

/** The Markdown report and the terminal summary of a `npm run bench` result. */
import type { Spread } from "./stats.ts"
import {
  ratios,
  runViolations,
  summaryAt,
  type BenchResult,
  type DesignResult,
  type RunInvariants,
  type Summary
} from "./summary.ts"

const int = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "–")
const ms = (x: number) => (Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x.toFixed(1)) : "–")
const seconds = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "–")

/** "1,234 (1,100–1,300)": the median and, over several runs, the lowest and highest. */
const spreadOf = (s: Spread, format: (x: number) => string) =>
  s.runs > 1 ? `${format(s.median)} (${format(s.min)}–${format(s.max)})` : format(s.median)

const times = (x: number) => (Number.isFinite(x) ? `${x >= 10 ? x.toFixed(0) : x.toFixed(1)}×` : "–")
const percent = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(0)} %` : "–")

const invariantText = (report: RunInvariants | undefined) =>
  report === undefined
    ? "not checked (stores nothing)"
    : `oversold ${report.oversold}, duplicate buyers ${report.duplicateBuyers}, 2xx without a row ${report.lostConfirmed}, stock row off ${report.stockMismatch}, rows for buyers told no ${report.refusedWithRow}`

const sellOut = (summary: Summary) =>
  summary.soldOutRuns === 0
    ? "not sold out"
    : `${spreadOf(summary.sellOutSeconds, seconds)} s${summary.soldOutRuns < summary.purchasesPerSecond.runs ? ` (${summary.soldOutRuns}/${summary.purchasesPerSecond.runs} runs)` : ""}`

const verdict = (design: DesignResult, summary: Summary) =>
  !design.checked ? "–" : summary.violations === 0 ? "OK" : "🔴 **VIOLATED**"

/** The goals the issue sets for MinCommerce on one node, as measured (reported, not asserted). */
export const goals = (result: BenchResult) => {
  const ours = result.designs.find((design) => design.id === "mincommerce")
  if (ours === undefined) return []
  const at = Math.max(...result.settings.connections)
  const summary = summaryAt(ours, at)
  if (summary === undefined) return []
  const { purchasesVsRowLock, purchasesVsCeiling, requestsVsCeiling } = ratios(result, ours, at)
  const p99At256 = result.settings.connections.includes(256) ? summaryAt(ours, 256)?.p99.median : undefined
  const mark = (ok: boolean) => (ok ? "met" : "NOT met")
  return [
    `purchases/s ≥ 40× the row lock: ${times(purchasesVsRowLock)} → ${Number.isFinite(purchasesVsRowLock) ? mark(purchasesVsRowLock >= 40) : "row lock not measured"}`,
    `requests/s ≥ 70 % of the ceiling: ${percent(requestsVsCeiling)} → ${Number.isFinite(requestsVsCeiling) ? mark(requestsVsCeiling >= 0.7) : "ceiling not measured"} (purchases/s while stock lasted: ${percent(purchasesVsCeiling)} of the ceiling)`,
    `zero invariant violations: ${summary.violations} → ${mark(summary.violations === 0)}`,
    p99At256 === undefined
      ? "p99 ≤ 25 ms at 256 connections: not measured (no 256-connection phase)"
      : `p99 ≤ 25 ms at 256 connections: ${ms(p99At256)} ms → ${mark(p99At256 <= 25)}`
  ]
}

export const markdown = (result: BenchResult, chartFile: string | undefined): string => {
  const { machine, settings } = result
  const out: Array<string> = []
  out.push(`# MinCommerce bench: flash-sale designs compared`, "")
  out.push(
    `Run ${result.startedAt} → ${result.finishedAt} with \`${result.command}\`${settings.quick ? " (quick: a smoke run, figures are rough)" : ""}.`,
    ""
  )
  out.push(
    `- Machine: ${machine.cores} × ${machine.cpu}, ${machine.memoryGiB.toFixed(1)} GiB; load average (1 min) ${machine.loadAverage.before.toFixed(2)} before, ${machine.loadAverage.after.toFixed(2)} after. Server, load generator, PostgreSQL and Redis share these cores.`,
    `- Versions: Node ${machine.node}, ${machine.postgres}, Redis ${machine.redis}.`,
    `- Sale: ${int(settings.stock)} units, ${int(settings.buyers)} distinct signed-in buyers, each request a new buyer, all arriving at once on an open sale; wrk (a native load generator, the same one every bench uses; its own CPU is in the console output), ${settings.connections.join(" and ")} connections, ${settings.seconds} s per run, ${settings.runs} counted run(s) per design. Designs take turns (each round starting one design later): in each round every design's servers are started afresh, warmed up for ${settings.warmupSeconds} s on another sale (not counted), then measured on a fresh sale.`,
    `- Figures are medians over the runs, with (min–max) when there are several. Purchases/s: 201 answers from the first request to the last 201 (while stock lasted). Ratios compare medians.`,
    ""
  )
  if (chartFile !== undefined) out.push(`![throughput and p99 per design](${chartFile})`, "")
  for (const connections of settings.connections) {
    out.push(`## ${connections} connections`, "")
    out.push(
      "| design | purchases/s | requests/s | p50 ms | p99 ms | p99.9 ms | sold out after | purchases/s vs row lock | purchases/s vs ceiling | requests/s vs ceiling | invariants |",
      "| --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --- |"
    )
    const outcomeRows: Array<string> = []
    const invariantRows: Array<string> = []
    for (const design of result.designs) {
      const summary = summaryAt(design, connections)
      if (summary === undefined) {
        const why =
          design.skipped ?? (design.failed !== undefined ? `🔴 failed: ${design.failed}` : "not run")
        out.push(`| ${design.title} | ${why} | | | | | | | | | |`)
        continue
      }
      const r = ratios(result, design, connections)
      const ceiling = design.id === "ceiling"
      out.push(
        `| ${design.title} | ${ceiling ? "n/a" : spreadOf(summary.purchasesPerSecond, int)} | ${spreadOf(summary.requestsPerSecond, int)} | ` +
          `${spreadOf(summary.p50, ms)} | ${spreadOf(summary.p99, ms)} | ${spreadOf(summary.p999, ms)} | ${ceiling ? "n/a" : sellOut(summary)} | ` +
          `${ceiling ? "n/a" : times(r.purchasesVsRowLock)} | ${ceiling ? "n/a" : percent(r.purchasesVsCeiling)} | ${percent(r.requestsVsCeiling)} | ${verdict(design, summary)} |`
      )
      outcomeRows.push(
        `| ${design.title} | ${Object.entries(summary.outcomes)
          .map(([code, count]) => `${code}: ${int(count)}`)
          .join(", ")} |`
      )
      if (design.checked) {
        const worst = summary.worst
        invariantRows.push(
          `| ${design.title} | ${worst === undefined ? "–" : int(worst.committed)} | ${worst?.oversold ?? "–"} | ${worst?.duplicateBuyers ?? "–"} | ${worst?.lostConfirmed ?? "–"} | ${worst?.stockMismatch ?? "–"} | ${worst?.refusedWithRow ?? "–"} | ${verdict(design, summary)} |`
        )
      }
    }
    out.push(
      "",
      "Outcomes by HTTP status (median per run; `errors`/`timeouts` are the load generator's):",
      ""
    )
    out.push("| design | outcomes |", "| --- | --- |", ...outcomeRows, "")
    out.push("Invariants read back from PostgreSQL after each run (worst run shown):", "")
    out.push(
      "| design | committed orders | oversold units | duplicate buyers | 2xx without a row | stock of record off | rows for buyers told no | verdict |",
      "| --- | --: | --: | --: | --: | --: | --: | --- |",
      ...invariantRows,
      ""
    )
  }
  const goalLines = goals(result)
  if (goalLines.length > 0) {
    out.push(
      `## Goals for MinCommerce on one node (reported, not asserted)`,
      "",
      ...goalLines.map((g) => `- ${g}`),
      ""
    )
  }
  out.push(`## What each design does`, "")
  for (const design of result.designs) {
    out.push(
      `- **${design.title}**: ${design.description}${design.skipped !== undefined ? ` *(${design.skipped})*` : ""}`
    )
  }
  out.push(
    "",
    `All baselines verify the HS256 bearer token with MinCommerce's own \`Tokens\` (\`src/http/Tokens.ts\`), check the sale id, refuse bodies over 16 KiB, check the sale's window (its row cached for at most a second), use a \`pg\` pool of ${settings.poolSize} connections, answer with MinCommerce's status codes and bodies, and write the same \`orders\` rows; none sleeps or retries. The invariant check is the one the tests use (\`checkInvariants\` in \`src/storage/Audit.ts\`): every 2xx answer's order id must be a row for that buyer, no buyer twice, no more orders than units, and the stock of record (PostgreSQL's stock row; Redis's counter for the Redis design) equal to units minus orders; the bench adds that no buyer told no (a 4xx) has an order.`,
    ""
  )
  return out.join("\n")
}

const red = (text: string) => (process.stdout.isTTY === true ? `\u001b[31m${text}\u001b[0m` : text)

/** The terminal's closing summary: one line per design and connection count, red when broken. */
export const consoleSummary = (result: BenchResult): string => {
  const lines: Array<string> = []
  for (const connections of result.settings.connections) {
    lines.push(`\n${connections} connections (median of ${result.settings.runs} run(s))`)
    for (const design of result.designs) {
      const summary = summaryAt(design, connections)
      if (summary === undefined) {
        lines.push(
          `  ${design.title.padEnd(26)} ${design.skipped ?? red(`failed: ${design.failed ?? "not run"}`)}`
        )
        continue
      }
      const r = ratios(result, design, connections)
      const broken = design.checked && summary.violations > 0
      const ceiling = design.id === "ceiling"
      const line =
        `  ${design.title.padEnd(26)} ${(ceiling ? "n/a" : int(summary.purchasesPerSecond.median)).padStart(7)} purchases/s ` +
        `${int(summary.requestsPerSecond.median).padStart(7)} req/s  p50 ${ms(summary.p50.median)} p99 ${ms(summary.p99.median)} ` +
        `p99.9 ${ms(summary.p999.median)} ms` +
        (ceiling
          ? ""
          : `  ${times(r.purchasesVsRowLock)} row lock, ${percent(r.requestsVsCeiling)} of ceiling  `) +
        (design.checked ? invariantText(summary.worst) : "")
      lines.push(broken ? red(`${line}  INVARIANT VIOLATED`) : line)
    }
  }
  const goalLines = goals(result)
  if (goalLines.length > 0) lines.push("\nGoals (MinCommerce, 1 node):", ...goalLines.map((g) => `  ${g}`))
  return lines.join("\n")
}

/** Designs of ours that broke an invariant or failed to run: CI fails on any. */
export const oursBroken = (result: BenchResult): Array<string> =>
  result.designs.flatMap((design) => {
    if (!design.ours) return []
    if (design.failed !== undefined) return [`${design.title}: failed: ${design.failed}`]
    const broken = design.byConnections.flatMap((entry) =>
      entry.runs.filter((run) => run.invariants !== undefined && runViolations(run.invariants) > 0)
    )
    return broken.length > 0 ? [`${design.title}: ${invariantText(broken[0]!.invariants)}`] : []
  })

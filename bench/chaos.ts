import { writeFileSync } from "node:fs"
import { parseArgs } from "node:util"
import { checkout } from "../tests/chaos/Checkout.ts"
import { runChaos, stopActiveRuns, type RunResult } from "../tests/chaos/Run.ts"
import { faultKinds, type FaultKind } from "../tests/chaos/Schedule.ts"
import { formatFaults, formatRun, formatTable, formatViolations } from "../tests/chaos/Summary.ts"

/**
 * The randomized fault suite (issue 12): `npm run chaos -- --seed 123` replays one seed,
 * `npm run chaos -- --seeds 20` runs seeds 1..20 (or from --from) and prints a table per fault
 * class. Each run starts its own PostgreSQL, Redis and three nodes, and leaves the machine's
 * shared ones alone.
 */

const { values } = parseArgs({
  options: {
    seed: { type: "string" },
    seeds: { type: "string" },
    from: { type: "string", default: "1" },
    "fault-seconds": { type: "string", default: "40" },
    "lease-ttl-ms": { type: "string", default: "2000" },
    rate: { type: "string", default: "40" },
    kinds: { type: "string" },
    keep: { type: "boolean", default: false },
    // Run the nodes from this commit instead of the working tree (which others may be editing).
    rev: { type: "string" },
    quiet: { type: "boolean", default: false },
    // Every run's faults, unavailability and violations, for a report.
    json: { type: "string" }
  }
})

const seeds =
  values.seed !== undefined
    ? [Number(values.seed)]
    : Array.from({ length: Number(values.seeds ?? 1) }, (_, i) => Number(values.from) + i)
const kinds = values.kinds?.split(",").map((k) => k.trim()) as Array<FaultKind> | undefined
for (const kind of kinds ?? [])
  if (!faultKinds.includes(kind))
    throw new Error(`unknown fault kind ${kind}; one of ${faultKinds.join(", ")}`)

const source = values.rev === undefined ? undefined : checkout(values.rev)
console.log(`nodes run from ${source === undefined ? "the working tree" : `commit ${source.commit}`}`)

for (const name of ["SIGINT", "SIGTERM"] as const)
  process.once(name, () => {
    console.log(`\n${name}: stopping the run's nodes, PostgreSQL and Redis`)
    void stopActiveRuns().finally(() => {
      source?.remove()
      process.exit(130)
    })
  })

const results: Array<RunResult> = []
const began = Date.now()
for (const [i, seed] of seeds.entries()) {
  const stamp = () =>
    `[${((Date.now() - began) / 1_000).toFixed(0).padStart(4)} s, run ${i + 1}/${seeds.length}]`
  try {
    const result = await runChaos({
      seed,
      faultMillis: Number(values["fault-seconds"]) * 1_000,
      leaseTtlMillis: Number(values["lease-ttl-ms"]),
      arrivalsPerSecond: Number(values.rate),
      keep: values.keep,
      ...(source === undefined ? {} : { root: source.root }),
      ...(kinds === undefined ? {} : { kinds }),
      onEvent: (line) => {
        if (!values.quiet) console.log(`${stamp()} ${line}`)
      }
    })
    results.push(result)
    console.log(`${stamp()} ${formatRun(result)}\n${formatFaults(result)}`)
    if (result.check.violations.length > 0) console.log(formatViolations(result))
    if (result.folder !== undefined) console.log(`  node and PostgreSQL logs, history: ${result.folder}`)
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? `\n${error.cause.stack}` : ""
    console.error(`${stamp()} ${error instanceof Error ? error.message : String(error)}${cause}`)
    process.exitCode = 2
  }
}

source?.remove()
console.log(`\n${results.length} runs, lease TTL ${values["lease-ttl-ms"]} ms\n`)
console.log(formatTable(results))
if (values.json !== undefined)
  writeFileSync(
    values.json,
    JSON.stringify(
      results.map((r) => ({
        seed: r.plan.seed,
        millis: r.millis,
        answers: Object.fromEntries(r.history.codes()),
        committed: r.check.committed,
        stock: r.check.stock,
        faults: r.injected.map((injected, i) => ({ ...injected, unavailability: r.check.unavailability[i] })),
        violations: r.check.violations,
        folder: r.folder
      })),
      null,
      1
    )
  )
const broken = results.filter((r) => r.check.violations.length > 0)
if (broken.length > 0) {
  console.log(`\nseeds with violations: ${broken.map((r) => r.plan.seed).join(", ")}`)
  process.exitCode = 1
}

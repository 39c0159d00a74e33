import fc from "fast-check"

/**
 * What a chaos run does, drawn from one seed: the faults in order (each followed by a quiet
 * spell to recover) and how each buyer behaves. The same seed draws the same plan, so a failing
 * run is replayed with `npm run chaos -- --seed <n>`; timings inside a run still vary with the
 * machine, which is why a failure is reported with the fault that preceded it.
 */

export const faultKinds = [
  "node-kill",
  "node-pause",
  "pg-pause",
  "pg-stop",
  "pg-delay",
  "pg-cut",
  "pg-restart",
  "pg-kill",
  "redis-kill",
  "redis-flush",
  "redis-pause",
  "rolling-sigterm"
] as const

export type FaultKind = (typeof faultKinds)[number]

export interface Fault {
  readonly kind: FaultKind
  /** Which node a node fault hits: the sale's owner at injection time, or another node. */
  readonly target: "owner" | "other"
  /** How long the fault holds (a pause, the time down before a restart, a delay's span). */
  readonly holdMillis: number
  /** pg-delay: added to every chunk through the proxy. */
  readonly delayMillis: number
  /** Recovery time left before the next fault. */
  readonly quietMillis: number
}

export interface BuyerPlan {
  /** Requests sent at once to different nodes (a double click, two tabs, a retrying client). */
  readonly copies: number
  /** After an ok, one more purchase later: the repeat must name the same order. */
  readonly repeatAfterOk: boolean
}

export interface Plan {
  readonly seed: number
  readonly faults: ReadonlyArray<Fault>
  readonly buyers: ReadonlyArray<BuyerPlan>
}

/** A fault's class in the results table: node faults are told apart by their target. */
export const faultClass = (fault: Pick<Fault, "kind" | "target">): string =>
  fault.kind === "node-kill" || fault.kind === "node-pause" ? `${fault.kind} (${fault.target})` : fault.kind

const holdFor: Record<FaultKind, readonly [number, number]> = {
  "node-kill": [0, 4_000],
  // Around the lease TTL and the forward timeout, where finding 2 lives.
  "node-pause": [1_000, 7_000],
  "pg-pause": [500, 5_000],
  "pg-stop": [500, 4_000],
  "pg-delay": [2_000, 5_000],
  // How long new connections are refused after the cut.
  "pg-cut": [0, 2_000],
  "pg-restart": [0, 0],
  "pg-kill": [0, 0],
  "redis-kill": [0, 4_000],
  "redis-flush": [0, 0],
  "redis-pause": [1_000, 5_000],
  "rolling-sigterm": [0, 0]
}

/** Node faults are drawn twice as often: owner changes are where the findings were. */
const weight = (kind: FaultKind) => (kind === "node-kill" || kind === "node-pause" ? 2 : 1)

const faultArbitrary = (kinds: ReadonlyArray<FaultKind>): fc.Arbitrary<Fault> =>
  fc.oneof(...kinds.map((kind) => ({ arbitrary: fc.constant(kind), weight: weight(kind) }))).chain((kind) =>
    fc.record({
      kind: fc.constant(kind),
      target: fc.constantFrom<"owner" | "other">("owner", "other"),
      holdMillis: fc
        .integer({ min: holdFor[kind][0], max: holdFor[kind][1] })
        .map((ms) => Math.round(ms / 100) * 100),
      delayMillis: fc.integer({ min: 20, max: 200 }),
      quietMillis: fc.integer({ min: 2_500, max: 4_500 }).map((ms) => Math.round(ms / 100) * 100)
    })
  )

const buyerArbitrary: fc.Arbitrary<BuyerPlan> = fc.record({
  copies: fc.oneof(
    { arbitrary: fc.constant(1), weight: 3 },
    { arbitrary: fc.integer({ min: 2, max: 3 }), weight: 1 }
  ),
  repeatAfterOk: fc.oneof(
    { arbitrary: fc.constant(false), weight: 9 },
    { arbitrary: fc.constant(true), weight: 1 }
  )
})

/** A fault's expected length in the schedule, a rolling restart counting three node starts. */
export const expectedMillis = (fault: Fault) =>
  fault.holdMillis +
  fault.quietMillis +
  (fault.kind === "rolling-sigterm" ? 9_000 : fault.kind.startsWith("pg-") ? 500 : 0)

export const drawPlan = (options: {
  readonly seed: number
  /** The faults' share of the run: faults are drawn until their expected length fills it. */
  readonly faultMillis: number
  readonly buyers: number
  readonly kinds?: ReadonlyArray<FaultKind>
}): Plan => {
  const kinds = options.kinds ?? faultKinds
  // Enough candidates to fill any budget; the first ones that fit are kept.
  // Unbiased: fast-check leans towards small values and first choices to find bugs fast in
  // shrinkable tests; a fault schedule should cover every kind and length evenly.
  const [candidates, buyers] = fc.sample(
    fc.noBias(
      fc.tuple(
        fc.array(faultArbitrary(kinds), { minLength: 40, maxLength: 40 }),
        fc.array(buyerArbitrary, { minLength: options.buyers, maxLength: options.buyers })
      )
    ),
    { seed: options.seed, numRuns: 1 }
  )[0]!
  const faults: Array<Fault> = []
  let used = 0
  for (const fault of candidates) {
    if (used + expectedMillis(fault) > options.faultMillis) {
      if (faults.length > 0) break
      continue
    }
    faults.push(fault)
    used += expectedMillis(fault)
  }
  return { seed: options.seed, faults, buyers }
}

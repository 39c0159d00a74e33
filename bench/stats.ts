/** Summary statistics for benchmark samples. */

/** The p-th percentile (0..100) of samples, by nearest rank; NaN when there are none. */
export const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  if (samples.length === 0) return Number.NaN
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

/** The middle sample, or the mean of the two middle ones for an even count; NaN when none. */
export const median = (samples: ReadonlyArray<number>): number => {
  if (samples.length === 0) return Number.NaN
  const sorted = [...samples].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

export const mean = (samples: ReadonlyArray<number>): number =>
  samples.length === 0 ? Number.NaN : samples.reduce((sum, x) => sum + x, 0) / samples.length

/** Several runs of one figure: the median, and the lowest and highest run. */
export interface Spread {
  readonly median: number
  readonly min: number
  readonly max: number
  readonly runs: number
}

export const spread = (samples: ReadonlyArray<number>): Spread => ({
  median: median(samples),
  min: samples.length === 0 ? Number.NaN : Math.min(...samples),
  max: samples.length === 0 ? Number.NaN : Math.max(...samples),
  runs: samples.length
})

/** `a / b`, NaN when either is missing or b is zero. */
export const ratio = (a: number, b: number): number =>
  Number.isFinite(a) && Number.isFinite(b) && b !== 0 ? a / b : Number.NaN

export const formatRate = (perSecond: number): string => Math.round(perSecond).toLocaleString("en-US")

export const formatMillis = (millis: number): string =>
  Number.isNaN(millis) ? "-" : `${millis.toFixed(2)} ms`

/** Summary statistics for benchmark samples. */

/** The p-th percentile (0..100) of samples, by nearest rank; NaN when there are none. */
export const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  if (samples.length === 0) return Number.NaN
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

export const median = (samples: ReadonlyArray<number>): number => percentile(samples, 50)

export const mean = (samples: ReadonlyArray<number>): number =>
  samples.length === 0 ? Number.NaN : samples.reduce((sum, x) => sum + x, 0) / samples.length

export const formatRate = (perSecond: number): string => Math.round(perSecond).toLocaleString("en-US")

export const formatMillis = (millis: number): string =>
  Number.isNaN(millis) ? "-" : `${millis.toFixed(2)} ms`

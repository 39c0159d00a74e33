/**
 * Reads the group-commit latency histogram (`mincommerce_commit_seconds`) from a node's
 * Prometheus text: its running sum and count, from which two readings give the mean latency
 * of the commits between them.
 */
export const commitTotals = (text: string): { sum: number; count: number } | undefined => {
  let sum: number | undefined
  let count: number | undefined
  for (const line of text.split("\n")) {
    const match = /^mincommerce_commit_seconds_(sum|count)(?:\{[^}]*\})?\s+([0-9.eE+-]+)/.exec(line)
    if (match === null) continue
    const value = Number(match[2])
    if (match[1] === "sum") sum = (sum ?? 0) + value
    else count = (count ?? 0) + value
  }
  return sum === undefined || count === undefined ? undefined : { sum, count }
}

/** Mean commit latency in milliseconds between two readings; null when nothing was committed. */
export const meanCommitMillis = (
  before: { sum: number; count: number } | undefined,
  after: { sum: number; count: number } | undefined
): number | null => {
  if (before === undefined || after === undefined) return null
  const commits = after.count - before.count
  return commits > 0 ? ((after.sum - before.sum) / commits) * 1_000 : null
}

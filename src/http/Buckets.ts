import { rateLimited, type RateLimited } from "./ApiErrors.ts"

/** Keys held before the first sweep of full buckets. */
const sweepFrom = 100_000

/**
 * Token buckets in memory, one per key: `capacity` tokens, refilled evenly over `windowMillis`.
 * A capacity of 0 turns the buckets off. Synchronous, so the purchase fast route takes one
 * without a fiber. Full buckets are dropped when the map grows (a full bucket is the same as
 * none), and the next sweep waits until the map has doubled from what the last one left, so a
 * stream of new keys costs bounded memory and no request pays for a sweep that frees nothing.
 */
export class Buckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()
  private readonly capacity: number
  private readonly perMilli: number
  private sweepAt = sweepFrom

  constructor(capacity: number, windowMillis: number) {
    this.capacity = capacity
    this.perMilli = capacity / Math.max(1, windowMillis)
  }

  /** Keys held now: what a sweep has not dropped yet. */
  get size(): number {
    return this.buckets.size
  }

  private level(key: string, now: number): number {
    const bucket = this.buckets.get(key)
    return bucket === undefined
      ? this.capacity
      : Math.min(this.capacity, bucket.tokens + (now - bucket.at) * this.perMilli)
  }

  /** Seconds until a token is there, or 0 when one is. */
  wait(key: string, now: number): number {
    if (this.capacity <= 0) return 0
    const level = this.level(key, now)
    return level >= 1 ? 0 : Math.max(1, Math.ceil((1 - level) / this.perMilli / 1_000))
  }

  /** Takes a token (the level may go to zero, never below). */
  take(key: string, now: number): void {
    if (this.capacity <= 0) return
    if (this.buckets.size >= this.sweepAt) this.sweep(now)
    this.buckets.set(key, { tokens: Math.max(0, this.level(key, now) - 1), at: now })
  }

  private sweep(now: number) {
    for (const key of this.buckets.keys()) if (this.level(key, now) >= this.capacity) this.buckets.delete(key)
    this.sweepAt = Math.max(sweepFrom, this.buckets.size * 2)
  }
}

/**
 * One request against several buckets: a token from each when every one has one, else the
 * 429 for the longest wait, taking none.
 */
export const admit = (pairs: ReadonlyArray<readonly [Buckets, string]>): RateLimited | undefined => {
  const now = Date.now()
  let wait = 0
  for (const [buckets, key] of pairs) wait = Math.max(wait, buckets.wait(key, now))
  if (wait > 0) return rateLimited(wait)
  for (const [buckets, key] of pairs) buckets.take(key, now)
  return undefined
}

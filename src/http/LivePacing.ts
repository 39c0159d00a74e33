/**
 * What paces a node's live events. Every event and heartbeat is one socket write per watcher,
 * and on a node holding tens of thousands of watchers those writes, not the purchases, would
 * take the CPU: so a node's event writes draw on one budget, and its heartbeats are spread
 * over their period instead of leaving all at once.
 */

/** Units a second, sold across a node's watched sales, at which its write budget is at its floor. */
export const sellingFast = 2_000
/** What is left of the write budget while the node's watched sales sell that fast or faster. */
export const busyShare = 0.2

/**
 * A token bucket of socket writes, one for the node's live events: it refills at
 * `perSecond`, and holds at most a second's worth or one whole fan-out, whichever is larger,
 * so a change after a quiet spell goes to every watcher at once while a stream of changes
 * to a large audience is sent as often as the budget allows (each event carries the whole
 * state, so a watcher skips nothing it needs).
 *
 * Purchases come first: the refill shrinks in step with how fast the node's watched sales are
 * selling, to `busyShare` of `perSecond` from `sellingFast` units a second, so in a flood the
 * writes give the purchases back most of the CPU they would take (the stream of changes is
 * what the writes carry, so a quiet sale's watchers lose nothing). The tokens already held are
 * not taken back.
 */
export class WriteBudget {
  private tokens: number
  private at: number
  readonly perSecond: number
  private readonly now: () => number
  private readonly busy: () => number

  /**
   * `busy` says how fast the node's watched sales sold over the last second, from 0 (not at
   * all) to 1 (`sellingFast` or faster); by default the budget never shrinks.
   */
  constructor(perSecond: number, now: () => number = Date.now, busy: () => number = () => 0) {
    this.perSecond = perSecond
    this.now = now
    this.busy = busy
    // Full, whatever the first fan-out asks.
    this.tokens = Number.POSITIVE_INFINITY
    this.at = now()
  }

  /** Writes a second the budget refills at now: `perSecond`, less while sales sell fast. */
  rate(): number {
    const busy = Math.min(1, Math.max(0, this.busy()))
    return this.perSecond * (busyShare + (1 - busy) * (1 - busyShare))
  }

  private refill(writes: number, rate: number): void {
    const now = this.now()
    const capacity = Math.max(this.perSecond, writes)
    this.tokens = Math.min(capacity, this.tokens + ((now - this.at) * rate) / 1_000)
    this.at = now
  }

  /** Milliseconds until `writes` can be afforded at the current rate; 0 when they can be now. */
  wait(writes: number): number {
    const rate = this.rate()
    this.refill(writes, rate)
    return this.tokens >= writes ? 0 : Math.ceil(((writes - this.tokens) * 1_000) / rate)
  }

  /** Takes `writes` from the bucket; a change of status is sent whatever the budget, and may leave it owing. */
  spend(writes: number): void {
    this.refill(writes, this.rate())
    this.tokens -= writes
  }
}

/**
 * Heartbeats spread over their period: each watcher sits in one of `slots` sets (the
 * smallest when it joins), and one set is written per tick, so each watcher hears one every
 * `slots` ticks and a tick writes to a `slots`-th of the node's watchers.
 */
export class HeartbeatRing<W> {
  private readonly slots: ReadonlyArray<Set<W>>
  private tick = 0

  constructor(slots: number) {
    this.slots = Array.from({ length: Math.max(1, slots) }, () => new Set<W>())
  }

  /** Adds the watcher to the smallest slot; returns its removal. */
  add(watcher: W): () => void {
    const slot = this.slots.reduce((smallest, candidate) =>
      candidate.size < smallest.size ? candidate : smallest
    )
    slot.add(watcher)
    return () => void slot.delete(watcher)
  }

  /** The watchers due at this tick; the next call gives the next slot's. */
  due(): ReadonlySet<W> {
    const slot = this.slots[this.tick] ?? new Set<W>()
    this.tick = (this.tick + 1) % this.slots.length
    return slot
  }
}

/**
 * One audience's fan-outs: each writes its bytes to every watcher, `sliceSize` watchers per
 * turn of the event loop, so other work (purchases) runs between slices rather than behind
 * tens of thousands of writes. A newer fan-out stops an older one's remaining slices (it
 * reaches every watcher itself), so no watcher hears an older state after a newer one; a
 * watcher gone from the audience hears nothing more.
 */
export class FanOut<W extends { readonly write: (bytes: Uint8Array) => void }> {
  private round = 0
  private readonly sliceSize: number

  constructor(sliceSize: number) {
    this.sliceSize = sliceSize
  }

  write(audience: ReadonlySet<W>, bytes: Uint8Array): void {
    const round = ++this.round
    const watchers = [...audience]
    let next = 0
    const slice = () => {
      if (round !== this.round) return
      const end = Math.min(watchers.length, next + this.sliceSize)
      for (const watcher of watchers.slice(next, end)) if (audience.has(watcher)) watcher.write(bytes)
      next = end
      if (next < watchers.length) setImmediate(slice)
    }
    slice()
  }

  /** Stops whatever is still being written. */
  stop(): void {
    this.round++
  }
}

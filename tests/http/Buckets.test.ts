import { assert, describe, it } from "@effect/vitest"
import { Buckets } from "../../src/http/Buckets.ts"

describe("rate-limit buckets", () => {
  it("hold `capacity` tokens per key, refilled evenly over the window, and say how long to wait", () => {
    const buckets = new Buckets(2, 10_000)
    assert.strictEqual(buckets.wait("ann", 0), 0)
    buckets.take("ann", 0)
    buckets.take("ann", 0)
    // Empty: one token comes back in 5 s.
    assert.strictEqual(buckets.wait("ann", 0), 5)
    assert.strictEqual(buckets.wait("ann", 4_000), 1)
    assert.strictEqual(buckets.wait("ann", 5_000), 0)
    // Another key has its own bucket.
    assert.strictEqual(buckets.wait("bob", 0), 0)
    // A capacity of 0 turns them off and keeps nothing.
    const off = new Buckets(0, 10_000)
    for (let i = 0; i < 10; i++) off.take("ann", 0)
    assert.strictEqual(off.wait("ann", 0), 0)
    assert.strictEqual(off.size, 0)
  })

  it("drop full buckets as new keys stream in, and sweep again only once the map has doubled", () => {
    // One token a minute: a key taken at 0 is full again at 60 s.
    const buckets = new Buckets(1, 60_000)
    for (let i = 0; i < 100_000; i++) buckets.take(`early-${i}`, 0)
    assert.strictEqual(buckets.size, 100_000)
    // The next new key sweeps: at 10 s none is full, so nothing goes, and the next sweep waits
    // for 200,000 keys instead of running on every take.
    buckets.take("first-late", 10_000)
    assert.strictEqual(buckets.size, 100_001)
    for (let i = 0; i < 99_998; i++) buckets.take(`late-${i}`, 10_000)
    assert.strictEqual(buckets.size, 199_999)
    // Still empty for the keys taken: a sweep does not forget a bucket that is not full.
    assert.strictEqual(buckets.wait("early-0", 10_000), 50)
    // At 61 s the early keys are full again: the sweep at 200,000 lets them go.
    buckets.take("later", 61_000)
    buckets.take("last", 61_000)
    assert.strictEqual(buckets.size, 100_001)
    assert.strictEqual(buckets.wait("late-0", 61_000), 9)
    assert.strictEqual(buckets.wait("early-0", 61_000), 0)
  })
})

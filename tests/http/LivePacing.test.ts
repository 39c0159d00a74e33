import { assert, describe, it } from "@effect/vitest"
import { busyShare, FanOut, HeartbeatRing, WriteBudget } from "../../src/http/LivePacing.ts"

describe("live event pacing", () => {
  it("the write budget sends a fan-out after a quiet spell at once, and a stream as it refills", () => {
    let now = 0
    const budget = new WriteBudget(1_000, () => now)
    // A quiet node holds a whole fan-out, even one larger than a second's worth.
    assert.strictEqual(budget.wait(3_000), 0)
    budget.spend(3_000)
    // Then 3,000 more writes wait three seconds of refill.
    assert.strictEqual(budget.wait(3_000), 3_000)
    now = 1_500
    assert.strictEqual(budget.wait(3_000), 1_500)
    now = 3_000
    assert.strictEqual(budget.wait(3_000), 0)
    // Small audiences share a second's worth.
    budget.spend(3_000)
    now = 4_000
    assert.strictEqual(budget.wait(500), 0)
    budget.spend(500)
    assert.strictEqual(budget.wait(500), 0)
    budget.spend(500)
    assert.strictEqual(budget.wait(500), 500)
    // A change of status may leave it owing, and the next stream waits for that too.
    budget.spend(2_000)
    assert.strictEqual(budget.wait(500), 2_500)
    // It never holds more than the larger of a second's worth and the fan-out asked.
    now = 100_000
    assert.strictEqual(budget.wait(1_000), 0)
    budget.spend(1_000)
    assert.strictEqual(budget.wait(1), 1)
  })

  it("the write budget gives way to purchases: it refills slower while the watched sales sell fast", () => {
    let now = 0
    let busy = 0
    const budget = new WriteBudget(
      1_000,
      () => now,
      () => busy
    )
    budget.spend(1_000)
    // Nothing selling: the whole rate, a second for 1,000 writes.
    assert.strictEqual(budget.rate(), 1_000)
    assert.strictEqual(budget.wait(1_000), 1_000)
    // Selling at half of sellingFast: the refill shrinks in step; from sellingFast on, to busyShare.
    busy = 0.5
    assert.closeTo(budget.rate(), 1_000 * (1 - 0.5 * (1 - busyShare)), 1e-9)
    busy = 3
    assert.closeTo(budget.rate(), 1_000 * busyShare, 1e-9)
    assert.strictEqual(budget.wait(1_000), Math.ceil(1_000 / busyShare))
    // What refilled during a flood is that share of the time.
    now = 1_000
    assert.strictEqual(budget.wait(1_000), Math.ceil((1_000 - 1_000 * busyShare) / busyShare))
    // Quiet again: the rest comes at the whole rate.
    busy = 0
    assert.strictEqual(budget.wait(1_000), Math.ceil(1_000 - 1_000 * busyShare))
  })

  it("each watcher hears one heartbeat per period, and a tick writes to a slice", () => {
    const ring = new HeartbeatRing<number>(5)
    const leave = Array.from({ length: 23 }, (_, watcher) => ring.add(watcher))
    const heard = new Map<number, number>()
    for (let tick = 0; tick < 10; tick++) {
      const due = [...ring.due()]
      assert.isAtMost(due.length, Math.ceil(23 / 5))
      for (const watcher of due) heard.set(watcher, (heard.get(watcher) ?? 0) + 1)
    }
    assert.strictEqual(heard.size, 23)
    for (const count of heard.values()) assert.strictEqual(count, 2)
    // A watcher that left hears nothing more; one that joins fills the emptiest slot.
    leave[0]!()
    leave[5]!()
    ring.add(99)
    const after = new Set<number>()
    for (let tick = 0; tick < 5; tick++) for (const watcher of ring.due()) after.add(watcher)
    assert.isFalse(after.has(0))
    assert.isTrue(after.has(99))
    assert.strictEqual(after.size, 22)
  })

  it("a fan-out goes a slice per turn; a newer one stops the older, so nobody hears an older state after a newer", async () => {
    const heard = Array.from({ length: 1_200 }, () => [] as Array<string>)
    const watchers = new Set(
      heard.map((log) => ({ write: (bytes: Uint8Array) => void log.push(Buffer.from(bytes).toString()) }))
    )
    const fanOut = new FanOut<{ readonly write: (bytes: Uint8Array) => void }>(500)
    const turn = () => new Promise((resolve) => setImmediate(resolve))
    fanOut.write(watchers, Buffer.from("a"))
    // The first slice is written at once, the rest on later turns.
    assert.strictEqual(heard.filter((log) => log.length > 0).length, 500)
    await turn()
    assert.strictEqual(heard.filter((log) => log.length > 0).length, 1_000)
    // A newer state before the first reached everyone, and a watcher that leaves meanwhile.
    const gone = [...watchers][1_100]!
    watchers.delete(gone)
    fanOut.write(watchers, Buffer.from("b"))
    for (let i = 0; i < 5; i++) await turn()
    heard.forEach((log, i) => {
      if (i === 1_100) return assert.deepStrictEqual(log, [])
      assert.deepStrictEqual(log, i < 1_000 ? ["a", "b"] : ["b"])
    })
    // Stopped: what was still to be written is not.
    fanOut.write(watchers, Buffer.from("c"))
    fanOut.stop()
    for (let i = 0; i < 5; i++) await turn()
    assert.strictEqual(heard.filter((log) => log.at(-1) === "c").length, 500)
  })
})

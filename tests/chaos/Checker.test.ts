import { describe, expect, it } from "@effect/vitest"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import type { OrderLifecycle, OrderStatus } from "../../src/storage/Audit.ts"
import { check, unavailability } from "./Checker.ts"
import type { Injected } from "./Faults.ts"
import { History, type Operation } from "./History.ts"
import { drawPlan } from "./Schedule.ts"

const user = (n: number) => `00000000-0000-0000-0000-${String(n).padStart(12, "0")}` as UserId
const order = (n: number) => `10000000-0000-0000-0000-${String(n).padStart(12, "0")}` as OrderId
const op = (o: Partial<Operation> & Pick<Operation, "buyer" | "outcome">): Operation => ({
  userId: user(o.buyer),
  node: 0,
  sentAt: 0,
  answeredAt: 10,
  status: o.outcome === "ok" ? 201 : o.outcome === "failed" ? 409 : 503,
  ...o
})
const fault = (startedAt: number, healedAt: number): Injected => ({
  fault: { kind: "pg-pause", target: "other", holdMillis: 0, delayMillis: 0, quietMillis: 0 },
  startedAt,
  healedAt
})
const record = (stock: number, orders: Array<[number, number]>) => ({
  saleId: "s" as SaleId,
  stock,
  available: stock - orders.length,
  orders: new Map(orders.map(([o, u]) => [order(o), user(u)]))
})
const run = (ops: Array<Operation>, rows: Array<[number, number]>, stock = 10) => {
  const history = new History()
  for (const o of ops) history.add(o)
  return check({
    record: record(stock, rows),
    history,
    faults: [fault(0, 5)],
    settledAt: 1_000,
    loadEnd: 2_000,
    crashes: []
  })
}

describe("the chaos checker", () => {
  it("passes a history PostgreSQL agrees with, unknown answers with or without rows", () => {
    const result = run(
      [
        op({ buyer: 1, outcome: "ok", orderId: order(1) }),
        op({ buyer: 1, outcome: "ok", orderId: order(1), status: 200, repeat: true }),
        op({ buyer: 2, outcome: "unknown" }),
        op({ buyer: 3, outcome: "unknown" }),
        op({ buyer: 4, outcome: "failed", code: "sold_out" })
      ],
      [
        [1, 1],
        [2, 2]
      ]
    )
    expect(result.violations).toEqual([])
    expect(result.unconfirmedRows).toBe(1)
  })

  it("names a lost ok, two orders told to one buyer, a refused buyer's row, a duplicate and an oversell", () => {
    const result = run(
      [
        op({ buyer: 1, outcome: "ok", orderId: order(9), status: 200, repeat: true, sentAt: 3 }),
        op({ buyer: 2, outcome: "ok", orderId: order(2) }),
        op({ buyer: 2, outcome: "ok", orderId: order(3) }),
        op({ buyer: 4, outcome: "failed", code: "sold_out" })
      ],
      [
        [2, 2],
        [3, 2],
        [4, 4]
      ],
      2
    )
    const found = result.violations.map((v) => v.invariant).sort()
    expect(found).toEqual(["I1", "I2", "I3", "agree", "refused-row"])
    expect(result.violations.find((v) => v.invariant === "I3")?.fault).toBe(0)
  })

  it("holds a hold sale's rows in every status against the answers", () => {
    const deadline = 1_000_000
    const lifecycle = (
      u: number,
      status: OrderStatus,
      parts: Partial<OrderLifecycle> = {}
    ): OrderLifecycle => ({
      userId: user(u),
      status,
      payBy: deadline,
      paidAt: null,
      paymentIntent: null,
      payments: [],
      ...parts
    })
    const checkHold = (ops: Array<Operation>, rows: Array<[number, OrderLifecycle]>) => {
      const history = new History()
      for (const o of ops) history.add(o)
      const live = rows.filter(([, r]) => r.status === "reserved" || r.status === "paid")
      return check({
        record: {
          saleId: "s" as SaleId,
          stock: 10,
          available: 10 - live.length,
          orders: new Map(live.map(([o, r]) => [order(o), r.userId])),
          lifecycle: new Map(rows.map(([o, r]) => [order(o), r]))
        },
        history,
        faults: [fault(0, 5)],
        settledAt: 1_000,
        loadEnd: 2_000,
        crashes: []
      })
    }
    // A buyer told "reserved" whose hold expired since, one who paid, one who cancelled.
    const clean = checkHold(
      [
        op({ buyer: 1, outcome: "ok", orderId: order(1) }),
        op({ buyer: 2, outcome: "ok", orderId: order(2) }),
        op({ buyer: 3, outcome: "ok", orderId: order(3) })
      ],
      [
        [1, lifecycle(1, "expired")],
        [
          2,
          lifecycle(2, "paid", {
            paidAt: deadline - 1,
            paymentIntent: "pi_2",
            payments: [{ intentId: "pi_2", refunded: false }]
          })
        ],
        [3, lifecycle(3, "cancelled")]
      ]
    )
    expect(clean.violations).toEqual([])
    expect(clean.committed).toBe(1)

    const broken = checkHold(
      [
        op({ buyer: 1, outcome: "ok", orderId: order(1) }),
        op({ buyer: 2, outcome: "ok", orderId: order(2) }),
        op({ buyer: 3, outcome: "ok", orderId: order(3) }),
        op({ buyer: 4, outcome: "failed", code: "sold_out" })
      ],
      [
        [
          1,
          lifecycle(1, "expired", { paidAt: deadline - 1, payments: [{ intentId: "pi_1", refunded: true }] })
        ],
        [2, lifecycle(2, "paid", { paidAt: deadline + 1, paymentIntent: "pi_2" })],
        [3, lifecycle(3, "cancelled", { payments: [{ intentId: "pi_3", refunded: false }] })],
        [4, lifecycle(4, "expired")]
      ]
    )
    expect(broken.violations.map((v) => v.invariant).sort()).toEqual([
      "paid-lapsed",
      "paid-late",
      "refused-row",
      "unrefunded"
    ])
  })

  it("counts a sold out after recovery while units remain as I5", () => {
    const result = run([op({ buyer: 1, outcome: "failed", code: "sold_out", sentAt: 1_500 })], [], 3)
    expect(result.violations.map((v) => v.invariant)).toEqual(["I5"])
  })

  it("measures the longest gap without a sale from a fault's start until the first sale after it", () => {
    const sales = [100, 200, 1_200, 1_300, 4_000]
    const [during, instant, late] = unavailability(
      sales,
      [fault(150, 1_250), fault(1_250, 1_250), fault(4_500, 4_600)],
      { stock: 100 },
      6_000
    )
    expect(during).toEqual({ index: 0, millis: 1_000, openEnded: false })
    expect(instant).toEqual({ index: 1, millis: 50, openEnded: false })
    expect(late).toEqual({ index: 2, millis: 1_500, openEnded: true })
  })

  it("does not count the silence after the last unit sold", () => {
    expect(unavailability([100, 200], [fault(300, 400)], { stock: 2 }, 5_000)[0]?.millis).toBe(0)
  })
})

describe("the chaos schedule", () => {
  it("draws the same plan from the same seed and another from another", () => {
    const a = drawPlan({ seed: 42, faultMillis: 30_000, buyers: 50 })
    expect(drawPlan({ seed: 42, faultMillis: 30_000, buyers: 50 })).toEqual(a)
    expect(drawPlan({ seed: 43, faultMillis: 30_000, buyers: 50 })).not.toEqual(a)
    expect(a.faults.length).toBeGreaterThan(0)
    expect(a.buyers).toHaveLength(50)
  })
})

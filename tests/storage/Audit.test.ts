import { assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { describe, expect, it } from "vitest"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import {
  checkInvariants,
  violations,
  type OrderLifecycle,
  type OrderStatus,
  type SaleRecord
} from "../../src/storage/Audit.ts"
import { Audit } from "../../src/storage/Audit.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"
import { TestDatabase, testDatabaseMode } from "../support/TestDatabase.ts"

const saleId = "00000000-0000-4000-8000-000000000001" as SaleId
const user = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, "0")}` as UserId
const order = (n: number) => `10000000-0000-4000-8000-${n.toString().padStart(12, "0")}` as OrderId

const record = (stock: number, orders: ReadonlyArray<readonly [number, number]>): SaleRecord => ({
  saleId,
  stock,
  available: stock - orders.length,
  orders: new Map(orders.map(([o, u]) => [order(o), user(u)]))
})

const confirmed = (orders: ReadonlyArray<readonly [number, number]>) =>
  new Map(orders.map(([o, u]) => [order(o), user(u)]))

describe("checkInvariants", () => {
  it("passes a clean history", () => {
    const orders = [
      [1, 1],
      [2, 2]
    ] as const
    const report = checkInvariants(record(2, orders), confirmed(orders))
    expect(violations(report)).toBe(0)
    expect(report.committed).toBe(2)
    expect(report.unconfirmedRows).toBe(0)
  })

  it("catches a planted oversell", () => {
    const orders = [
      [1, 1],
      [2, 2],
      [3, 3]
    ] as const
    const report = checkInvariants({ ...record(2, orders), available: 0 }, confirmed(orders))
    expect(report.oversold).toBe(1)
    expect(violations(report)).toBeGreaterThan(0)
  })

  it("catches a planted lost 2xx: a confirmed order with no row", () => {
    const rows = [[1, 1]] as const
    const report = checkInvariants(record(5, rows), confirmed([...rows, [2, 2]]))
    expect(report.lostConfirmed).toBe(1)
    expect(violations(report)).toBe(1)
  })

  it("catches a confirmed order recorded for another buyer", () => {
    const report = checkInvariants(record(5, [[1, 1]]), confirmed([[1, 2]]))
    expect(report.lostConfirmed).toBe(1)
  })

  it("catches a buyer with two orders and a stock row that disagrees", () => {
    const orders = [
      [1, 1],
      [2, 1]
    ] as const
    const report = checkInvariants({ ...record(5, orders), available: 5 }, confirmed(orders))
    expect(report.duplicateBuyers).toBe(1)
    expect(report.stockMismatch).toBe(1)
  })

  it("counts rows nobody was told about without calling them violations", () => {
    const report = checkInvariants(record(5, [[1, 1]]), new Map())
    expect(report.unconfirmedRows).toBe(1)
    expect(violations(report)).toBe(0)
  })
})

/** One order row as Audit.read returns it, reserved until an hour from now unless told otherwise. */
const row = (u: number, status: OrderStatus, parts: Partial<OrderLifecycle> = {}): OrderLifecycle => ({
  userId: user(u),
  status,
  payBy: Date.parse("2026-01-01T12:00:00Z"),
  paidAt: null,
  succeededEvents: 0,
  refundedEvents: 0,
  ...parts
})

const live = new Set<OrderStatus>(["reserved", "paid"])

/** A hold sale's record: the live orders derived from the rows, as Audit.read derives them. */
const holdRecord = (
  stock: number,
  rows: ReadonlyArray<readonly [number, OrderLifecycle]>,
  available?: number
): SaleRecord => {
  const orders = new Map(rows.filter(([, r]) => live.has(r.status)).map(([o, r]) => [order(o), r.userId]))
  return {
    saleId,
    stock,
    available: available ?? stock - orders.size,
    orders,
    lifecycle: new Map(rows.map(([o, r]) => [order(o), r]))
  }
}

const payBy = Date.parse("2026-01-01T12:00:00Z")

describe("checkInvariants on a hold sale", () => {
  it("passes holds paid, pending, expired and cancelled: a lapsed hold is neither lost nor live", () => {
    const rows = [
      [1, row(1, "paid", { paidAt: payBy - 1_000, succeededEvents: 1 })],
      [2, row(2, "reserved")],
      [3, row(3, "expired")],
      [4, row(4, "cancelled")]
    ] as const
    const report = checkInvariants(
      holdRecord(3, rows),
      confirmed([
        [1, 1],
        [2, 2],
        [3, 3],
        [4, 4]
      ])
    )
    expect(report).toMatchObject({
      committed: 2,
      lapsed: 2,
      lostConfirmed: 0,
      unconfirmedRows: 0,
      stockMismatch: 0,
      expiredPaid: 0,
      paidAfterLapse: 0,
      paidLate: 0
    })
    expect(violations(report)).toBe(0)
  })

  it("catches a confirmed hold whose row is gone in every status", () => {
    const report = checkInvariants(
      holdRecord(3, [[3, row(3, "expired")]]),
      confirmed([
        [3, 3],
        [5, 5]
      ])
    )
    expect(report.lostConfirmed).toBe(1)
    expect(violations(report)).toBe(1)
  })

  it("counts a lapsed row nobody was told about as unconfirmed, not as a violation", () => {
    const report = checkInvariants(holdRecord(3, [[3, row(3, "expired")]]), new Map())
    expect(report.unconfirmedRows).toBe(1)
    expect(violations(report)).toBe(0)
  })

  it("catches an expired hold whose unit was never given back, and one given back twice", () => {
    const rows = [
      [1, row(1, "reserved")],
      [2, row(2, "expired")]
    ] as const
    const told = confirmed([
      [1, 1],
      [2, 2]
    ])
    expect(checkInvariants(holdRecord(2, rows, 0), told).stockMismatch).toBe(1)
    expect(checkInvariants(holdRecord(2, rows, 2), told).stockMismatch).toBe(1)
    expect(checkInvariants(holdRecord(2, rows, 1), told).stockMismatch).toBe(0)
  })

  it("catches more live orders than units, counting reserved and paid alike", () => {
    const rows = [
      [1, row(1, "paid", { paidAt: payBy - 1 })],
      [2, row(2, "reserved")],
      [3, row(3, "expired")]
    ] as const
    const report = checkInvariants(holdRecord(1, rows, 0), new Map())
    expect(report.oversold).toBe(1)
    expect(violations(report)).toBeGreaterThan(0)
  })

  it("allows a buyer a lapsed order beside a live one, not two live ones", () => {
    const lapsedAndLive = [
      [1, row(1, "expired")],
      [2, row(1, "reserved")]
    ] as const
    expect(checkInvariants(holdRecord(2, lapsedAndLive), new Map()).duplicateBuyers).toBe(0)
    const twoLive = [
      [1, row(1, "paid", { paidAt: payBy - 1 })],
      [2, row(1, "reserved")]
    ] as const
    expect(checkInvariants(holdRecord(2, twoLive), new Map()).duplicateBuyers).toBe(1)
  })

  it("catches a paid order that expired or was cancelled afterwards", () => {
    const rows = [
      [1, row(1, "expired", { paidAt: payBy - 1, succeededEvents: 1, refundedEvents: 1 })],
      [2, row(2, "cancelled", { paidAt: payBy - 1, succeededEvents: 1, refundedEvents: 1 })],
      [3, row(3, "refunded", { paidAt: payBy - 1, succeededEvents: 1, refundedEvents: 1 })]
    ] as const
    const report = checkInvariants(holdRecord(3, rows), new Map())
    expect(report.expiredPaid).toBe(2)
    expect(violations(report)).toBe(2)
  })

  it("catches a late payment nobody refunded; a refund recorded either way settles it", () => {
    const rows = [
      [1, row(1, "expired", { succeededEvents: 1 })],
      [2, row(2, "cancelled", { succeededEvents: 1 })],
      [3, row(3, "expired", { succeededEvents: 1, refundedEvents: 1 })],
      [4, row(4, "refunded", { succeededEvents: 1 })],
      [5, row(5, "expired", { refundedEvents: 0 })]
    ] as const
    const report = checkInvariants(holdRecord(5, rows), new Map())
    expect(report.paidAfterLapse).toBe(2)
    expect(violations(report)).toBe(2)
  })

  it("catches a hold marked paid by a payment taken at or after its deadline", () => {
    const rows = [
      [1, row(1, "paid", { paidAt: payBy - 1 })],
      [2, row(2, "paid", { paidAt: payBy })],
      [3, row(3, "paid", { paidAt: payBy + 5_000 })],
      // A purchase final at once: no deadline to miss.
      [4, row(4, "paid", { payBy: null, paidAt: null })]
    ] as const
    const report = checkInvariants(holdRecord(4, rows), new Map())
    expect(report.paidLate).toBe(2)
    expect(violations(report)).toBe(2)
  })

  it("sums every kind of violation", () => {
    const rows = [
      [1, row(1, "paid", { paidAt: payBy + 1 })],
      [2, row(1, "reserved")],
      [3, row(3, "expired", { paidAt: payBy - 1, succeededEvents: 1 })]
    ] as const
    const report = checkInvariants(holdRecord(1, rows, 5), confirmed([[9, 9]]))
    expect(report).toMatchObject({
      oversold: 1,
      duplicateBuyers: 1,
      stockMismatch: 1,
      lostConfirmed: 1,
      expiredPaid: 1,
      paidAfterLapse: 1,
      paidLate: 1
    })
    expect(violations(report)).toBe(7)
  })

  it("checks a record read without lifecycle on its live orders, as before", () => {
    const report = checkInvariants(record(2, [[1, 1]]), confirmed([[1, 1]]))
    expect(report).toMatchObject({ lapsed: 0, expiredPaid: 0, paidAfterLapse: 0, paidLate: 0 })
    // A report summarised without the hold counts (bench/summary.ts) sums what it has.
    const { lapsed: _lapsed, expiredPaid: _paid, paidAfterLapse: _after, paidLate: _late, ...base } = report
    expect(violations(base)).toBe(0)
    expect(violations({ ...base, oversold: 1 })).toBe(1)
  })
})

const Storage = Layer.mergeAll(Catalog.layer, Audit.layer).pipe(Layer.provideMerge(TestDatabase.layer))

layer(Storage, { timeout: 60_000, excludeTestServices: true })(
  `Audit.read on ${testDatabaseMode} PostgreSQL`,
  (it) => {
    it.effect("reads every order row with its status, deadline, payment and events; live orders apart", () =>
      Effect.gen(function* () {
        const sql = yield* SqlClient.SqlClient
        const buyers = yield* makeUsers(5)
        const saleId = yield* makeSale(4, { holdSeconds: 60 })
        const other = yield* makeSale(4, { holdSeconds: 60 })
        const ids = buyers.map(() => crypto.randomUUID() as OrderId)
        const deadline = Date.parse("2026-01-01T12:00:00.250Z")
        const plant = (i: number, status: OrderStatus, paidAt: number | null, sale: SaleId = saleId) =>
          sql`
          INSERT INTO orders (id, sale_id, user_id, price_cents, owner_epoch, created_at, status, pay_by, paid_at)
          VALUES (${ids[i]!}, ${sale}, ${buyers[i]!}, 12900, 1, now(), ${status},
                  to_timestamp(${deadline}::float8 / 1000), to_timestamp(${paidAt}::float8 / 1000))`
        yield* plant(0, "paid", deadline - 1_500)
        yield* plant(1, "reserved", null)
        yield* plant(2, "expired", null)
        yield* plant(3, "refunded", deadline - 500)
        yield* plant(4, "reserved", null, other)
        const event = (id: string, i: number, kind: string) =>
          sql`
          INSERT INTO payment_events (event_id, intent_id, order_id, kind, occurred_at)
          VALUES (${id}, ${"pi_" + i}, ${ids[i]!}, ${kind}, now())`
        yield* event("evt_paid", 0, "succeeded")
        yield* event("evt_late", 2, "succeeded")
        yield* event("evt_refund_paid", 3, "succeeded")
        yield* event("evt_refund", 3, "refunded")
        yield* event("evt_other_sale", 4, "succeeded")
        yield* sql`UPDATE stocks SET available = 2 WHERE sale_id = ${saleId}`

        const record = yield* (yield* Audit).read(saleId)
        assert.deepStrictEqual(
          [...record.orders].sort(),
          [
            [ids[0]!, buyers[0]!],
            [ids[1]!, buyers[1]!]
          ].sort()
        )
        assert.strictEqual(record.lifecycle?.size, 4)
        assert.deepStrictEqual(record.lifecycle?.get(ids[0]!), {
          userId: buyers[0]!,
          status: "paid",
          payBy: deadline,
          paidAt: deadline - 1_500,
          succeededEvents: 1,
          refundedEvents: 0
        })
        assert.deepStrictEqual(record.lifecycle?.get(ids[1]!)?.paidAt, null)
        assert.deepStrictEqual(record.lifecycle?.get(ids[3]!), {
          userId: buyers[3]!,
          status: "refunded",
          payBy: deadline,
          paidAt: deadline - 500,
          succeededEvents: 1,
          refundedEvents: 1
        })
        const told = new Map(ids.slice(0, 4).map((id, i) => [id, buyers[i]!]))
        const report = checkInvariants(record, told)
        // The expired hold's payment was never refunded: the one violation planted.
        assert.deepStrictEqual(
          { committed: report.committed, lapsed: report.lapsed, paidAfterLapse: report.paidAfterLapse },
          { committed: 2, lapsed: 2, paidAfterLapse: 1 }
        )
        assert.strictEqual(violations(report), 1)
        yield* event("evt_late_refund", 2, "refunded")
        assert.strictEqual(violations(checkInvariants(yield* (yield* Audit).read(saleId), told)), 0)
      })
    )
  }
)

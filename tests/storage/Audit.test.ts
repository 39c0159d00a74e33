import { describe, expect, it } from "vitest"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import { checkInvariants, violations, type SaleRecord } from "../../src/storage/Audit.ts"

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

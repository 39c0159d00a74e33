import { describe, expect, it } from "vitest"
import fc from "fast-check"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import * as Sale from "../../src/actors/SaleState.ts"

const saleId = "00000000-0000-4000-8000-000000000001" as SaleId
const user = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, "0")}` as UserId
const order = (n: number) => `10000000-0000-4000-8000-${n.toString().padStart(12, "0")}` as OrderId

type Step =
  | { readonly kind: "purchase"; readonly user: number; readonly now: number }
  | { readonly kind: "commit"; readonly pick: number }
  | { readonly kind: "release"; readonly pick: number }
  | { readonly kind: "cancel" }

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({ kind: fc.constant("purchase" as const), user: fc.nat(40), now: fc.nat(300) })
  },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("commit" as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("cancel" as const) }) }
)

const checkInvariants = (state: Sale.SaleState) => {
  const held = state.total - state.remaining
  expect(state.remaining).toBeGreaterThanOrEqual(0) // I1: never below zero
  expect(held).toBeLessThanOrEqual(state.total) // I1: never more than the stock
  expect(held).toBe(state.buyers.size) // remaining + accepted = stock
  const orders = [...state.buyers.values()].map((held) => (typeof held === "string" ? held : held.reserved))
  expect(new Set(orders).size).toBe(state.buyers.size) // I2: one order per buyer
  const reservations = [...state.buyers.values()].filter((held) => typeof held !== "string")
  expect(reservations.length).toBe(state.reserved)
}

const fresh = (total: number) =>
  Sale.initialState({ saleId, total, startsAt: 100, endsAt: 200, cancelled: false, buyers: new Map() })

describe("decide", () => {
  it("keeps I1, I2, I3 and remaining + accepted = stock after every step of any sequence", () => {
    fc.assert(
      fc.property(fc.nat(12), fc.array(step, { maxLength: 200 }), (total, steps) => {
        let state = fresh(total)
        // A model of what should have happened, kept apart from the state under test.
        const accepted = new Map<UserId, OrderId>()
        const committed = new Set<OrderId>()
        let cancelled = false
        steps.forEach((s, i) => {
          if (s.kind === "purchase") {
            const before = state.remaining
            const [next, decision] = Sale.decide(state, {
              _tag: "Purchase",
              userId: user(s.user),
              orderId: order(i),
              now: s.now
            })
            state = next
            const mine = accepted.get(user(s.user))
            // I3: "already purchased" only for a committed order; a pending one is waited for.
            if (mine !== undefined && committed.has(mine))
              expect(decision).toEqual({ _tag: "AlreadyPurchased", orderId: mine })
            else if (mine !== undefined) expect(decision).toEqual({ _tag: "AwaitingCommit", orderId: mine })
            else if (cancelled) expect(decision._tag).toBe("Cancelled")
            else if (s.now < 100) expect(decision._tag).toBe("NotStarted")
            else if (s.now >= 200) expect(decision._tag).toBe("Ended")
            else if (before === 0) expect(decision._tag).toBe("SoldOut")
            else {
              expect(decision).toEqual({ _tag: "Accepted", orderId: order(i) })
              accepted.set(user(s.user), order(i))
            }
          } else if (s.kind === "commit") {
            const pending = [...accepted.entries()].filter(([, orderId]) => !committed.has(orderId))
            if (pending.length > 0) {
              const [userId, orderId] = pending[s.pick % pending.length]!
              ;[state] = Sale.decide(state, { _tag: "Committed", orders: [{ userId, orderId }] })
              committed.add(orderId)
            }
          } else if (s.kind === "release") {
            // Any holder: releasing a committed order must change nothing.
            const holders = [...accepted.entries()]
            if (holders.length > 0) {
              const [userId, orderId] = holders[s.pick % holders.length]!
              ;[state] = Sale.decide(state, { _tag: "Released", orders: [{ userId, orderId }] })
              if (!committed.has(orderId)) accepted.delete(userId)
            }
          } else {
            ;[state] = Sale.decide(state, { _tag: "Cancel" })
            cancelled = true
          }
          checkInvariants(state)
          expect(state.total - state.remaining).toBe(accepted.size)
          expect(state.reserved).toBe(accepted.size - committed.size)
        })
      }),
      { numRuns: 2_000 }
    )
  })

  it("ignores a release that does not match the reservation", () => {
    let state = Sale.initialState({
      saleId,
      total: 1,
      startsAt: 0,
      endsAt: 10,
      cancelled: false,
      buyers: new Map()
    })
    ;[state] = Sale.decide(state, { _tag: "Purchase", userId: user(1), orderId: order(1), now: 5 })
    ;[state] = Sale.decide(state, { _tag: "Released", orders: [{ userId: user(1), orderId: order(2) }] })
    ;[state] = Sale.decide(state, { _tag: "Released", orders: [{ userId: user(2), orderId: order(1) }] })
    expect(state.remaining).toBe(0)
    expect(state.buyers.get(user(1))).toEqual({ reserved: order(1) })
  })

  it("answers a repeat of a pending buyer by waiting for the order, and after its commit as purchased", () => {
    let state = fresh(2)
    ;[state] = Sale.decide(state, { _tag: "Purchase", userId: user(1), orderId: order(1), now: 150 })
    const [, waiting] = Sale.decide(state, { _tag: "Purchase", userId: user(1), orderId: order(2), now: 151 })
    expect(waiting).toEqual({ _tag: "AwaitingCommit", orderId: order(1) })
    ;[state] = Sale.decide(state, { _tag: "Committed", orders: [{ userId: user(1), orderId: order(1) }] })
    const [, repeat] = Sale.decide(state, { _tag: "Purchase", userId: user(1), orderId: order(3), now: 152 })
    expect(repeat).toEqual({ _tag: "AlreadyPurchased", orderId: order(1) })
    // A committed order is never released.
    ;[state] = Sale.decide(state, { _tag: "Released", orders: [{ userId: user(1), orderId: order(1) }] })
    expect(state.remaining).toBe(1)
  })

  it("gives a released order's unit back, so its buyer may buy again", () => {
    let state = fresh(1)
    ;[state] = Sale.decide(state, { _tag: "Purchase", userId: user(1), orderId: order(1), now: 150 })
    ;[state] = Sale.decide(state, { _tag: "Released", orders: [{ userId: user(1), orderId: order(1) }] })
    expect(state.remaining).toBe(1)
    expect(state.reserved).toBe(0)
    const [, again] = Sale.decide(state, { _tag: "Purchase", userId: user(1), orderId: order(2), now: 151 })
    expect(again).toEqual({ _tag: "Accepted", orderId: order(2) })
  })

  it("reports the status a sale is in at a given time", () => {
    const state = Sale.initialState({
      saleId,
      total: 1,
      startsAt: 10,
      endsAt: 20,
      cancelled: false,
      buyers: new Map()
    })
    expect(Sale.statusAt(state, 5)).toBe("upcoming")
    expect(Sale.statusAt(state, 10)).toBe("active")
    expect(Sale.statusAt(state, 20)).toBe("ended")
    const [sold] = Sale.decide(state, { _tag: "Purchase", userId: user(1), orderId: order(1), now: 15 })
    expect(Sale.statusAt(sold, 15)).toBe("sold_out")
    const [cancelled] = Sale.decide(sold, { _tag: "Cancel" })
    expect(Sale.statusAt(cancelled, 15)).toBe("cancelled")
  })

  it("refuses to start from more buyers than units", () => {
    const buyers = new Map([
      [user(1), order(1)],
      [user(2), order(2)]
    ])
    expect(() =>
      Sale.initialState({ saleId, total: 1, startsAt: 0, endsAt: 1, cancelled: false, buyers })
    ).toThrow()
  })
})

import { describe, expect, it } from "vitest"
import fc from "fast-check"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import * as Sale from "../../src/actors/SaleState.ts"

const saleId = "00000000-0000-4000-8000-000000000001" as SaleId
const user = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, "0")}` as UserId
const order = (n: number) => `10000000-0000-4000-8000-${n.toString().padStart(12, "0")}` as OrderId

type Step =
  | { readonly kind: "purchase"; readonly user: number; readonly now: number }
  | { readonly kind: "release"; readonly pick: number }
  | { readonly kind: "cancel" }

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({ kind: fc.constant("purchase" as const), user: fc.nat(40), now: fc.nat(300) })
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("cancel" as const) }) }
)

const checkInvariants = (state: Sale.SaleState) => {
  const held = state.total - state.remaining
  expect(state.remaining).toBeGreaterThanOrEqual(0) // I1: never below zero
  expect(held).toBeLessThanOrEqual(state.total) // I1: never more than the stock
  expect(held).toBe(state.buyers.size) // remaining + accepted = stock
  expect(new Set(state.buyers.values()).size).toBe(state.buyers.size) // I2: one order per buyer
}

describe("decide", () => {
  it("keeps I1, I2 and remaining + accepted = stock after every step of any sequence", () => {
    fc.assert(
      fc.property(fc.nat(12), fc.array(step, { maxLength: 200 }), (total, steps) => {
        let state = Sale.initialState({
          saleId,
          total,
          startsAt: 100,
          endsAt: 200,
          cancelled: false,
          buyers: new Map()
        })
        // A model of what should have happened, kept apart from the state under test.
        const accepted = new Map<UserId, OrderId>()
        let cancelled = false
        steps.forEach((s, i) => {
          if (s.kind === "purchase") {
            const before = state.remaining
            const [next, outcome] = Sale.decide(state, {
              userId: user(s.user),
              orderId: order(i),
              now: s.now
            })
            state = next
            const mine = accepted.get(user(s.user))
            if (mine !== undefined) expect(outcome).toEqual({ _tag: "AlreadyPurchased", orderId: mine })
            else if (cancelled) expect(outcome._tag).toBe("Cancelled")
            else if (s.now < 100) expect(outcome._tag).toBe("NotStarted")
            else if (s.now >= 200) expect(outcome._tag).toBe("Ended")
            else if (before === 0) expect(outcome._tag).toBe("SoldOut")
            else {
              expect(outcome).toEqual({ _tag: "Accepted", orderId: order(i) })
              accepted.set(user(s.user), order(i))
            }
          } else if (s.kind === "release") {
            const holders = [...accepted.entries()]
            if (holders.length > 0) {
              const [userId, orderId] = holders[s.pick % holders.length]!
              state = Sale.release(state, userId, orderId)
              accepted.delete(userId)
            }
          } else {
            state = Sale.cancel(state)
            cancelled = true
          }
          checkInvariants(state)
          expect(state.total - state.remaining).toBe(accepted.size)
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
    ;[state] = Sale.decide(state, { userId: user(1), orderId: order(1), now: 5 })
    state = Sale.release(state, user(1), order(2))
    state = Sale.release(state, user(2), order(1))
    expect(state.remaining).toBe(0)
    expect(state.buyers.get(user(1))).toBe(order(1))
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
    const [sold] = Sale.decide(state, { userId: user(1), orderId: order(1), now: 15 })
    expect(Sale.statusAt(sold, 15)).toBe("sold_out")
    expect(Sale.statusAt(Sale.cancel(sold), 15)).toBe("cancelled")
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

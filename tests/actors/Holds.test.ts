import { describe, expect, it } from "vitest"
import fc from "fast-check"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import * as Holds from "../../src/actors/Holds.ts"
import * as Sale from "../../src/actors/SaleState.ts"

const saleId = "00000000-0000-4000-8000-000000000001" as SaleId
const user = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, "0")}` as UserId
const order = (n: number) => `10000000-0000-4000-8000-${n.toString().padStart(12, "0")}` as OrderId
const startsAt = 100
const endsAt = 100_000

type Step =
  | { readonly kind: "purchase"; readonly user: number }
  | { readonly kind: "commit"; readonly pick: number }
  | { readonly kind: "release"; readonly pick: number }
  | { readonly kind: "pay"; readonly pick: number; readonly event: number; readonly stranger: boolean }
  | { readonly kind: "cancelHold"; readonly pick: number }
  | { readonly kind: "settle"; readonly pick: number; readonly status: "paid" | "cancelled" }
  | { readonly kind: "expire" }
  | { readonly kind: "expireSome"; readonly pick: number }
  | { readonly kind: "cancel" }

const stepArb: fc.Arbitrary<{ readonly tick: number; readonly step: Step }> = fc.record({
  tick: fc.nat(15),
  step: fc.oneof(
    { weight: 8, arbitrary: fc.record({ kind: fc.constant("purchase" as const), user: fc.nat(25) }) },
    { weight: 5, arbitrary: fc.record({ kind: fc.constant("commit" as const), pick: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }) },
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant("pay" as const),
        pick: fc.nat(),
        // A small pool of event ids, so the same event is often delivered again.
        event: fc.nat(30),
        stranger: fc.boolean()
      })
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("cancelHold" as const), pick: fc.nat() }) },
    // A payment or a cancellation PostgreSQL applied first, brought into the book afterwards.
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant("settle" as const),
        pick: fc.nat(),
        status: fc.constantFrom("paid" as const, "cancelled" as const)
      })
    },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("expire" as const) }) },
    // The owner's expiry as it runs: the holds its transaction ended, some of those due.
    { weight: 2, arbitrary: fc.record({ kind: fc.constant("expireSome" as const), pick: fc.nat() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("cancel" as const) }) }
  )
})

type ModelStatus = "held" | "paid" | "expired" | "cancelled"

interface ModelOrder {
  readonly userId: UserId
  readonly orderId: OrderId
  readonly payBy: number
  readonly seq: number
  status: ModelStatus
  committed: boolean
}

/**
 * The reference: every order in a plain list, every rule written the obvious way (a scan of
 * all orders where the sale keeps a queue and counters).
 */
class Model {
  readonly orders: Array<ModelOrder> = []
  readonly events = new Set<string>()
  readonly lapsed = new Map<UserId, OrderId>()
  cancelled = false
  readonly total: number
  readonly holdMillis: number
  readonly repurchase: boolean
  constructor(total: number, holdMillis: number, repurchase: boolean) {
    this.total = total
    this.holdMillis = holdMillis
    this.repurchase = repurchase
  }

  live(): Array<ModelOrder> {
    return this.orders.filter((o) => o.status === "held" || o.status === "paid")
  }
  holderOf(userId: UserId): ModelOrder | undefined {
    return this.live().find((o) => o.userId === userId)
  }
  free(): number {
    return this.total - this.live().length
  }

  purchase(userId: UserId, orderId: OrderId, now: number): Sale.Decision {
    const mine = this.holderOf(userId)
    if (mine !== undefined)
      return mine.committed
        ? { _tag: "AlreadyPurchased", orderId: mine.orderId }
        : { _tag: "AwaitingCommit", orderId: mine.orderId }
    const lapsed = this.lapsed.get(userId)
    if (lapsed !== undefined) return { _tag: "HoldLapsed", orderId: lapsed }
    if (this.cancelled) return { _tag: "Cancelled" }
    if (now < startsAt) return { _tag: "NotStarted", startsAt }
    if (now >= endsAt) return { _tag: "Ended" }
    if (this.free() === 0) return { _tag: "SoldOut" }
    const seq = this.orders.length
    this.orders.push({ userId, orderId, payBy: now + this.holdMillis, seq, status: "held", committed: false })
    return { _tag: "Accepted", orderId }
  }

  /** A release takes the order out of the sale as if it never was. */
  release(target: ModelOrder) {
    this.orders.splice(this.orders.indexOf(target), 1)
  }

  pay(userId: UserId, orderId: OrderId, eventId: string, at: number): Holds.PayDecision {
    if (this.events.has(eventId)) return { _tag: "DuplicateEvent", eventId }
    this.events.add(eventId)
    const target = this.orders.find((o) => o.orderId === orderId && o.userId === userId)
    const late = (reason: Holds.LateReason): Holds.PayDecision => ({ _tag: "LatePayment", orderId, reason })
    if (target === undefined) return late("unknown")
    if (target.status === "paid") return late("already_paid")
    if (target.status !== "held") return late(target.status)
    if (!target.committed) return late("not_committed")
    if (at >= target.payBy) return late("after_deadline")
    target.status = "paid"
    return { _tag: "Paid", orderId }
  }

  lapse(target: ModelOrder, status: "expired" | "cancelled") {
    target.status = status
    if (!this.repurchase) this.lapsed.set(target.userId, target.orderId)
  }

  cancelHold(userId: UserId, orderId: OrderId): Holds.CancelDecision {
    const target = this.orders.find((o) => o.orderId === orderId && o.userId === userId)
    if (target === undefined) return { _tag: "NotCancellable", orderId, reason: "unknown" }
    if (target.status !== "held") return { _tag: "NotCancellable", orderId, reason: target.status }
    if (!target.committed) return { _tag: "NotCancellable", orderId, reason: "not_committed" }
    this.lapse(target, "cancelled")
    return { _tag: "HoldCancelled", orderId }
  }

  /** A durable payment or cancellation moves a committed held order, once; anything else stays. */
  settle(target: ModelOrder, status: "paid" | "cancelled"): Holds.Settled {
    const orderId = target.orderId
    if (target.status !== "held" || !target.committed) return { _tag: "Settled", orderId, applied: false }
    if (status === "paid") target.status = "paid"
    else this.lapse(target, "cancelled")
    return { _tag: "Settled", orderId, applied: true }
  }

  /** Exactly these orders expire, each only while it is a committed hold. */
  expireOrders(orders: ReadonlyArray<Sale.OrderRef>): Holds.Expiry {
    const expired: Array<Sale.OrderRef> = []
    for (const order of orders) {
      const target = this.orders.find((o) => o.orderId === order.orderId)
      if (target === undefined || target.status !== "held" || !target.committed) continue
      this.lapse(target, "expired")
      expired.push(order)
    }
    return { expired, promoted: [] }
  }

  /** Due holds in acceptance order, up to the first one whose commit is still in flight. */
  expire(now: number): Holds.Expiry {
    const expired: Array<Sale.OrderRef> = []
    for (const target of this.orders.filter((o) => o.status === "held")) {
      if (target.payBy > now || !target.committed) break
      this.lapse(target, "expired")
      expired.push({ userId: target.userId, orderId: target.orderId })
    }
    return { expired, promoted: [] }
  }
}

/** H1 to H5 on the state alone, plus H3 against the statuses seen before this step. */
const checkInvariants = (state: Sale.SaleState, seen: Map<OrderId, Holds.OrderStatus>) => {
  const book = state.holds
  if (book === undefined) throw new Error("a sale with a hold length has a hold book")
  expect(state.remaining).toBeGreaterThanOrEqual(0)
  expect(state.remaining + state.buyers.size).toBe(state.total) // H5: a freed unit is back once
  expect(book.held + book.paid).toBe(state.buyers.size) // H1: reserved + paid <= stock
  let live = 0
  for (const [orderId, held] of book.orders) {
    const before = seen.get(orderId)
    // H3: only a held order changes status, and only once.
    if (before !== undefined && before !== "held") expect(held.status).toBe(before)
    seen.set(orderId, held.status)
    if (held.status !== "held" && held.status !== "paid") continue
    live++
    // H2: a live order is its buyer's one holding.
    const holding = state.buyers.get(held.userId)
    expect(typeof holding === "string" ? holding : holding?.reserved).toBe(orderId)
  }
  expect(live).toBe(state.buyers.size)
}

describe("holds in decide", () => {
  it("keep H1 to H5 and answer as the reference model in any interleaving", () => {
    fc.assert(
      fc.property(
        fc.nat(6),
        fc.integer({ min: 1, max: 60 }),
        fc.boolean(),
        fc.array(stepArb, { maxLength: 200, size: "max" }),
        (total, holdMillis, repurchase, steps) => {
          let state = Sale.initialState({
            saleId,
            total,
            startsAt,
            endsAt,
            cancelled: false,
            buyers: new Map(),
            holdMillis,
            repurchaseAfterLapse: repurchase
          })
          const model = new Model(total, holdMillis, repurchase)
          const seen = new Map<OrderId, Holds.OrderStatus>()
          let now = startsAt - 20
          steps.forEach(({ tick, step }, i) => {
            now += tick
            const pick = <A>(items: ReadonlyArray<A>, n: number): A | undefined =>
              items.length === 0 ? undefined : items[n % items.length]
            switch (step.kind) {
              case "purchase": {
                const userId = user(step.user)
                const [next, decision] = Sale.decide(state, {
                  _tag: "Purchase",
                  userId,
                  orderId: order(i),
                  now
                })
                state = next
                expect(decision).toEqual(model.purchase(userId, order(i), now))
                break
              }
              case "commit": {
                const target = pick(
                  model.orders.filter((o) => !o.committed),
                  step.pick
                )
                if (target === undefined) break
                ;[state] = Sale.decide(state, { _tag: "Committed", orders: [target] })
                target.committed = true
                break
              }
              case "release": {
                const target = pick(
                  model.orders.filter((o) => !o.committed),
                  step.pick
                )
                if (target === undefined) break
                ;[state] = Sale.decide(state, { _tag: "Released", orders: [target] })
                model.release(target)
                break
              }
              case "pay": {
                // Any order ever taken, or one the sale never saw; sometimes by another buyer.
                const target = step.pick % 7 === 0 ? undefined : pick(model.orders, step.pick)
                const orderId = target?.orderId ?? order(10_000 + step.pick)
                const userId = step.stranger || target === undefined ? user(999) : target.userId
                const eventId = `evt_${step.event}`
                const before = {
                  remaining: state.remaining,
                  held: state.holds?.held,
                  paid: state.holds?.paid
                }
                const [next, decision] = Sale.decide(state, {
                  _tag: "Pay",
                  userId,
                  orderId,
                  eventId,
                  at: now
                })
                state = next
                expect(decision).toEqual(model.pay(userId, orderId, eventId, now))
                // H4: a replayed event changes nothing.
                if (decision._tag === "DuplicateEvent")
                  expect({
                    remaining: state.remaining,
                    held: state.holds?.held,
                    paid: state.holds?.paid
                  }).toEqual(before)
                break
              }
              case "cancelHold": {
                const target = pick(model.orders, step.pick)
                if (target === undefined) break
                const [next, decision] = Sale.decide(state, {
                  _tag: "CancelHold",
                  userId: target.userId,
                  orderId: target.orderId
                })
                state = next
                expect(decision).toEqual(model.cancelHold(target.userId, target.orderId))
                break
              }
              case "settle": {
                const target = pick(model.orders, step.pick)
                if (target === undefined) break
                const [next, decision] = Sale.decide(state, {
                  _tag: "Settle",
                  orderId: target.orderId,
                  status: step.status
                })
                state = next
                expect(decision).toEqual(model.settle(target, step.status))
                break
              }
              case "expireSome": {
                // Some of the due holds, and now and then one not due or already ended.
                const due = state.holds === undefined ? [] : Holds.dueAt(state, state.holds, now)
                const some = due.slice(0, step.pick % (due.length + 1))
                const stray = pick(model.orders, step.pick)
                const orders = stray !== undefined && step.pick % 5 === 0 ? [...some, stray] : some
                const [next, expiry] = Sale.decide(state, { _tag: "ExpireOrders", orders, now })
                state = next
                expect(expiry).toEqual(model.expireOrders(orders))
                break
              }
              case "expire": {
                const [next, expiry] = Sale.decide(state, { _tag: "Expire", now })
                state = next
                expect(expiry).toEqual(model.expire(now))
                break
              }
              case "cancel":
                ;[state] = Sale.decide(state, { _tag: "Cancel" })
                model.cancelled = true
                break
            }
            checkInvariants(state, seen)
            expect(state.remaining).toBe(model.free())
            expect(state.reserved).toBe(model.live().filter((o) => !o.committed).length)
          })
        }
      ),
      { numRuns: 500 }
    )
  })

  it("promotes waiting entrants in draw order, never a winner or a lapsed buyer, in any interleaving", () => {
    type DrawStep =
      | { readonly kind: "pay" | "cancelHold" | "commit" | "release"; readonly pick: number }
      | { readonly kind: "expire" }
    const drawStep: fc.Arbitrary<{ readonly tick: number; readonly step: DrawStep }> = fc.record({
      tick: fc.nat(8),
      step: fc.oneof(
        fc.record({ kind: fc.constantFrom("pay" as const, "cancelHold" as const), pick: fc.nat() }),
        fc.record({ kind: fc.constantFrom("commit" as const, "release" as const), pick: fc.nat() }),
        fc.record({ kind: fc.constant("expire" as const) })
      )
    })
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 0, max: 12 }),
        fc.array(drawStep, { maxLength: 120, size: "max" }),
        (total, extra, steps) => {
          const entrants = total + extra
          const entries = new Map(
            Array.from({ length: entrants }, (_, n) => [user(n), { entryId: order(n), at: 150 }] as const)
          )
          let state = Sale.initialState({
            saleId,
            total,
            startsAt,
            endsAt,
            cancelled: false,
            buyers: new Map(),
            draw: { drawAt: 200, entries, waitingList: undefined },
            holdMillis: 10
          })
          // Draw order is the user number; places count from 1 after the winners.
          const winners = Array.from({ length: Math.min(total, entrants) }, (_, n) => ({
            userId: user(n),
            orderId: order(n)
          }))
          const waitingList = new Map(
            Array.from(
              { length: entrants - winners.length },
              (_, k) => [user(winners.length + k), k + 1] as const
            )
          )
          ;[state] = Sale.decide(state, { _tag: "Drawn", winners, waitingList, at: 1_000 })
          const seen = new Map<OrderId, Holds.OrderStatus>()
          const promotedOnce = new Set<UserId>()
          const pending = new Map<UserId, OrderId>()
          let lastPlace = 0
          let now = 1_000
          steps.forEach(({ tick, step }, i) => {
            now += tick
            const orders = [...(state.holds?.orders.entries() ?? [])]
            const target =
              orders.length === 0 ? undefined : orders[("pick" in step ? step.pick : 0) % orders.length]
            if (step.kind === "expire") {
              const [next, expiry] = Sale.decide(state, { _tag: "Expire", now })
              state = next
              for (const promotion of expiry.promoted) {
                const place = waitingList.get(promotion.userId)
                expect(place).toBeDefined()
                expect(state.holds?.lapsed.has(promotion.userId)).toBe(false)
                // A first promotion comes in draw order; only a released one comes again.
                if (!promotedOnce.has(promotion.userId)) {
                  expect(place).toBeGreaterThan(lastPlace)
                  lastPlace = place ?? lastPlace
                  promotedOnce.add(promotion.userId)
                }
                pending.set(promotion.userId, promotion.orderId)
              }
              // A free unit stays free only when nobody is left to give it to.
              if (state.remaining > 0 && expiry.promoted.length === 0)
                expect(state.holds?.nextWaiting).toBe(state.holds?.waiting.length)
            } else if (step.kind === "commit" || step.kind === "release") {
              const candidates = [...pending.entries()]
              if (candidates.length === 0) return
              const [userId, orderId] = candidates[step.pick % candidates.length] ?? candidates[0]!
              pending.delete(userId)
              const command = step.kind === "commit" ? "Committed" : "Released"
              ;[state] = Sale.decide(state, { _tag: command, orders: [{ userId, orderId }] })
            } else if (target !== undefined) {
              const [orderId, held] = target
              ;[state] =
                step.kind === "pay"
                  ? Sale.decide(state, {
                      _tag: "Pay",
                      userId: held.userId,
                      orderId,
                      eventId: `e${i}`,
                      at: now
                    })
                  : Sale.decide(state, { _tag: "CancelHold", userId: held.userId, orderId })
            }
            checkInvariants(state, seen)
            expect(state.reserved).toBe(pending.size)
          })
        }
      ),
      { numRuns: 300 }
    )
  })

  it("gives a drawn sale's freed units to the waiting list in draw order, each once", () => {
    const entries = new Map([1, 2, 3, 4, 5].map((n) => [user(n), { entryId: order(n), at: 150 }] as const))
    let state = Sale.initialState({
      saleId,
      total: 2,
      startsAt,
      endsAt,
      cancelled: false,
      buyers: new Map(),
      draw: { drawAt: 200, entries, waitingList: undefined },
      holdMillis: 10
    })
    const seen = new Map<OrderId, Holds.OrderStatus>()
    const waitingList = new Map([
      [user(4), 2],
      [user(3), 1],
      [user(5), 3]
    ])
    const winners = [1, 2].map((n) => ({ userId: user(n), orderId: order(n) }))
    ;[state] = Sale.decide(state, { _tag: "Drawn", winners, waitingList, at: 1_000 })
    checkInvariants(state, seen)
    expect(Sale.decide(state, { _tag: "Expire", now: 1_009 })[1]).toEqual({ expired: [], promoted: [] })
    const [paid, payment] = Sale.decide(state, {
      _tag: "Pay",
      userId: user(1),
      orderId: order(1),
      eventId: "evt_1",
      at: 1_005
    })
    state = paid
    expect(payment).toEqual({ _tag: "Paid", orderId: order(1) })
    // The unpaid winner's unit goes to place 1, under their entry id.
    const [afterExpiry, expiry] = Sale.decide(state, { _tag: "Expire", now: 1_010 })
    state = afterExpiry
    expect(expiry).toEqual({
      expired: [{ userId: user(2), orderId: order(2) }],
      promoted: [{ userId: user(3), orderId: order(3), payBy: 1_020 }]
    })
    checkInvariants(state, seen)
    expect(
      Sale.decide(state, { _tag: "Purchase", userId: user(3), orderId: order(9), now: 1_011 })[1]
    ).toEqual({
      _tag: "AwaitingCommit",
      orderId: order(3)
    })
    expect(
      Sale.decide(state, { _tag: "Purchase", userId: user(2), orderId: order(9), now: 1_011 })[1]
    ).toEqual({
      _tag: "HoldLapsed",
      orderId: order(2)
    })
    // A promotion that never reached PostgreSQL goes to the same entrant again.
    ;[state] = Sale.decide(state, { _tag: "Released", orders: [{ userId: user(3), orderId: order(3) }] })
    expect(state.remaining).toBe(1)
    const [again, repromotion] = Sale.decide(state, { _tag: "Expire", now: 1_012 })
    state = again
    expect(repromotion.promoted).toEqual([{ userId: user(3), orderId: order(3), payBy: 1_022 }])
    ;[state] = Sale.decide(state, { _tag: "Committed", orders: [{ userId: user(3), orderId: order(3) }] })
    const [cancelled, cancellation] = Sale.decide(state, {
      _tag: "CancelHold",
      userId: user(3),
      orderId: order(3)
    })
    state = cancelled
    expect(cancellation).toEqual({ _tag: "HoldCancelled", orderId: order(3) })
    const [promoted, next] = Sale.decide(state, { _tag: "Expire", now: 1_013 })
    state = promoted
    expect(next.promoted).toEqual([{ userId: user(4), orderId: order(4), payBy: 1_023 }])
    // The expired winner's payment is refunded, never a second sale.
    const [, late] = Sale.decide(state, {
      _tag: "Pay",
      userId: user(2),
      orderId: order(2),
      eventId: "evt_2",
      at: 1_013
    })
    expect(late).toEqual({ _tag: "LatePayment", orderId: order(2), reason: "expired" })
    checkInvariants(state, seen)
  })

  it("leaves a sale without a hold length exactly as it was: purchases final, payments refunded", () => {
    let state = Sale.initialState({ saleId, total: 1, startsAt, endsAt, cancelled: false, buyers: new Map() })
    expect(state.holds).toBeUndefined()
    ;[state] = Sale.decide(state, { _tag: "Purchase", userId: user(1), orderId: order(1), now: 150 })
    ;[state] = Sale.decide(state, { _tag: "Committed", orders: [{ userId: user(1), orderId: order(1) }] })
    const [afterExpiry, expiry] = Sale.decide(state, { _tag: "Expire", now: 10_000_000 })
    expect(expiry).toEqual({ expired: [], promoted: [] })
    expect(afterExpiry).toBe(state)
    const [afterPay, payment] = Sale.decide(state, {
      _tag: "Pay",
      userId: user(1),
      orderId: order(1),
      eventId: "evt_1",
      at: 151
    })
    expect(payment).toEqual({ _tag: "LatePayment", orderId: order(1), reason: "unknown" })
    expect(afterPay).toBe(state)
    expect(state.buyers.get(user(1))).toBe(order(1))
  })
})

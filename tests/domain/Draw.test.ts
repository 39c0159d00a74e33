import { createHash, createHmac } from "node:crypto"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as Sale from "../../src/actors/SaleState.ts"
import { commitmentOf, draw, entriesHashOf, type DrawEntry } from "../../src/domain/Draw.ts"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"

const saleId = "00000000-0000-4000-8000-000000000001" as SaleId
const user = (n: number) => `00000000-0000-4000-8000-${n.toString().padStart(12, "0")}` as UserId
const entryId = (n: number) => `10000000-0000-4000-8000-${n.toString().padStart(12, "0")}` as OrderId

const startsAt = 100
const drawAt = 200
const endsAt = 300

/**
 * The reference model of the draw, written from the README's description alone: hash the
 * entries sorted by buyer, give each buyer the HMAC of that hash and their id under the seed,
 * and take the lowest tickets first.
 */
const modelDraw = (seed: string, entries: ReadonlyArray<DrawEntry>, units: number) => {
  const sorted = [...entries].sort((a, b) => a.userId.localeCompare(b.userId))
  const hash = createHash("sha256")
    .update(sorted.map((e) => `${e.userId} ${e.entryId}\n`).join(""))
    .digest("hex")
  const ticket = (userId: string) =>
    createHmac("sha256", Buffer.from(seed, "hex")).update(`${hash}:${userId}`).digest("hex")
  const order = sorted
    .map((e) => ({ e, t: ticket(e.userId) }))
    .sort((a, b) => a.t.localeCompare(b.t))
    .map(({ e }) => e.userId)
  return { hash, winners: order.slice(0, units), waiting: order.slice(units) }
}

const seedArbitrary = fc
  .uint8Array({ minLength: 32, maxLength: 32 })
  .map((b) => Buffer.from(b).toString("hex"))

type Step =
  | { readonly kind: "attempt"; readonly user: number; readonly now: number }
  | { readonly kind: "commit"; readonly pick: number }
  | { readonly kind: "release"; readonly pick: number }

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("attempt" as const),
      user: fc.nat(30),
      now: fc.integer({ min: 50, max: 250 })
    })
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant("commit" as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("release" as const), pick: fc.nat() }) }
)

const shuffled = <A>(items: ReadonlyArray<A>, keys: ReadonlyArray<number>): Array<A> =>
  items
    .map((item, i) => ({ item, key: keys[i % Math.max(1, keys.length)] ?? 0, i }))
    .sort((a, b) => a.key - b.key || a.i - b.i)
    .map(({ item }) => item)

describe("the draw", () => {
  it("is a deterministic function of the seed and the entries, whatever their order", () => {
    fc.assert(
      fc.property(
        seedArbitrary,
        fc.uniqueArray(fc.nat(10_000), { maxLength: 60 }),
        fc.nat(70),
        fc.array(fc.nat(), { maxLength: 60 }),
        (seed, users, units, keys) => {
          const entries = users.map((n) => ({ userId: user(n), entryId: entryId(n) }))
          const result = draw(seed, entries, units)
          const again = draw(seed, shuffled(entries, keys), units)
          expect(again).toEqual(result)
          const model = modelDraw(seed, entries, units)
          expect(result.entriesHash).toBe(model.hash)
          expect(result.winners.map((w) => w.userId)).toEqual(model.winners)
          expect(result.waitingList.map((w) => w.userId)).toEqual(model.waiting)
          expect(result.winners.length).toBe(Math.min(units, entries.length))
          expect(new Set(result.order.map((e) => e.userId)).size).toBe(entries.length)
        }
      )
    )
  })

  it("a draw sale is active in its window, and takes no one new once it closed", () => {
    const sale = { cancelled: false, startsAt, endsAt, remaining: 2 }
    expect(Sale.statusAt(sale, startsAt - 1, drawAt)).toBe("upcoming")
    expect(Sale.statusAt(sale, drawAt - 1, drawAt)).toBe("active")
    expect(Sale.statusAt(sale, drawAt, drawAt)).toBe("ended")
    expect(Sale.statusAt({ ...sale, remaining: 0 }, drawAt, drawAt)).toBe("sold_out")
    expect(Sale.statusAt(sale, drawAt)).toBe("active")
  })

  it("refuses a buyer entered twice, and a seed that is not 32 bytes of hex", () => {
    const seed = "ab".repeat(32)
    expect(() =>
      draw(
        seed,
        [
          { userId: user(1), entryId: entryId(1) },
          { userId: user(1), entryId: entryId(2) }
        ],
        1
      )
    ).toThrow()
    expect(() => draw("nope", [], 1)).toThrow()
    expect(commitmentOf(seed)).toMatch(/^[0-9a-f]{64}$/)
    expect(entriesHashOf([])).toBe(createHash("sha256").digest("hex"))
  })

  it("in the actor's state: one entry per buyer, every entry answered 'entered' is drawn, winners ≤ stock", () => {
    fc.assert(
      fc.property(fc.nat(12), seedArbitrary, fc.array(step, { maxLength: 200 }), (total, seed, steps) => {
        let state = Sale.initialState({
          saleId,
          total,
          startsAt,
          endsAt,
          cancelled: false,
          buyers: new Map(),
          draw: { drawAt, entries: new Map(), waitingList: undefined }
        })
        // The model: entries staged (by order of acceptance), committed, and who was told "entered".
        const pending: Array<{ userId: UserId; entryId: OrderId }> = []
        const committed = new Map<UserId, OrderId>()
        const toldEntered = new Map<UserId, OrderId>()
        steps.forEach((s, i) => {
          if (s.kind === "attempt") {
            const [next, decision] = Sale.decide(state, {
              _tag: "Purchase",
              userId: user(s.user),
              orderId: entryId(i),
              now: s.now
            })
            state = next
            const mine = committed.get(user(s.user))
            const staged = pending.find((p) => p.userId === user(s.user))
            if (mine !== undefined) {
              expect(decision).toEqual({
                _tag: "Entered",
                entryId: mine,
                enteredAt: expect.any(Number),
                drawAt
              })
              toldEntered.set(user(s.user), mine)
            } else if (staged !== undefined) {
              expect(decision).toEqual({ _tag: "AwaitingCommit", orderId: staged.entryId })
            } else if (s.now < startsAt) {
              expect(decision._tag).toBe("NotStarted")
            } else if (s.now >= drawAt) {
              expect(decision._tag).toBe("Ended")
            } else {
              expect(decision).toEqual({ _tag: "EntryAccepted", entryId: entryId(i), at: s.now })
              pending.push({ userId: user(s.user), entryId: entryId(i) })
            }
            return
          }
          if (pending.length === 0) return
          const [picked] = pending.splice(s.pick % pending.length, 1)
          if (picked === undefined) return
          if (s.kind === "commit") {
            ;[state] = Sale.decide(state, { _tag: "EntriesCommitted", entries: [picked] })
            committed.set(picked.userId, picked.entryId)
            // The committer answers the staged buyer only now, with the receipt.
            toldEntered.set(picked.userId, picked.entryId)
          } else [state] = Sale.decide(state, { _tag: "EntriesReleased", entries: [picked] })
          expect(state.draw?.pending).toBe(pending.length)
        })
        // Every pending entry settles before the draw; the draw waits for it.
        expect(Sale.drawDue(state, drawAt)).toBe(pending.length === 0)
        for (const p of pending.splice(0)) {
          ;[state] = Sale.decide(state, { _tag: "EntriesCommitted", entries: [p] })
          committed.set(p.userId, p.entryId)
          toldEntered.set(p.userId, p.entryId)
        }
        expect(Sale.drawDue(state, drawAt - 1)).toBe(false)
        expect(Sale.drawDue(state, drawAt)).toBe(true)

        // The final entry list, as the store reads it: one entry per buyer, all committed ones.
        const entrants = [...(state.draw?.entrants ?? new Map())].map(([userId, e]) => ({
          userId,
          entryId: e.entryId
        }))
        expect(new Map(entrants.map((e) => [e.userId, e.entryId]))).toEqual(committed)
        for (const [userId, id] of toldEntered) expect(committed.get(userId)).toBe(id)

        const result = draw(seed, entrants, state.remaining)
        expect(result.winners.length).toBeLessThanOrEqual(total)
        const waitingList = new Map(result.waitingList.map((e, i) => [e.userId as UserId, i + 1]))
        ;[state] = Sale.decide(state, {
          _tag: "Drawn",
          winners: result.winners.map((w) => ({ userId: w.userId as UserId, orderId: w.entryId as OrderId })),
          waitingList
        })
        expect(Sale.drawDue(state, drawAt + 1)).toBe(false)
        expect(state.remaining).toBe(total - result.winners.length)
        // After the draw each entrant hears their result; anyone else that entries are closed.
        for (let n = 0; n <= 31; n++) {
          const [, decision] = Sale.decide(state, {
            _tag: "Purchase",
            userId: user(n),
            orderId: entryId(10_000 + n),
            now: drawAt + 10
          })
          const id = committed.get(user(n))
          const won = result.winners.find((w) => w.userId === user(n))
          if (won !== undefined) expect(decision).toEqual({ _tag: "AlreadyPurchased", orderId: id })
          else if (id !== undefined)
            expect(decision).toEqual({ _tag: "NotDrawn", place: waitingList.get(user(n)) })
          else expect(decision._tag).toBe("Ended")
        }
      })
    )
  })
})

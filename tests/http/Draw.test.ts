import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { createParser } from "eventsource-parser"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import { Audit, checkInvariants, violations } from "../../src/storage/Audit.ts"
import { verifyDraw } from "../../src/VerifyDraw.ts"
import { adminToken, call, expectError } from "../support/ApiCalls.ts"
import { ApiNode, baseUrl, signedInBuyers } from "../support/ApiNode.ts"

/** The SSE events of a sale until one satisfies `until`. */
const eventsUntil = (saleId: SaleId, until: (data: { draw?: { drawn: boolean } }) => boolean) =>
  Effect.flatMap(baseUrl, (url) =>
    Effect.promise(async () => {
      const response = await fetch(`${url}/api/sales/${saleId}/events`, {
        signal: AbortSignal.timeout(20_000)
      })
      const reader = response.body!.getReader()
      const seen: Array<{ draw?: { drawn: boolean } }> = []
      let done = false
      const parser = createParser({
        onEvent: (event) => {
          const data = JSON.parse(event.data) as { draw?: { drawn: boolean } }
          seen.push(data)
          if (until(data)) done = true
        }
      })
      while (!done) {
        const chunk = await reader.read()
        if (chunk.done) break
        parser.feed(new TextDecoder().decode(chunk.value))
      }
      await reader.cancel()
      return seen
    })
  )

layer(ApiNode, { timeout: 120_000, excludeTestServices: true })("draw sales over HTTP", (it) => {
  it.effect("creates a draw sale, takes entries with 202, draws, and publishes a draw that verifies", () =>
    Effect.gen(function* () {
      const token = yield* adminToken
      const product = yield* call("POST", "/api/admin/products", { token, body: { name: "Console X" } })
      const now = Date.now()
      const base = {
        productId: product.body.productId,
        priceCents: 49_900,
        stock: 3,
        startsAt: new Date(now - 1_000).toISOString(),
        endsAt: new Date(now + 3_600_000).toISOString()
      }
      // The mode's input is checked like any other: a clear 400 naming the field.
      expectError(
        yield* call("POST", "/api/admin/sales", { token, body: { ...base, allocation: "draw" } }),
        400,
        "invalid_request"
      )
      expectError(
        yield* call("POST", "/api/admin/sales", { token, body: { ...base, entryWindowSeconds: 5 } }),
        400,
        "invalid_request"
      )
      expectError(
        yield* call("POST", "/api/admin/sales", {
          token,
          body: { ...base, allocation: "draw", entryWindowSeconds: 7_200 }
        }),
        400,
        "invalid_request"
      )
      expectError(
        yield* call("POST", "/api/admin/sales", {
          token,
          body: { ...base, allocation: "lottery", entryWindowSeconds: 5 }
        }),
        400,
        "invalid_request"
      )
      const created = yield* call("POST", "/api/admin/sales", {
        token,
        body: { ...base, allocation: "draw", entryWindowSeconds: 4 }
      })
      assert.strictEqual(created.status, 201, JSON.stringify(created.body))
      const saleId = created.body.saleId as SaleId
      const allocation = created.body.allocation
      assert.strictEqual(allocation.mode, "draw")
      assert.strictEqual(allocation.entryWindowSeconds, 4)
      assert.strictEqual(allocation.drawAt, new Date(now - 1_000 + 4_000).toISOString())
      assert.match(allocation.commitment, /^[0-9a-f]{64}$/)
      assert.isNull(allocation.seed)
      const firstCome = yield* call("POST", "/api/admin/sales", { token, body: base })
      assert.deepStrictEqual(firstCome.body.allocation, { mode: "first_come" })
      expectError(yield* call("GET", `/api/sales/${firstCome.body.saleId}/draw`), 404, "not_a_draw_sale")

      const buyers = yield* signedInBuyers(Array.from({ length: 8 }, (_, i) => `drawer-${i}@example.test`))
      const entries = new Map<UserId, OrderId>()
      for (const buyer of buyers) {
        const entered = yield* call("POST", `/api/sales/${saleId}/purchases`, { token: buyer.token })
        assert.strictEqual(entered.status, 202, JSON.stringify(entered.body))
        assert.strictEqual(entered.body.status, "entered")
        assert.strictEqual(entered.body.entered.drawAt, allocation.drawAt)
        entries.set(buyer.userId, entered.body.entered.entryId)
        // A second entry gets the first one's answer.
        const again = yield* call("POST", `/api/sales/${saleId}/purchases`, { token: buyer.token })
        assert.deepStrictEqual(again, entered)
      }
      const mine = yield* call("GET", `/api/sales/${saleId}/entry`, { token: buyers[0]!.token })
      assert.strictEqual(mine.body.status, "entered")
      assert.strictEqual(mine.body.entryId, entries.get(buyers[0]!.userId))
      // Before the draw the entries are not published, nor the seed.
      const before = yield* call("GET", `/api/sales/${saleId}/draw`)
      assert.strictEqual(before.status, 200)
      assert.isFalse(before.body.drawn)
      assert.isNull(before.body.entries)
      assert.isNull(before.body.seed)
      assert.strictEqual(before.body.commitment, allocation.commitment)
      const url = yield* baseUrl
      assert.strictEqual((yield* Effect.promise(() => verifyDraw([saleId, "--url", url]))).code, 3)
      // Read twice, so the node:http route has the sale's view and its rendering warm.
      for (let i = 0; i < 2; i++) {
        const open = yield* call("GET", `/api/sales/${saleId}`)
        assert.isNull(open.body.allocation.seed)
        assert.strictEqual(open.body.status, "active")
      }

      // The stream announces the draw.
      const events = yield* eventsUntil(saleId, (data) => data.draw?.drawn === true)
      assert.isTrue(events.at(-1)?.draw?.drawn)

      const after = yield* call("GET", `/api/sales/${saleId}/draw`)
      assert.isTrue(after.body.drawn)
      assert.strictEqual(after.body.entries.length, 8)
      assert.strictEqual(after.body.winners.length, 3)
      assert.strictEqual(after.body.waitingList.length, 5)
      const verdict = yield* Effect.promise(() => verifyDraw([saleId, "--url", url]))
      assert.strictEqual(verdict.code, 0, verdict.lines.join("\n"))
      for (let i = 0; i < 3; i++) {
        const sale = yield* call("GET", `/api/sales/${saleId}`)
        assert.strictEqual(sale.body.allocation.seed, after.body.seed)
        assert.isNotNull(sale.body.allocation.drawnAt)
        assert.strictEqual(sale.body.remaining, 0)
        assert.strictEqual(sale.body.status, "sold_out")
      }

      // Each entrant hears their result: winners their order, the others their place.
      const confirmed = new Map<OrderId, UserId>()
      for (const buyer of buyers) {
        const entry = yield* call("GET", `/api/sales/${saleId}/entry`, { token: buyer.token })
        const answer = yield* call("POST", `/api/sales/${saleId}/purchases`, { token: buyer.token })
        const place = (after.body.waitingList as Array<UserId>).indexOf(buyer.userId) + 1
        if (place === 0) {
          assert.strictEqual(entry.body.status, "won")
          assert.strictEqual(entry.body.orderId, entries.get(buyer.userId))
          assert.strictEqual(answer.status, 200)
          assert.strictEqual(answer.body.orderId, entries.get(buyer.userId))
          confirmed.set(answer.body.orderId, buyer.userId)
        } else {
          assert.strictEqual(entry.body.status, "not_drawn")
          assert.strictEqual(entry.body.waitingListPlace, place)
          expectError(answer, 409, "not_drawn")
          assert.strictEqual(answer.body.error.details.waitingListPlace, place)
        }
      }
      const [late] = yield* signedInBuyers(["late-drawer@example.test"])
      expectError(
        yield* call("POST", `/api/sales/${saleId}/purchases`, { token: late!.token }),
        409,
        "sale_not_active"
      )
      assert.strictEqual(
        (yield* call("GET", `/api/sales/${saleId}/entry`, { token: late!.token })).body.status,
        "none"
      )

      // PostgreSQL: one order per winner, no oversell, every 2xx has its row.
      const report = checkInvariants(yield* (yield* Audit).read(saleId), confirmed)
      assert.strictEqual(violations(report), 0)
      assert.strictEqual(report.committed, 3)
      assert.strictEqual(report.unconfirmedRows, 0)
    })
  )
})

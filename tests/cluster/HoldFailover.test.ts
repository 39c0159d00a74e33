import { assert, describe, it } from "@effect/vitest"
import type { OrderId, SaleId } from "../../src/domain/Ids.ts"
import {
  clusterPaymentProvider,
  formatReport,
  History,
  makeCluster,
  sleep,
  waitFor,
  type Buyer,
  type Cluster,
  type NodeProcess
} from "./Harness.ts"

const stock = 40
const holdSeconds = 5
const leaseTtlMillis = 2_000
/** The first buyers come in two groups this far apart, so their deadlines fall on both sides of the takeover. */
const groupGapMillis = 1_500
const firstWave = 60
const newBuyers = 240
/** How often the test reads the order rows: an expiry is seen at most this late. */
const pollMillis = 50
/**
 * What an expiry may take beyond its deadline plus the lease TTL: the test's polling, a new
 * owner's claim (the first request after the lease lapsed) and its first expiry commit.
 */
const slackMillis = 1_000

type Status = "reserved" | "paid" | "expired" | "cancelled" | "refunded"

interface Hold {
  readonly buyer: Buyer
  readonly orderId: OrderId
  readonly payBy: number
}

interface Answer {
  readonly status: number
  readonly body: {
    readonly orderId?: OrderId
    readonly status?: string
    readonly alreadyPurchased?: boolean
    readonly payBy?: string
    readonly checkoutUrl?: string
    readonly error?: { readonly code: string; readonly details?: { readonly status?: string } }
  }
}

const call = async (
  url: string,
  path: string,
  buyer: Buyer,
  method: "GET" | "POST" = "POST"
): Promise<Answer> => {
  try {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${buyer.token}` },
      signal: AbortSignal.timeout(5_000)
    })
    return { status: response.status, body: (await response.json()) as Answer["body"] }
  } catch {
    return { status: 0, body: {} }
  }
}

/**
 * A buyer pressing Buy until a definite answer, on the next live node each time, recorded in
 * `history`: a hold (201 reserved) or a refusal.
 */
const buy = async (
  targets: () => ReadonlyArray<string>,
  saleId: SaleId,
  buyer: Buyer,
  history: History,
  turn: number
): Promise<Answer> => {
  for (let tries = 0; ; tries++) {
    const urls = targets()
    const answer = await call(urls[(turn + tries) % urls.length]!, `/api/sales/${saleId}/purchases`, buyer)
    if (answer.status > 0 && answer.status < 300 && answer.body.orderId !== undefined)
      history.record(buyer.userId, "ok", answer.body.orderId)
    else if (answer.status === 0 || answer.status >= 500) history.record(buyer.userId, "unknown")
    else history.record(buyer.userId, "refused")
    if (answer.status > 0 && answer.status < 500) return answer
    if (tries > 100) throw new Error(`no definite answer for ${buyer.userId}: ${answer.status}`)
    await sleep(100)
  }
}

/** POST /api/orders/:id/pay until it answers (a 503 while the sale changes owner is tried again). */
const checkout = async (targets: () => ReadonlyArray<string>, hold: Hold, turn: number) => {
  for (let tries = 0; ; tries++) {
    const urls = targets()
    const answer = await call(
      urls[(turn + tries) % urls.length]!,
      `/api/orders/${hold.orderId}/pay`,
      hold.buyer
    )
    if (answer.status === 200 && answer.body.checkoutUrl !== undefined) return answer.body.checkoutUrl
    if ((answer.status !== 0 && answer.status < 500) || tries > 50)
      throw new Error(`pay ${hold.orderId}: ${answer.status} ${JSON.stringify(answer.body)}`)
    await sleep(100)
  }
}

/** What a browser does on the provider's page: open it, press "Pay"; the provider answers 303. */
const pressPay = async (checkoutUrl: string) => {
  const page = await (await fetch(checkoutUrl)).text()
  const forms = [...page.matchAll(/<form method="post" action="([^"]+)"><button[^>]*>([^<]+)</g)]
  const action = forms.find((form) => form[2] === "Pay")?.[1]
  if (action === undefined) throw new Error(`no Pay button on ${checkoutUrl}`)
  const response = await fetch(new URL(action.replaceAll("&amp;", "&"), checkoutUrl), {
    method: "POST",
    redirect: "manual"
  })
  assert.strictEqual(response.status, 303, "the provider sends the browser back to the shop")
}

/** Every status change of every order of the sale, as seen by polling PostgreSQL. */
const watchOrders = (cluster: Cluster, saleId: SaleId) => {
  const seen = new Map<OrderId, Array<{ readonly status: Status; readonly at: number }>>()
  let running = true
  const done = (async () => {
    while (running) {
      const rows = await cluster.query(
        (sql) => sql<{ id: OrderId; status: Status }>`SELECT id, status FROM orders WHERE sale_id = ${saleId}`
      )
      const at = Date.now()
      for (const row of rows) {
        const list = seen.get(row.id) ?? []
        if (list[list.length - 1]?.status !== row.status) list.push({ status: row.status, at })
        seen.set(row.id, list)
      }
      await sleep(pollMillis)
    }
  })()
  return {
    seen,
    statusOf: (orderId: OrderId) => seen.get(orderId)?.at(-1)?.status,
    firstSeen: (orderId: OrderId, status: Status) => seen.get(orderId)?.find((s) => s.status === status)?.at,
    stop: async () => {
      running = false
      await done
    }
  }
}

/** The ways an order may move, each at most once: a hold ends once, a lapsed payment is refunded once. */
const allowedMoves = new Set([
  "reserved>paid",
  "reserved>expired",
  "reserved>cancelled",
  "expired>refunded",
  "cancelled>refunded"
])

describe("a hold sale across three nodes", () => {
  it("kill -9 of the owner while holds are pending: each hold is paid or expires once, on time, and its unit sells again", async () => {
    const out = new Set<NodeProcess>()
    let cluster: Cluster | undefined
    const live = () => (cluster?.nodes ?? []).filter((n) => n.alive && !out.has(n)).map((n) => n.url)
    const provider = await clusterPaymentProvider(live)
    try {
      cluster = await makeCluster({
        nodes: 3,
        saleStocks: [],
        buyers: firstWave + newBuyers,
        cluster: { leaseTtlMillis, env: provider.env }
      })
      const c = cluster
      const saleId = await c.makeHoldSale(stock, holdSeconds)
      const history = new History()
      const [firstBuyers, laterBuyers] = [c.users.slice(0, firstWave), c.users.slice(firstWave)]

      // The first wave: more buyers than units, through every node, in two groups: the second
      // group's deadlines come after a new owner has taken over, the first group's before.
      const half = firstWave / 2
      const early = await Promise.all(
        firstBuyers.slice(0, half).map((buyer, i) => buy(live, saleId, buyer, history, i))
      )
      await sleep(groupGapMillis)
      const late = await Promise.all(
        firstBuyers.slice(half).map((buyer, i) => buy(live, saleId, buyer, history, i))
      )
      const answers = [...early, ...late]
      const holds: Array<Hold> = []
      answers.forEach((answer, i) => {
        if (answer.status !== 201) return
        assert.strictEqual(answer.body.status, "reserved")
        assert.isFalse(answer.body.alreadyPurchased)
        assert.isDefined(answer.body.payBy, "a hold's answer says until when")
        holds.push({
          buyer: firstBuyers[i]!,
          orderId: answer.body.orderId!,
          payBy: Date.parse(answer.body.payBy!)
        })
      })
      assert.strictEqual(holds.length, stock, "every unit held once")
      const soldOut = answers.filter((a) => a.status === 409 && a.body.error?.code === "sold_out").length
      assert.strictEqual(soldOut + holds.length, firstWave, "the others were told sold out")
      const rowDeadlines = new Map(
        (
          await c.query(
            (sql) =>
              sql<{ id: OrderId; payBy: number }>`
                SELECT id, (extract(epoch FROM pay_by) * 1000)::float8 AS "payBy" FROM orders WHERE sale_id = ${saleId}`
          )
        ).map((row) => [row.id, Number(row.payBy)])
      )
      for (const hold of holds)
        assert.approximately(
          rowDeadlines.get(hold.orderId)!,
          hold.payBy,
          1,
          "the answer's payBy is the row's"
        )

      // Who does what: paid before the kill, cancelled before it, paid after it (while no node
      // owns the sale), paid too late, and the rest never pay.
      const paidBefore = holds.slice(0, 8)
      const cancelled = holds.slice(8, 10)
      const paidAfter = holds.slice(10, 18)
      const paidLate = holds.slice(18, 20)
      const unpaid = holds.slice(20)
      const lapsing = [...paidLate, ...unpaid]

      const orders = watchOrders(c, saleId)
      await Promise.all(paidBefore.map(async (hold, i) => pressPay(await checkout(live, hold, i))))
      for (const [i, hold] of cancelled.entries()) {
        const answer = await call(live()[i % 3]!, `/api/orders/${hold.orderId}/cancel`, hold.buyer)
        assert.strictEqual(answer.status, 200, JSON.stringify(answer.body))
        assert.strictEqual(answer.body.status, "cancelled")
      }
      const lateCheckouts = await Promise.all(paidLate.map((hold, i) => checkout(live, hold, i)))
      await waitFor(
        "the payments made before the kill",
        async () => paidBefore.every((hold) => orders.statusOf(hold.orderId) === "paid") || undefined,
        15_000,
        pollMillis
      )

      // The kill, a second before the first deadline: some deadlines pass while no node owns
      // the sale (its lease lapses TTL after the kill), the rest under the new owner.
      const firstDeadline = Math.min(...holds.map((h) => h.payBy))
      assert.isAbove(firstDeadline - Date.now(), 1_000, "the setup left the holds pending")
      await sleep(firstDeadline - 1_000 - Date.now())
      const ownerId = await c.leaseHolder(saleId)
      const owner = c.nodeById(ownerId)
      assert.isDefined(owner, "an owner holds the sale")
      const epochBefore = await c.epoch(saleId)
      out.add(owner!)
      const killedAt = Date.now()
      c.signal(owner!, "SIGKILL")

      // Buyers who pay now: the webhook reaches a live node, which applies it on the order row.
      const paying = Promise.all(paidAfter.map(async (hold, i) => pressPay(await checkout(live, hold, i))))
      // Buyers who press Pay once their hold is over: recorded and refunded, the hold lapses.
      const payingLate = Promise.all(
        paidLate.map(async (hold, i) => {
          await sleep(hold.payBy + 200 - Date.now())
          await pressPay(lateCheckouts[i]!)
        })
      )
      // New buyers keep coming, a few at a time, until the units given back are sold again.
      const given = stock - paidBefore.length - paidAfter.length
      const resold: Array<Hold> = []
      let next = 0
      const arrivals = Promise.all(
        Array.from({ length: 3 }, async (_, worker) => {
          while (resold.length < given && next < laterBuyers.length) {
            const buyer = laterBuyers[next++]!
            const answer = await buy(live, saleId, buyer, history, worker)
            if (answer.status === 201)
              resold.push({ buyer, orderId: answer.body.orderId!, payBy: Date.parse(answer.body.payBy!) })
            else await sleep(100)
          }
        })
      )
      await Promise.all([paying, payingLate, arrivals])
      const lastDeadline = Math.max(...holds.map((h) => h.payBy))
      await waitFor(
        "every first-wave hold to end",
        async () => holds.every((hold) => orders.statusOf(hold.orderId) !== "reserved") || undefined,
        Math.max(0, lastDeadline + leaseTtlMillis + 10_000 - Date.now()),
        pollMillis
      )
      // The late payments' refunds come back as webhooks too.
      const report = await waitFor(
        "the late payments to be refunded",
        async () => {
          const audited = await c.audit(saleId, history)
          return audited.paidAfterLapse === 0 ? audited : undefined
        },
        15_000,
        200
      ).catch(async () => c.audit(saleId, history))
      await orders.stop()

      // Each hold ended once, as its buyer made it end.
      for (const [orderId, changes] of orders.seen)
        for (let i = 1; i < changes.length; i++)
          assert.isTrue(
            allowedMoves.has(`${changes[i - 1]!.status}>${changes[i]!.status}`),
            `order ${orderId} went ${changes.map((s) => s.status).join(" > ")}`
          )
      const finalOf = (list: ReadonlyArray<Hold>) => list.map((h) => orders.statusOf(h.orderId))
      assert.deepStrictEqual(
        finalOf(paidBefore),
        paidBefore.map(() => "paid")
      )
      assert.deepStrictEqual(
        finalOf(paidAfter),
        paidAfter.map(() => "paid"),
        "paid while no node owned the sale"
      )
      assert.deepStrictEqual(
        finalOf(cancelled),
        cancelled.map(() => "cancelled")
      )
      assert.deepStrictEqual(
        finalOf(unpaid),
        unpaid.map(() => "expired")
      )
      for (const status of finalOf(paidLate))
        assert.oneOf(status, ["expired", "refunded"], "a late payment loses")

      // Each expiry at its deadline, never before, and at most the lease TTL (plus the slack) after.
      const lags = lapsing.map((hold) => {
        const expiredAt = orders.firstSeen(hold.orderId, "expired")
        assert.isDefined(expiredAt, `${hold.orderId} expired`)
        return { hold, lag: expiredAt! - hold.payBy }
      })
      for (const { hold, lag } of lags) {
        assert.isAtLeast(lag, 0, `${hold.orderId} expired ${-lag} ms before its deadline`)
        assert.isAtMost(
          lag,
          leaseTtlMillis + slackMillis,
          `${hold.orderId} expired ${lag} ms after its deadline`
        )
      }

      // The units given back (cancelled and expired) were sold again, once each.
      assert.strictEqual(resold.length, given, "every unit given back was bought again")
      assert.strictEqual(report.broken, 0, formatReport(report))
      assert.strictEqual(report.committed, stock)
      assert.strictEqual(report.record.available, 0)
      if (history.unknown === 0) assert.strictEqual(report.unconfirmedRows, 0)
      const events = await c.query(
        (sql) =>
          sql<{ orderId: OrderId; kind: string; n: number }>`
            SELECT e.order_id AS "orderId", e.kind, count(*)::int AS n
            FROM payment_events e JOIN orders o ON o.id = e.order_id
            WHERE o.sale_id = ${saleId} GROUP BY e.order_id, e.kind`
      )
      const eventsOf = (orderId: OrderId) =>
        Object.fromEntries(events.filter((e) => e.orderId === orderId).map((e) => [e.kind, e.n]))
      for (const hold of [...paidBefore, ...paidAfter])
        assert.deepStrictEqual(eventsOf(hold.orderId), { succeeded: 1 })
      for (const hold of paidLate)
        assert.deepStrictEqual(
          eventsOf(hold.orderId),
          { succeeded: 1, refunded: 1 },
          "a late payment is refunded"
        )

      // What the buyers read agrees with the rows, on any node; nobody else reads their orders.
      const survivor = live()[0]!
      for (const hold of holds) {
        const answer = await call(survivor, `/api/orders/${hold.orderId}`, hold.buyer, "GET")
        assert.strictEqual(answer.status, 200)
        assert.strictEqual(answer.body.status, orders.statusOf(hold.orderId))
      }
      const stranger = await call(survivor, `/api/orders/${holds[0]!.orderId}`, laterBuyers.at(-1)!, "GET")
      assert.deepStrictEqual([stranger.status, stranger.body.error?.code], [404, "order_not_found"])
      // An admin reads any order, and the sale's figures count the rows by status.
      const admin = laterBuyers.at(-2)!
      await c.query((sql) => sql`UPDATE users SET admin = true WHERE id = ${admin.userId} RETURNING id`)
      const asAdmin = await call(survivor, `/api/orders/${holds[0]!.orderId}`, admin, "GET")
      assert.deepStrictEqual([asAdmin.status, asAdmin.body.orderId], [200, holds[0]!.orderId])
      // The rows by status, read just before and after the figures: the same both times, or
      // a second-wave hold ended in between and the figures are read again.
      const countRows = async () => {
        const rows = await c.query(
          (sql) =>
            sql<{ status: Status; n: number }>`
              SELECT status, count(*)::int AS n FROM orders WHERE sale_id = ${saleId} GROUP BY status`
        )
        const of = (status: Status) => rows.find((row) => row.status === status)?.n ?? 0
        return {
          reserved: of("reserved"),
          paid: of("paid"),
          expired: of("expired"),
          cancelled: of("cancelled"),
          refunded: of("refunded")
        }
      }
      const figures = await waitFor(
        "the sale's figures, read while no order changed",
        async () => {
          const before = await countRows()
          const stats = (await (
            await fetch(`${survivor}/api/admin/sales/${saleId}/stats`, {
              headers: { authorization: `Bearer ${admin.token}` }
            })
          ).json()) as { orders: Record<Status, number>; paidConversion: number | null }
          const after = await countRows()
          return JSON.stringify(before) === JSON.stringify(after) ? { stats, rows: after } : undefined
        },
        10_000,
        100
      )
      assert.deepStrictEqual(figures.stats.orders, figures.rows)
      const ended = figures.rows.paid + figures.rows.expired + figures.rows.cancelled + figures.rows.refunded
      assert.approximately(figures.stats.paidConversion!, figures.rows.paid / ended, 1e-9)
      // A lapsed hold cannot be paid, a paid one not cancelled; its buyer gets the lapsed order back.
      const expiredHold = unpaid[0]!
      const payExpired = await call(survivor, `/api/orders/${expiredHold.orderId}/pay`, expiredHold.buyer)
      assert.deepStrictEqual(
        [payExpired.status, payExpired.body.error?.code, payExpired.body.error?.details?.status],
        [409, "order_not_payable", "expired"]
      )
      const cancelPaid = await call(
        survivor,
        `/api/orders/${paidBefore[0]!.orderId}/cancel`,
        paidBefore[0]!.buyer
      )
      assert.deepStrictEqual(
        [cancelPaid.status, cancelPaid.body.error?.code, cancelPaid.body.error?.details?.status],
        [409, "order_not_cancellable", "paid"]
      )
      const again = await call(survivor, `/api/sales/${saleId}/purchases`, expiredHold.buyer)
      assert.deepStrictEqual(
        [again.status, again.body.alreadyPurchased, again.body.orderId, again.body.status],
        [200, true, expiredHold.orderId, "lapsed"]
      )

      // A new owner took the sale over under a newer epoch: the old one is fenced.
      assert.isAbove(await c.epoch(saleId), epochBefore)
      const lapsedAt = killedAt + leaseTtlMillis
      const spread = (list: ReadonlyArray<number>) => {
        const sorted = [...list].sort((a, b) => a - b)
        return sorted.length === 0
          ? "none"
          : `${sorted.length}: min ${sorted[0]} ms, median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms`
      }
      const dueOwnerless = lags.filter((l) => l.hold.payBy < lapsedAt).map((l) => l.lag)
      const dueOwned = lags.filter((l) => l.hold.payBy >= lapsedAt).map((l) => l.lag)
      assert.isAbove(dueOwnerless.length, 0, "some deadlines passed while no node owned the sale")
      assert.isAbove(dueOwned.length, 0, "some deadlines passed under the new owner")
      const paidOwnerless = paidAfter.filter((h) => orders.firstSeen(h.orderId, "paid")! < lapsedAt).length
      console.log(
        `hold sale, ${stock} units held ${holdSeconds} s, kill -9 of ${ownerId} ${firstDeadline - killedAt} ms before the first deadline ` +
          `(lease TTL ${leaseTtlMillis / 1_000} s): ${paidBefore.length + paidAfter.length} paid (${paidOwnerless} of ${paidAfter.length} seen paid before the lease lapsed), ` +
          `${cancelled.length} cancelled, ${lapsing.length} expired (${paidLate.length} of them paid too late and refunded); ` +
          `expiry after its deadline, due while ownerless ${spread(dueOwnerless)}, due under the new owner ${spread(dueOwned)} ` +
          `(bound ${leaseTtlMillis + slackMillis} ms, polled every ${pollMillis} ms); ` +
          `${resold.length} units sold again to ${next} new buyers; a lapsed buyer pressing Buy again is answered ` +
          `${again.status} with status "${again.body.status}"; webhooks forwarded ${provider.forwarded.length} ` +
          `(${provider.forwarded.filter((f) => f.status !== 200).length} not 200); ${formatReport(report)}`
      )
    } finally {
      await cluster?.close()
      await provider.close()
    }
  }, 240_000)

  it("kill -9 of the owner with holds pending and nobody asking for the sale after: the holds still expire, and the units show back", async () => {
    const units = 5
    const held = 3
    const c = await makeCluster({ nodes: 3, saleStocks: [], buyers: units, cluster: { leaseTtlMillis } })
    try {
      const saleId = await c.makeHoldSale(units, held)
      const holds: Array<{ readonly orderId: OrderId; readonly payBy: number }> = []
      for (const [i, buyer] of c.users.entries()) {
        const answer = await fetch(`${c.nodes[i % 3]!.url}/api/sales/${saleId}/purchases`, {
          method: "POST",
          headers: { authorization: `Bearer ${buyer.token}` }
        })
        const body = (await answer.json()) as { orderId: OrderId; payBy: string }
        assert.strictEqual(answer.status, 201, JSON.stringify(body))
        holds.push({ orderId: body.orderId, payBy: Date.parse(body.payBy) })
      }
      const owner = c.nodeById(await c.leaseHolder(saleId))
      assert.isDefined(owner)
      c.signal(owner!, "SIGKILL")
      const killedAt = Date.now()
      // No purchase and no read from here on: only the nodes' own look for holds left behind.
      const expiredAt = new Map<OrderId, number>()
      while (expiredAt.size < units && Date.now() - killedAt < 30_000) {
        await sleep(pollMillis * 2)
        const rows = await c.query(
          (sql) =>
            sql<{ id: OrderId; status: Status }>`SELECT id, status FROM orders WHERE sale_id = ${saleId}`
        )
        for (const row of rows)
          if (row.status === "expired" && !expiredAt.has(row.id)) expiredAt.set(row.id, Date.now())
      }
      assert.strictEqual(expiredAt.size, units, "every hold expired with nobody asking")
      // A hold is overdue a second after its deadline and the nodes look once a second; the
      // dead owner's lease lapses after its TTL.
      const lags = holds.map((hold) => {
        const bound = Math.max(hold.payBy + 1_000, killedAt + leaseTtlMillis) + 1_000 + slackMillis
        const at = expiredAt.get(hold.orderId)!
        assert.isAtMost(at, bound, `hold ${hold.orderId} expired ${at - hold.payBy} ms after its deadline`)
        return at - hold.payBy
      })
      const survivor = c.nodes.find((n) => n !== owner)!
      await waitFor(
        "the units shown back on another node",
        async () => {
          const sale = (await (await fetch(`${survivor.url}/api/sales/${saleId}`)).json()) as {
            remaining: number
          }
          return sale.remaining === units ? true : undefined
        },
        10_000
      )
      const [stockRow] = await c.query(
        (sql) => sql<{ available: number }>`SELECT available FROM stocks WHERE sale_id = ${saleId}`
      )
      assert.strictEqual(stockRow!.available, units)
      console.log(
        `hold sale, ${units} units held ${held} s, kill -9 of the owner and no traffic: every hold expired, ` +
          `${Math.min(...lags)}–${Math.max(...lags)} ms after its deadline (lease TTL ${leaseTtlMillis} ms)`
      )
    } finally {
      await c.close()
    }
  }, 120_000)
})

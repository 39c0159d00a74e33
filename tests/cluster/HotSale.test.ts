import { assert, describe, it } from "@effect/vitest"
import { attempt, drive, formatReport, History, makeCluster } from "./Harness.ts"

describe("one hot sale over three nodes", () => {
  it("purchases arriving at every node sell exactly the stock, each buyer at most once", async () => {
    const stock = 600
    const cluster = await makeCluster({ nodes: 3, saleStocks: [stock], buyers: 900 })
    try {
      const saleId = cluster.sales[0]!
      const history = new History()
      const urls = cluster.nodes.map((n) => n.url)
      const started = Date.now()
      await drive({ targets: () => urls, saleId, buyers: cluster.users, history, concurrency: 60 })
      // Every buyer again, through a node other than the first: the answer is "already purchased" or sold out.
      const again = new History()
      await Promise.all(
        cluster.users.slice(0, 100).map((buyer, i) => attempt(urls[(i + 1) % 3]!, saleId, buyer, again))
      )
      const seconds = (Date.now() - started) / 1_000
      const report = await cluster.audit(saleId, history)
      const owner = await cluster.leaseHolder(saleId)
      console.log(
        `hot sale, ${cluster.users.length} buyers round-robin over 3 nodes (owner ${owner}): ` +
          `${history.ok} ok, ${history.soldOut} sold out, ${history.unknown} unknown in ${seconds.toFixed(1)} s; ` +
          formatReport(report)
      )
      assert.strictEqual(report.broken, 0)
      assert.strictEqual(report.committed, stock)
      assert.strictEqual(history.ok, stock)
      for (const [orderId, userId] of again.confirmed)
        assert.strictEqual(history.confirmed.get(orderId), userId)
      assert.isTrue(owner !== undefined)
    } finally {
      await cluster.close()
    }
  }, 240_000)
})

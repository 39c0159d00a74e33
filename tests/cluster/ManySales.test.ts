import { assert, describe, it } from "@effect/vitest"
import type { SaleId } from "../../src/domain/Ids.ts"
import { attempt, History, makeCluster, type Buyer } from "./Harness.ts"

const ownedSales = async (url: string) => {
  const text = await (await fetch(`${url}/metrics`)).text()
  const line = /^mincommerce_owned_sales(?:\{[^}]*\})? (\d+)/m.exec(text)
  return Number(line?.[1] ?? 0)
}

describe("many sales over three nodes", () => {
  it("30 sales: each has exactly one owner, ownership spreads over the nodes, every sale sells its stock", async () => {
    const sales = 30
    const stock = 20
    const perSale = 30
    const cluster = await makeCluster({
      nodes: 3,
      saleStocks: Array.from({ length: sales }, () => stock),
      buyers: sales * perSale
    })
    try {
      const urls = cluster.nodes.map((n) => n.url)
      const histories = cluster.sales.map(() => new History())
      // Interleaved: attempt i is for sale i % 30 through node i % 3, so first contacts spread.
      const attempts: Array<{ saleIndex: number; buyer: Buyer; url: string }> = cluster.users.map(
        (buyer, i) => ({
          saleIndex: i % sales,
          buyer,
          url: urls[Math.floor(i / sales + i) % 3]!
        })
      )
      let next = 0
      await Promise.all(
        Array.from({ length: 40 }, async () => {
          while (next < attempts.length) {
            const { saleIndex, buyer, url } = attempts[next++]!
            let tries = 0
            while (tries++ < 20) {
              const status = await attempt(url, cluster.sales[saleIndex]!, buyer, histories[saleIndex]!)
              if (status > 0 && status < 500) break
            }
          }
        })
      )
      const owners = new Map<SaleId, string | undefined>()
      for (const saleId of cluster.sales) owners.set(saleId, await cluster.leaseHolder(saleId))
      const perNode = new Map<string, number>()
      for (const owner of owners.values())
        if (owner !== undefined) perNode.set(owner, (perNode.get(owner) ?? 0) + 1)
      const running = await Promise.all(cluster.nodes.map((n) => ownedSales(n.url)))
      let broken = 0
      let committed = 0
      for (const [i, saleId] of cluster.sales.entries()) {
        const report = await cluster.audit(saleId, histories[i]!)
        broken += report.broken
        committed += report.committed
        assert.strictEqual(report.committed, stock, `sale ${i}`)
      }
      const spread = cluster.nodes.map((n) => `${n.nodeId} ${perNode.get(n.nodeId) ?? 0}`).join(", ")
      console.log(
        `${sales} sales x ${stock} units, ${cluster.users.length} buyers over 3 nodes: owners ${spread}; ` +
          `running actors per node ${running.join("/")}; ${committed} committed, ${broken} invariant violations`
      )
      assert.strictEqual(broken, 0)
      assert.strictEqual([...owners.values()].filter((o) => o !== undefined).length, sales)
      // One owner each: as many running actors over the nodes as sales, each where its lease is.
      assert.strictEqual(
        running.reduce((a, b) => a + b, 0),
        sales
      )
      for (const [i, node] of cluster.nodes.entries())
        assert.strictEqual(running[i], perNode.get(node.nodeId) ?? 0)
      assert.isAtLeast(perNode.size, 2)
    } finally {
      await cluster.close()
    }
  }, 240_000)
})

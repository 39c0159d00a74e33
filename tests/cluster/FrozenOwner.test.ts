import { assert, describe, it } from "@effect/vitest"
import { drive, formatReport, History, makeCluster, purchase, waitFor, type Buyer } from "./Harness.ts"

const stock = 2_000
const leaseTtlMillis = 2_000

describe("a frozen owner", () => {
  it("SIGSTOP of the owner: another node sells within the lease TTL + 1 s; the owner wakes fenced", async () => {
    const cluster = await makeCluster({
      nodes: 3,
      saleStocks: [stock],
      buyers: 3_000,
      cluster: { leaseTtlMillis }
    })
    try {
      const saleId = cluster.sales[0]!
      const history = new History()
      // Every node sells first, so the two that do not own the sale hold a route to its owner.
      await drive({
        targets: () => cluster.nodes.map((n) => n.url),
        saleId,
        buyers: cluster.users.slice(0, 300),
        history,
        concurrency: 15
      })
      const ownerId = await waitFor("an owner", () => cluster.leaseHolder(saleId))
      const owner = cluster.nodeById(ownerId)!
      const others = cluster.nodes.filter((n) => n !== owner).map((n) => n.url)

      const stoppedAt = Date.now()
      cluster.signal(owner, "SIGSTOP")
      // Buyers keep coming to the other nodes; the first sale decided after the stop is the takeover.
      const waiting = cluster.users.slice(300)
      let next = 0
      let soldAt: number | undefined
      let answered = 0
      const buyer = async (): Promise<void> => {
        while (soldAt === undefined && Date.now() - stoppedAt < 10_000 && next < waiting.length) {
          const who: Buyer = waiting[next++]!
          const sent = Date.now()
          const answer = await purchase(others[next % others.length]!, saleId, who, history, 8_000)
          answered++
          if (answer.status >= 200 && answer.status < 300 && sent >= stoppedAt) soldAt ??= Date.now()
          if (answer.status >= 500 || answer.status === 0) await new Promise((r) => setTimeout(r, 50))
        }
      }
      await Promise.all(Array.from({ length: 20 }, buyer))
      const takeover = soldAt === undefined ? Number.POSITIVE_INFINITY : soldAt - stoppedAt
      const newOwner = await cluster.leaseHolder(saleId)

      cluster.signal(owner, "SIGCONT")
      await waitFor("the woken owner to notice", () =>
        owner.log.some((line) => /fenced|lease lost/.test(line)) ? true : undefined
      )
      const report = await cluster.audit(saleId, history)
      console.log(
        `SIGSTOP owner (${ownerId}): the first sale elsewhere (${newOwner}) came ${(takeover / 1_000).toFixed(2)} s ` +
          `after the stop (lease TTL ${leaseTtlMillis / 1_000} s, bound ${(leaseTtlMillis + 1_000) / 1_000} s); ` +
          `${answered} answers meanwhile; ${formatReport(report)}`
      )
      assert.isAtMost(takeover, leaseTtlMillis + 1_000)
      assert.notStrictEqual(newOwner, ownerId)
      assert.strictEqual(report.broken, 0)
      assert.strictEqual(history.withoutRetryAfter, 0)
    } finally {
      await cluster.close()
    }
  }, 120_000)
})

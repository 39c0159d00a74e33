import { assert, describe, it } from "@effect/vitest"
import { formatReport, History, makeCluster, privateRedis, purchase, waitFor } from "./Harness.ts"

const stock = 6_000
const leaseTtlMillis = 2_000
/** The outage lasts this long: several lease TTLs, so every lease in Redis would have expired. */
const outageMillis = 3 * leaseTtlMillis

describe("Redis outage", () => {
  it("the owner keeps selling, and a node with a known route keeps forwarding: no 503 no_owner", async () => {
    const redis = await privateRedis()
    const cluster = await makeCluster({
      nodes: 2,
      saleStocks: [stock],
      buyers: stock,
      cluster: { redisUrl: redis.url, leaseTtlMillis }
    })
    try {
      const saleId = cluster.sales[0]!
      const [owner, other] = cluster.nodes as [(typeof cluster.nodes)[0], (typeof cluster.nodes)[0]]
      const history = new History()
      let next = 0
      const buy = (url: string) => purchase(url, saleId, cluster.users[next++]!, history)
      // The first purchase makes its node the owner; one through the other node gives it a route.
      assert.strictEqual((await buy(owner.url)).status, 201)
      assert.strictEqual(await cluster.leaseHolder(saleId), owner.nodeId)
      assert.strictEqual((await buy(other.url)).status, 201)

      await redis.kill()
      const killedAt = Date.now()
      const during = { owner: new History(), forwarded: new History() }
      const answers = new Map<string, number>()
      const buyer = async (url: string, record: History) => {
        while (Date.now() - killedAt < outageMillis && next < cluster.users.length) {
          const buyer = cluster.users[next++]!
          const answer = await purchase(url, saleId, buyer, history)
          const key = `${answer.status} ${answer.reason ?? answer.code ?? ""}`.trim()
          answers.set(key, (answers.get(key) ?? 0) + 1)
          record.record(
            buyer.userId,
            answer.status === 201 ? "ok" : answer.status >= 500 ? "unknown" : "refused"
          )
          // Paced, so the stock outlasts the outage.
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
      }
      await Promise.all([
        ...Array.from({ length: 5 }, () => buyer(owner.url, during.owner)),
        ...Array.from({ length: 5 }, () => buyer(other.url, during.forwarded))
      ])
      const lasted = Date.now() - killedAt
      const readiness = await fetch(`${other.url}/api/health/ready`)
      const degraded = readiness.status
      const readinessBody = (await readiness.json()) as { status?: string; ownership?: string }
      console.log(
        `Redis killed for ${(lasted / 1_000).toFixed(1)} s (lease TTL ${leaseTtlMillis / 1_000} s): ` +
          `${during.owner.ok} sold at the owner, ${during.forwarded.ok} forwarded and sold; answers ` +
          `${JSON.stringify(Object.fromEntries(answers))}; ready during the outage: ${degraded}`
      )
      assert.isAtLeast(lasted, outageMillis)
      assert.strictEqual(answers.get("503 no_owner") ?? 0, 0)
      assert.isAbove(during.owner.ok, 0)
      assert.isAbove(during.forwarded.ok, 0)
      assert.strictEqual(degraded, 200)
      assert.deepStrictEqual(readinessBody, { status: "degraded", ownership: "redis_unreachable" })

      await redis.start()
      // Redis back (empty): sales go on, and the sale's lease is held again.
      for (let i = 0; i < 20 && next < cluster.users.length; i++)
        await buy(i % 2 === 0 ? owner.url : other.url)
      await waitFor("the lease to be held again", () => cluster.leaseHolder(saleId), 10_000)
      const report = await cluster.audit(saleId, history)
      console.log(`Redis back: lease held by ${await cluster.leaseHolder(saleId)}; ${formatReport(report)}`)
      assert.strictEqual(report.broken, 0)
    } finally {
      await cluster.close()
      await redis.kill()
    }
  }, 120_000)
})

import { assert, describe, it } from "@effect/vitest"
import { Redis } from "ioredis"
import { attempt, drive, formatReport, History, makeCluster, privateRedis, waitFor } from "./Harness.ts"

const faults = {
  "killed and restarted empty": async (redis: Awaited<ReturnType<typeof privateRedis>>) => {
    await redis.kill()
    await redis.start()
  },
  flushed: async (redis: Awaited<ReturnType<typeof privateRedis>>) => {
    const client = new Redis(redis.url)
    await client.flushall()
    client.disconnect()
  }
}

describe("Redis lost mid-sale", () => {
  it.each(Object.entries(faults))(
    "Redis %s: the sale's lease is held again (by its owner, or by another node under a newer epoch), invariants hold",
    async (fault, inject) => {
      const stock = 800
      const redis = await privateRedis()
      const cluster = await makeCluster({
        nodes: 3,
        saleStocks: [stock],
        buyers: 1_300,
        cluster: { redisUrl: redis.url, leaseTtlMillis: 2_000 }
      })
      try {
        const saleId = cluster.sales[0]!
        const history = new History()
        const urls = cluster.nodes.map((n) => n.url)
        const late = cluster.users.slice(1_200)
        let injected:
          | Promise<{ at: number; owner: string; after: number; newOwner: string; epochs: [number, number] }>
          | undefined
        await drive({
          targets: () => urls,
          saleId,
          buyers: cluster.users.slice(0, 1_200),
          history,
          concurrency: 40,
          afterAnswer: () => {
            if (injected !== undefined || history.ok < stock * 0.4) return
            injected = (async () => {
              const at = history.ok
              const owner = (await cluster.leaseHolder(saleId))!
              const before = await cluster.epoch(saleId)
              const killedAt = Date.now()
              await inject(redis)
              // The old owner sells on until it misses a renewal; if the sale ends meanwhile,
              // a buyer who comes later is what makes a node take it over again.
              let spare = 0
              const newOwner = await waitFor(
                "a node to re-acquire the sale",
                async () => {
                  const holder = await cluster.leaseHolder(saleId)
                  if (holder === undefined && spare < late.length)
                    void attempt(urls[spare % urls.length]!, saleId, late[spare++]!, history)
                  return holder
                },
                20_000,
                50
              )
              const after = Date.now() - killedAt
              // The owner's epoch still holds in PostgreSQL: it may take its lease again. Another
              // node that claims first mints a newer epoch, which fences the old owner.
              if (newOwner !== owner)
                await waitFor("the new epoch", async () =>
                  (await cluster.epoch(saleId)) > before ? true : undefined
                )
              return { at, owner, after, newOwner, epochs: [before, await cluster.epoch(saleId)] }
            })()
          }
        })
        const restart = await injected!
        const report = await cluster.audit(saleId, history)
        console.log(
          `Redis ${fault} at ${Math.round((restart.at / stock) * 100)} % sold (owner ${restart.owner}): ` +
            `${restart.newOwner} holds the lease again after ${(restart.after / 1_000).toFixed(1)} s, ` +
            `epoch ${restart.epochs[0]} -> ${restart.epochs[1]}; ${history.ok} ok, ${history.unknown} unknown attempts; ` +
            formatReport(report)
        )
        assert.strictEqual(report.broken, 0)
        assert.strictEqual(report.committed, stock)
        if (restart.newOwner === restart.owner) assert.isAtLeast(restart.epochs[1], restart.epochs[0])
        else assert.isAbove(restart.epochs[1], restart.epochs[0])
      } finally {
        await cluster.close()
        await redis.kill()
      }
    },
    240_000
  )
})

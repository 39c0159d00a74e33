import { assert, describe, it } from "@effect/vitest"
import {
  attempt,
  drive,
  formatReport,
  History,
  makeCluster,
  waitFor,
  type Cluster,
  type NodeProcess
} from "./Harness.ts"

const stock = 800
const buyers = 1_300
const leaseTtlMillis = 2_000

/** Live nodes other than those the scenario has taken out. */
const liveUrls = (cluster: Cluster, out: ReadonlySet<NodeProcess>) => () =>
  cluster.nodes.filter((n) => n.alive && !out.has(n)).map((n) => n.url)

/** Waits until another node holds the sale's lease; returns it and when that was first seen. */
const newOwner = async (cluster: Cluster, saleId: string, old: string) =>
  waitFor(
    "a new owner",
    async () => {
      const holder = await cluster.leaseHolder(saleId as never)
      return holder !== undefined && holder !== old ? { holder, at: Date.now() } : undefined
    },
    20_000,
    20
  )

const percent = (part: number) => `${Math.round((part / stock) * 100)} %`

describe("owner failures across three nodes", () => {
  it("kill -9 of the owner mid-sale: another node owns the sale within TTL + 1 s and sells the rest", async () => {
    const cluster = await makeCluster({ nodes: 3, saleStocks: [stock], buyers, cluster: { leaseTtlMillis } })
    try {
      const saleId = cluster.sales[0]!
      const history = new History()
      const out = new Set<NodeProcess>()
      let injected: Promise<{ owner: string; at: string; after: number }> | undefined
      await drive({
        targets: liveUrls(cluster, out),
        saleId,
        buyers: cluster.users,
        history,
        concurrency: 40,
        afterAnswer: () => {
          if (injected !== undefined || history.ok < stock * 0.4) return
          injected = (async () => {
            const ownerId = (await cluster.leaseHolder(saleId))!
            const owner = cluster.nodeById(ownerId)!
            const at = percent(history.ok)
            out.add(owner)
            const killedAt = Date.now()
            cluster.signal(owner, "SIGKILL")
            const next = await newOwner(cluster, saleId, ownerId)
            return { owner: ownerId, at, after: next.at - killedAt }
          })()
        }
      })
      const kill = await injected!
      const report = await cluster.audit(saleId, history)
      console.log(
        `kill -9 owner (${kill.owner}) at ${kill.at} sold: new owner after ${(kill.after / 1_000).toFixed(1)} s ` +
          `(lease TTL ${leaseTtlMillis / 1_000} s); ${history.ok} ok, ${history.unknown} unknown attempts; ` +
          formatReport(report)
      )
      assert.strictEqual(report.broken, 0)
      assert.strictEqual(report.committed, stock)
      assert.isBelow(kill.after, leaseTtlMillis + 1_000)
      // Every failed forward was a clean 503 telling the buyer when to retry.
      assert.strictEqual(history.withoutRetryAfter, 0)
    } finally {
      await cluster.close()
    }
  }, 240_000)

  it("zombie owner: paused past its lease, then resumed; the epoch check rejects whatever it tries", async () => {
    const cluster = await makeCluster({ nodes: 3, saleStocks: [stock], buyers, cluster: { leaseTtlMillis } })
    try {
      const saleId = cluster.sales[0]!
      const history = new History()
      const zombieHistory = new History()
      const out = new Set<NodeProcess>()
      // Buyers kept aside to knock on the paused owner's door directly.
      const regular = cluster.users.slice(0, buyers - 50)
      const knocking = cluster.users.slice(buyers - 50)
      let injected:
        Promise<{ owner: NodeProcess; at: string; takeover: number; epochs: [number, number] }> | undefined
      await drive({
        targets: liveUrls(cluster, out),
        saleId,
        buyers: regular,
        history,
        concurrency: 40,
        afterAnswer: () => {
          if (injected !== undefined || history.ok < stock * 0.4) return
          injected = (async () => {
            const ownerId = (await cluster.leaseHolder(saleId))!
            const owner = cluster.nodeById(ownerId)!
            const at = percent(history.ok)
            const before = await cluster.epoch(saleId)
            out.add(owner)
            const stoppedAt = Date.now()
            cluster.signal(owner, "SIGSTOP")
            const next = await newOwner(cluster, saleId, ownerId)
            const soldBefore = history.ok
            await waitFor("the new owner to sell", () => history.ok > soldBefore || undefined, 20_000)
            const after = await cluster.epoch(saleId)
            // Purchases sent straight to the paused node wait in its socket; it meets them on waking.
            const knocks = knocking.map((buyer) => attempt(owner.url, saleId, buyer, zombieHistory, 10_000))
            cluster.signal(owner, "SIGCONT")
            await Promise.all(knocks)
            return { owner, at, takeover: next.at - stoppedAt, epochs: [before, after] }
          })()
        }
      })
      const zombie = await injected!
      await waitFor("the zombie to notice", () =>
        zombie.owner.log.some((line) => /fenced|lease lost/.test(line)) ? true : undefined
      )
      const all = new History()
      for (const [orderId, userId] of [...history.confirmed, ...zombieHistory.confirmed])
        all.record(userId, "ok", orderId)
      const report = await cluster.audit(saleId, all)
      const fenced = zombie.owner.log.filter((line) => /fenced/.test(line)).length
      const lost = zombie.owner.log.filter((line) => /lease lost/.test(line)).length
      console.log(
        `SIGSTOP owner (${zombie.owner.nodeId}) at ${zombie.at} sold: new owner after ` +
          `${(zombie.takeover / 1_000).toFixed(1)} s, epoch ${zombie.epochs[0]} -> ${zombie.epochs[1]}; ` +
          `SIGCONT with ${knocking.length} purchases waiting at the zombie: ${zombieHistory.ok} ok (served by the new owner), ` +
          `${zombieHistory.refused} refused, ${zombieHistory.unknown} unknown; zombie logged ${fenced} fenced, ` +
          `${lost} lease lost; ` +
          formatReport(report)
      )
      assert.strictEqual(report.broken, 0)
      assert.isAbove(zombie.epochs[1], zombie.epochs[0])
      assert.isAtMost(report.committed, stock)
    } finally {
      await cluster.close()
    }
  }, 240_000)

  it("graceful shutdown of the owner hands the sale over well under the lease TTL", async () => {
    const ttl = 5_000
    const cluster = await makeCluster({
      nodes: 3,
      saleStocks: [stock],
      buyers,
      cluster: { leaseTtlMillis: ttl }
    })
    try {
      const saleId = cluster.sales[0]!
      const history = new History()
      const out = new Set<NodeProcess>()
      let injected:
        Promise<{ owner: NodeProcess; at: string; after: number; code: number | null }> | undefined
      await drive({
        targets: liveUrls(cluster, out),
        saleId,
        buyers: cluster.users,
        history,
        concurrency: 40,
        afterAnswer: () => {
          if (injected !== undefined || history.ok < stock * 0.4) return
          injected = (async () => {
            const ownerId = (await cluster.leaseHolder(saleId))!
            const owner = cluster.nodeById(ownerId)!
            const at = percent(history.ok)
            out.add(owner)
            const signalled = Date.now()
            cluster.signal(owner, "SIGTERM")
            const next = await newOwner(cluster, saleId, ownerId)
            return { owner, at, after: next.at - signalled, code: await owner.exited }
          })()
        }
      })
      const handoff = await injected!
      const report = await cluster.audit(saleId, history)
      console.log(
        `SIGTERM owner (${handoff.owner.nodeId}) at ${handoff.at} sold: new owner after ` +
          `${(handoff.after / 1_000).toFixed(2)} s (lease TTL ${ttl / 1_000} s), exit ${handoff.code}; ` +
          formatReport(report)
      )
      assert.strictEqual(report.broken, 0)
      assert.strictEqual(report.committed, stock)
      assert.strictEqual(handoff.code, 0)
      assert.isBelow(handoff.after, ttl / 2)
    } finally {
      await cluster.close()
    }
  }, 240_000)
})

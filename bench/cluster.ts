/**
 * `npm run bench:cluster`: three real nodes on this machine (one PostgreSQL, one Redis).
 *
 * - one hot sale, requests spread over all three nodes (two thirds are forwarded to the owner)
 * - 30 sales, requests spread over all nodes and sales
 * - the owner's ingest ceiling for forwarded purchases, measured on its own: a client speaks
 *   the node-to-node protocol straight to the owner, so no HTTP parsing happens on this path
 * - handoff time on graceful shutdown and on kill -9 of the owner
 *
 * Prints figures; fails only when an invariant is broken. `-- --quick` for a smoke run.
 */
import { Effect } from "effect"
import { Redis } from "ioredis"
import { load } from "./load.ts"
import type { OrderId, SaleId, UserId } from "../src/domain/Ids.ts"
import { connect } from "node:net"
import { encodeFrame, FrameReader, linkKey, proofOf, Reply } from "../src/cluster/Frames.ts"
import {
  attempt,
  clusterSecret,
  History,
  makeCluster,
  sleep,
  waitFor,
  type Buyer,
  type Cluster,
  type NodeProcess
} from "../tests/cluster/Harness.ts"

const quick = process.argv.includes("--quick")
const seconds = quick ? 3 : 10
const connections = 64
const manySales = 30
const ingestMessages = quick ? 100_000 : 1_000_000
const ingestUsers = quick ? 20_000 : 100_000
const httpBuyers = quick ? 30_000 : 200_000
const leaseTtlMillis = 3_000

const number = (n: number) => Math.round(n).toLocaleString("en-US")
let broken = 0

const check = async (cluster: Cluster, saleId: SaleId, confirmed: Map<OrderId, UserId>) => {
  const history = new History()
  for (const [orderId, userId] of confirmed) history.record(userId, "ok", orderId)
  // Requests still in flight when a phase ends are committed after it: audit once settled.
  let report = await cluster.audit(saleId, history)
  for (let i = 0; i < 50; i++) {
    await sleep(100)
    const again = await cluster.audit(saleId, history)
    const settled = again.committed === report.committed && again.stockMismatch === 0
    report = again
    if (settled) break
  }
  broken += report.broken
  if (report.broken > 0) console.log(`sale ${saleId}: ${JSON.stringify(report)}`)
  return report
}

/**
 * The shared load (wrk, bench/load.ts) over `urls` for `seconds`, buyer i to `paths[i mod n]`;
 * the answers confirmed per path, for the invariant check of each sale.
 */
const spreadLoad = async (
  urls: ReadonlyArray<string>,
  buyers: ReadonlyArray<Buyer>,
  paths: ReadonlyArray<string>
) => {
  const phase = await Effect.runPromise(
    load({
      urls,
      connections,
      seconds,
      tokens: buyers.map((b) => b.token),
      users: buyers.map((b) => b.userId),
      paths
    })
  )
  const confirmed = new Map<string, Map<OrderId, UserId>>(paths.map((path) => [path, new Map()]))
  for (const [orderId, index] of phase.confirmedIndex) {
    const buyer = buyers[index]
    const path = paths[index % paths.length]
    if (buyer !== undefined && path !== undefined) confirmed.get(path)?.set(orderId, buyer.userId)
  }
  return {
    requestsPerSecond: phase.requestsPerSecond,
    purchasesPerSecond: phase.purchasesPerSecond,
    p50: phase.p50,
    p99: phase.p99,
    generatorCpuPercent: phase.generatorCpuPercent,
    statuses: phase.outcomes,
    confirmed
  }
}

/** Forwarded purchases sent straight to the owner over the node protocol, `window` in flight. */
const ingest = async (address: string, saleId: SaleId, users: ReadonlyArray<UserId>, messages: number) => {
  // Frames are packed before the clock starts, so the client's own work is mostly the socket:
  // what is measured is the owner reading, deciding and answering.
  const perFrame = 2_000
  const frames: Array<Buffer> = []
  for (let first = 0; first < messages; first += perFrame) {
    const batch: Array<unknown> = []
    for (let i = first; i < Math.min(messages, first + perFrame); i++)
      batch.push([i, saleId, users[i % users.length]])
    frames.push(encodeFrame(batch))
  }
  const window = 10 // frames in flight: 20,000 purchases
  const colon = address.lastIndexOf(":")
  const socket = connect({
    host: address.slice(0, colon),
    port: Number(address.slice(colon + 1)),
    noDelay: true
  })
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject))
  let answered = 0
  let decided = 0
  let overloaded = 0
  let other = 0
  let next = 0
  let started = 0
  // The owner's challenge, answered with the cluster's key, then its acknowledgement: the
  // node protocol's handshake, before the clock starts.
  let handshake: "challenged" | "proved" | "open" = "challenged"
  await new Promise<void>((done) => {
    const reader = new FrameReader((replies) => {
      if (handshake === "challenged") {
        socket.write(encodeFrame([proofOf(linkKey(clusterSecret), replies[0] as Uint8Array)]))
        handshake = "proved"
        return
      }
      if (handshake === "proved") {
        handshake = "open"
        started = performance.now()
        while (next < Math.min(window, frames.length)) socket.write(frames[next++]!)
        return
      }
      for (const reply of replies) {
        const code = (reply as ReadonlyArray<number>)[1] ?? Reply.NotOwner
        if (code <= Reply.Cancelled) decided++
        else if (code === Reply.Overloaded) overloaded++
        else other++
      }
      answered += replies.length
      if (answered >= messages) return done()
      while (next < frames.length && next * perFrame - answered < window * perFrame)
        socket.write(frames[next++]!)
    })
    socket.on("data", (chunk: Buffer) => reader.push(chunk))
  })
  const elapsed = (performance.now() - started) / 1_000
  socket.destroy()
  return { decidedPerSecond: decided / elapsed, decided, overloaded, other, elapsed }
}

/** A trickle of purchases to the nodes other than `owner`, until stopped: what makes a new owner take over. */
const trickle = (cluster: Cluster, saleId: SaleId, buyers: ReadonlyArray<Buyer>, avoid: NodeProcess) => {
  let running = true
  const history = new History()
  const done = (async () => {
    let i = 0
    while (running && i < buyers.length) {
      const targets = cluster.nodes.filter((n) => n.alive && n !== avoid)
      await Promise.all(
        Array.from({ length: 10 }, () =>
          attempt(targets[i % targets.length]!.url, saleId, buyers[i++]!, history)
        )
      )
      await sleep(5)
    }
  })()
  return {
    history,
    stop: async () => {
      running = false
      await done
    }
  }
}

const handoff = async (
  cluster: Cluster,
  saleId: SaleId,
  buyers: ReadonlyArray<Buyer>,
  signal: NodeJS.Signals
) => {
  await attempt(cluster.nodes.find((n) => n.alive)!.url, saleId, buyers[0]!, new History())
  const ownerId = (await waitFor("an owner", () => cluster.leaseHolder(saleId)))!
  const owner = cluster.nodeById(ownerId)!
  const traffic = trickle(cluster, saleId, buyers.slice(1), owner)
  await sleep(500)
  const at = Date.now()
  cluster.signal(owner, signal)
  await waitFor(
    "a new owner",
    async () => {
      const holder = await cluster.leaseHolder(saleId)
      return holder !== undefined && holder !== ownerId ? holder : undefined
    },
    20_000,
    10
  )
  const took = Date.now() - at
  await sleep(300)
  await traffic.stop()
  await owner.exited
  const report = await check(cluster, saleId, traffic.history.confirmed)
  return { took, report }
}

const cluster = await makeCluster({
  nodes: 3,
  saleStocks: [
    1_000_000,
    ...Array.from({ length: manySales }, () => 1_000_000),
    quick ? 10_000 : 50_000,
    10_000,
    10_000
  ],
  buyers: Math.max(httpBuyers, ingestUsers),
  cluster: {
    leaseTtlMillis,
    env: { MAILBOX_CAPACITY: "100000" }
  }
})
const redis = new Redis(cluster.redisUrl)
try {
  const [hot, ...rest] = cluster.sales
  const many = rest.slice(0, manySales)
  const [ingestSale, gracefulSale, killSale] = rest.slice(manySales) as [SaleId, SaleId, SaleId]
  const urls = cluster.nodes.map((n) => n.url)
  const half = Math.floor(httpBuyers / 2)
  console.log(
    `bench:cluster: 3 nodes, lease TTL ${leaseTtlMillis / 1_000} s, ${connections} connections, ${seconds} s per phase`
  )

  const hotLoad = await spreadLoad(urls, cluster.users.slice(0, half), [`/api/sales/${hot}/purchases`])
  const hotReport = await check(
    cluster,
    hot!,
    hotLoad.confirmed.get(`/api/sales/${hot}/purchases`) ?? new Map()
  )
  console.log(
    `one hot sale, requests over 3 nodes (2/3 forwarded): ${number(hotLoad.purchasesPerSecond)} purchases/s (${number(hotLoad.requestsPerSecond)} req/s), ` +
      `p50 ${hotLoad.p50} ms, p99 ${hotLoad.p99} ms, wrk CPU ${Math.round(hotLoad.generatorCpuPercent)} %; answers ${JSON.stringify(hotLoad.statuses)}; ` +
      `${number(hotReport.committed)} committed, ${hotReport.broken} violations`
  )

  const manyLoad = await spreadLoad(
    urls,
    cluster.users.slice(half, httpBuyers),
    many.map((saleId) => `/api/sales/${saleId}/purchases`)
  )
  let manyCommitted = 0
  for (const saleId of many) {
    const report = await check(
      cluster,
      saleId,
      manyLoad.confirmed.get(`/api/sales/${saleId}/purchases`) ?? new Map()
    )
    manyCommitted += report.committed
  }
  const owners = new Map<string, number>()
  for (const saleId of many) {
    const owner = (await cluster.leaseHolder(saleId)) ?? "none"
    owners.set(owner, (owners.get(owner) ?? 0) + 1)
  }
  console.log(
    `${manySales} sales, requests over 3 nodes: ${number(manyLoad.purchasesPerSecond)} purchases/s (${number(manyLoad.requestsPerSecond)} req/s), ` +
      `p50 ${manyLoad.p50} ms, p99 ${manyLoad.p99} ms; owners ${JSON.stringify(Object.fromEntries(owners))}; ` +
      `${number(manyCommitted)} committed, ${broken} violations so far`
  )

  // The ingest sale gets an owner through one HTTP purchase; then the protocol, straight to it.
  await attempt(urls[0]!, ingestSale, cluster.users[0]!, new History())
  const ingestOwner = (await cluster.leaseHolder(ingestSale))!
  const address = (await redis.get(`${cluster.prefix}node:${ingestOwner}`))!
  const ingestResult = await ingest(
    address,
    ingestSale,
    cluster.users.slice(1, ingestUsers).map((b) => b.userId),
    ingestMessages
  )
  const ingestReport = await check(cluster, ingestSale, new Map())
  console.log(
    `owner ingest (node protocol, no HTTP): ${number(ingestResult.decidedPerSecond)} forwarded purchases/s decided ` +
      `(${number(ingestResult.decided)} in ${ingestResult.elapsed.toFixed(1)} s, ${number(ingestResult.overloaded)} overloaded, ` +
      `${ingestResult.other} other; goal 200,000/s); ${number(ingestReport.committed)} committed, ${ingestReport.broken} violations`
  )

  const buyersLeft = cluster.users.slice(httpBuyers - 20_000)
  const graceful = await handoff(cluster, gracefulSale, buyersLeft.slice(0, 10_000), "SIGTERM")
  await cluster.startNode()
  const killed = await handoff(cluster, killSale, buyersLeft.slice(10_000), "SIGKILL")
  console.log(
    `handoff: graceful shutdown ${(graceful.took / 1_000).toFixed(2)} s, kill -9 ${(killed.took / 1_000).toFixed(2)} s ` +
      `(lease TTL ${leaseTtlMillis / 1_000} s); ${graceful.report.broken + killed.report.broken} violations`
  )
} finally {
  redis.disconnect()
  await cluster.close()
}
if (broken > 0) {
  console.error(`bench:cluster: ${broken} invariant violations`)
  process.exit(1)
}
console.log("bench:cluster: invariants hold (no oversell, no buyer twice, every 2xx in PostgreSQL)")
process.exit(0)

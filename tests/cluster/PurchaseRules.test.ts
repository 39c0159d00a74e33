import { solveChallenge } from "altcha-lib"
import { deriveKey } from "altcha-lib/algorithms/pbkdf2"
import { Effect, Layer, Redacted } from "effect"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import type { OrderId, SaleId } from "../../src/domain/Ids.ts"
import type { PowChallenge } from "../../src/http/ProofOfWork.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { Database } from "../../src/storage/Database.ts"
import { Products } from "../../src/storage/Products.ts"
import { Sales } from "../../src/storage/Sales.ts"
import { History, makeCluster, type Buyer, type Cluster } from "./Harness.ts"

/**
 * A sale's proof of work across two node processes sharing JWT_SECRET: a challenge one node
 * issued passes on the other, and a solution spent on one node and replayed on the other buys
 * nothing more than a repeat of the same buyer (the owner answers with the first order).
 */

let cluster: Cluster
let saleId: SaleId

beforeAll(async () => {
  cluster = await makeCluster({ nodes: 2, saleStocks: [], buyers: 2 })
  saleId = await Effect.runPromise(
    Effect.gen(function* () {
      const productId = yield* (yield* Products).create("Two-node drop", "Proof of work")
      const now = Date.now()
      return yield* (yield* Sales).create({
        productId,
        priceCents: 100,
        stock: 3,
        startsAt: now - 1_000,
        endsAt: now + 3_600_000,
        powDifficulty: 10
      })
    }).pipe(
      Effect.provide(
        Catalog.layer.pipe(
          Layer.provide(Database.server(Redacted.make(cluster.databaseUrl), { maxConnections: 1 }))
        )
      ),
      Effect.scoped
    )
  )
}, 120_000)

afterAll(async () => {
  await cluster?.close()
}, 60_000)

const solvedAt = async (url: string, buyer: Buyer): Promise<string> => {
  const response = await fetch(`${url}/api/sales/${saleId}/challenge`, {
    headers: { authorization: `Bearer ${buyer.token}` }
  })
  assert.strictEqual(response.status, 200)
  const challenge = (await response.json()) as PowChallenge
  const solution = await solveChallenge({ challenge, deriveKey })
  assert.isNotNull(solution)
  return Buffer.from(JSON.stringify({ challenge, solution })).toString("base64")
}

const buyAt = async (url: string, buyer: Buyer, proof: string, history: History) => {
  const response = await fetch(`${url}/api/sales/${saleId}/purchases`, {
    method: "POST",
    headers: { authorization: `Bearer ${buyer.token}`, "proof-of-work": proof }
  })
  const body = (await response.json()) as { orderId?: OrderId; error?: { code: string } }
  if (response.status < 300 && body.orderId !== undefined) history.record(buyer.userId, "ok", body.orderId)
  else history.record(buyer.userId, response.status >= 500 ? "unknown" : "refused")
  return { status: response.status, orderId: body.orderId, code: body.error?.code }
}

describe("proof of work across nodes", () => {
  it("a challenge from one node buys on the other; a replay elsewhere is only a repeat", async () => {
    const [first, second] = cluster.nodes
    const [ann, bob] = cluster.users
    assert.isDefined(first)
    assert.isDefined(second)
    assert.isDefined(ann)
    assert.isDefined(bob)
    const history = new History()

    const proof = await solvedAt(first.url, ann)
    const bought = await buyAt(second.url, ann, proof, history)
    assert.strictEqual(bought.status, 201)
    // Spent on the second node; the first never saw it, and its owner answers the repeat.
    const replayed = await buyAt(first.url, ann, proof, history)
    assert.strictEqual(replayed.status, 200)
    assert.strictEqual(replayed.orderId, bought.orderId)
    const again = await buyAt(second.url, ann, proof, history)
    assert.strictEqual(again.code, "proof_of_work_reused")
    // Someone else's solution is refused on any node.
    for (const node of [first, second])
      assert.strictEqual((await buyAt(node.url, bob, proof, history)).code, "proof_of_work_foreign")

    const report = await cluster.audit(saleId, history)
    assert.strictEqual(report.broken, 0, JSON.stringify(report))
    assert.strictEqual(report.committed, 1)
  }, 60_000)
})

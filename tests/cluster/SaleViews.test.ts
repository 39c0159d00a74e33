import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Fiber, Layer, Redacted } from "effect"
import { SqlClient } from "effect/sql"
import { randomBytes } from "node:crypto"
import { SaleRegistry } from "../../src/actors/SaleRegistry.ts"
import { Ownership } from "../../src/cluster/Ownership.ts"
import { SaleRouter } from "../../src/cluster/SaleRouter.ts"
import { republishMillis, SaleWatch, type PushedFigures } from "../../src/cluster/SaleWatch.ts"
import type { SaleId } from "../../src/domain/Ids.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { Checkout } from "../../src/storage/Checkout.ts"
import { Sales } from "../../src/storage/Sales.ts"
import { OrderStore } from "../../src/storage/OrderStore.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"
import { TestDatabase } from "../support/TestDatabase.ts"
import { sharedRedisUrl } from "./Harness.ts"

const clusterSecret = new TextEncoder().encode("sale views test secret")

/** The bound this test holds the push to: a change the owner made is in another node's view within it. */
const pushBoundMillis = 500

/** Nodes in one process: each its own registry, ownership, router and views; one database and Redis. */
const cluster = Effect.gen(function* () {
  const storage = yield* Layer.build(
    Layer.mergeAll(Catalog.layer, OrderStore.layer).pipe(Layer.provideMerge(TestDatabase.layer))
  )
  const prefix = `mincommerce-test-${randomBytes(4).toString("hex")}:`
  const node = (nodeId: string) =>
    Effect.map(
      Layer.build(
        SaleRouter.make({
          forward: { host: "127.0.0.1", port: 0, timeoutMillis: 2_000, sharedSecret: clusterSecret }
        }).pipe(
          Layer.provideMerge(
            SaleRegistry.make({ mailboxCapacity: 10_000, maxBatchSize: 2_000, idleMillis: 60_000 })
          ),
          Layer.provideMerge(
            Ownership.redis({ url: Redacted.make(sharedRedisUrl), prefix, nodeId, leaseTtlMillis: 2_000 })
          ),
          Layer.provide(Layer.succeedContext(storage))
        )
      ),
      (context) => ({ router: Context.get(context, SaleRouter), watch: Context.get(context, SaleWatch) })
    )
  return { a: yield* node("views-a"), b: yield* node("views-b"), storage }
})

/** Resolves with the first figures `watch` hears for the sale that satisfy `wanted`, and when. */
const heard = (watch: SaleWatch["Service"], saleId: SaleId, wanted: (figures: PushedFigures) => boolean) =>
  Effect.callback<{ readonly figures: PushedFigures; readonly at: number }>((resume) => {
    const stop = watch.follow(saleId, (figures) => {
      if (!wanted(figures)) return
      stop()
      resume(Effect.succeed({ figures, at: Date.now() }))
    })
    return Effect.sync(stop)
  })

describe("sale views pushed across nodes", () => {
  it.live(
    "a change committed by the owner reaches a watcher on another node within the bound, and after an owner change",
    () =>
      Effect.gen(function* () {
        const { a, b, storage } = yield* cluster
        const saleId = yield* makeSale(10).pipe(Effect.provideContext(storage))
        const users = yield* makeUsers(4).pipe(Effect.provideContext(storage))
        // Both nodes are asked about the sale before anyone owns it: each reads PostgreSQL once.
        assert.strictEqual((yield* a.watch.figures(saleId)).remaining, 10)
        assert.strictEqual((yield* b.watch.figures(saleId)).remaining, 10)

        // A takes the sale over with its first purchase; B hears it pushed.
        const onB = yield* Effect.forkChild(heard(b.watch, saleId, (f) => f.remaining === 9))
        assert.strictEqual((yield* a.router.purchase(saleId, users[0]!))._tag, "Accepted")
        const committedAt = Date.now()
        const first = yield* Fiber.join(onB).pipe(Effect.timeout("5 seconds"))
        assert.isBelow(first.at - committedAt, pushBoundMillis)
        const ownerA = first.figures.epoch
        assert.isAbove(ownerA, 0)
        // B answers from memory: the pushed figures, not the row.
        assert.strictEqual((yield* b.watch.figures(saleId)).remaining, 9)

        // A hands its sales over; B becomes the owner with a newer epoch, and A hears B's push.
        yield* a.router.handoff
        const onA = yield* Effect.forkChild(
          heard(a.watch, saleId, (f) => f.epoch > ownerA && f.remaining === 8)
        )
        assert.strictEqual((yield* b.router.purchase(saleId, users[1]!))._tag, "Accepted")
        const movedAt = Date.now()
        const second = yield* Fiber.join(onA).pipe(Effect.timeout("5 seconds"))
        assert.isBelow(second.at - movedAt, pushBoundMillis)
        assert.isDefined(b.router.localActor(saleId))
        // The new owner's version starts again, but its epoch ranks it newer: A keeps it.
        assert.strictEqual((yield* a.watch.figures(saleId)).remaining, 8)
        assert.strictEqual((yield* a.watch.figures(saleId)).epoch, second.figures.epoch)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "a hold cancelled through a node that does not own the sale is back on sale at the owner within the bound",
    () =>
      Effect.gen(function* () {
        const { a, b, storage } = yield* cluster
        const saleId = yield* makeSale(1, { holdSeconds: 600 }).pipe(Effect.provideContext(storage))
        const [first, second] = yield* makeUsers(2).pipe(Effect.provideContext(storage))
        const held = yield* a.router.purchase(saleId, first!)
        assert.strictEqual(held._tag, "Accepted")
        if (held._tag !== "Accepted") return
        assert.isDefined(held.payBy)
        assert.strictEqual((yield* b.router.purchase(saleId, second!))._tag, "SoldOut")
        // The buyer cancels through B: the row and the stock row change in PostgreSQL, and B
        // tells the owner, A, which puts the unit back on sale and publishes it.
        const back = yield* Effect.forkChild(heard(b.watch, saleId, (f) => f.remaining === 1))
        const checkout = Context.get(storage, Checkout)
        const cancelled = yield* checkout.cancel(held.orderId, first!)
        assert.strictEqual(cancelled._tag, "Cancelled")
        const cancelledAt = Date.now()
        b.watch.settled(saleId, held.orderId, "cancelled")
        const heardBack = yield* Fiber.join(back).pipe(Effect.timeout("5 seconds"))
        assert.isBelow(heardBack.at - cancelledAt, pushBoundMillis)
        // Without waiting for the hold's deadline, the unit sells again, once.
        assert.strictEqual((yield* b.router.purchase(saleId, second!))._tag, "Accepted")
        const sql = Context.get(storage, SqlClient.SqlClient)
        const live = yield* sql<{ userId: string }>`
          SELECT user_id AS "userId" FROM orders WHERE sale_id = ${saleId} AND status IN ('reserved', 'paid')`
        const [stock] = yield* sql<{
          available: number
        }>`SELECT available FROM stocks WHERE sale_id = ${saleId}`
        assert.deepStrictEqual([live.map((r) => r.userId), stock!.available], [[second], 0])
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "a node that joins after the changes reads PostgreSQL once, then has the owner's figures within a republish",
    () =>
      Effect.gen(function* () {
        const { a, b, storage } = yield* cluster
        const saleId = yield* makeSale(5).pipe(Effect.provideContext(storage))
        const users = yield* makeUsers(2).pipe(Effect.provideContext(storage))
        for (const user of users)
          assert.strictEqual((yield* a.router.purchase(saleId, user))._tag, "Accepted")
        // B was never told of the sale: its first read is the committed row (epoch 0 ranks below any owner).
        const row = yield* b.watch.figures(saleId)
        assert.deepStrictEqual([row.epoch, row.remaining], [0, 3])
        // The owner's push of an earlier commit (4 left) may still be on its way and ranks above
        // the row: what the bound promises is the owner's figures of its last commit.
        yield* Effect.timeout(
          heard(b.watch, saleId, (f) => f.epoch > 0 && f.remaining === 3),
          `${republishMillis * 3} millis`
        )
        assert.strictEqual((yield* b.watch.figures(saleId)).remaining, 3)
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "an older version never overwrites a newer one",
    () =>
      Effect.gen(function* () {
        const { a, b, storage } = yield* cluster
        const saleId = yield* makeSale(5).pipe(Effect.provideContext(storage))
        const users = yield* makeUsers(3).pipe(Effect.provideContext(storage))
        yield* b.watch.figures(saleId)
        const seen: Array<PushedFigures> = []
        b.watch.follow(saleId, (figures) => seen.push(figures))
        for (const user of users) yield* a.router.purchase(saleId, user)
        // Republished copies of older figures keep arriving; none goes back in time.
        yield* Effect.sleep(republishMillis * 1.5)
        for (let i = 1; i < seen.length; i++) {
          const [before, after] = [seen[i - 1]!, seen[i]!]
          assert.isTrue(
            after.epoch > before.epoch || (after.epoch === before.epoch && after.version > before.version),
            "each figure heard is newer than the last"
          )
        }
        assert.strictEqual((yield* b.watch.figures(saleId)).remaining, 2)
      }).pipe(Effect.scoped),
    60_000
  )
  it.live(
    "an admin's cancel fences the running owner's figures on every node: the row wins over what it still pushes",
    () =>
      Effect.gen(function* () {
        const { a, b, storage } = yield* cluster
        const saleId = yield* makeSale(5).pipe(Effect.provideContext(storage))
        const [buyer] = yield* makeUsers(1).pipe(Effect.provideContext(storage))
        yield* b.watch.figures(saleId)
        assert.strictEqual((yield* a.router.purchase(saleId, buyer!))._tag, "Accepted")
        yield* heard(b.watch, saleId, (f) => f.remaining === 4).pipe(Effect.timeout("5 seconds"))
        // Cancelled as the admin's handler does on node B, while A's actor runs on, unaware.
        yield* Effect.flatMap(Sales, (sales) => sales.cancel(saleId)).pipe(Effect.provideContext(storage))
        yield* b.watch.catalogChanged(saleId)
        assert.isTrue((yield* b.watch.figures(saleId)).cancelled)
        // A's republished figures (its old epoch) come and go; both nodes keep the cancel.
        yield* Effect.sleep(republishMillis * 1.5)
        assert.isTrue((yield* b.watch.figures(saleId)).cancelled)
        assert.isTrue((yield* a.watch.figures(saleId)).cancelled)
      }).pipe(Effect.scoped),
    60_000
  )
})

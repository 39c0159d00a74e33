import { assert, layer } from "@effect/vitest"
import { Cause, Effect, Exit, Layer } from "effect"
import { SqlClient } from "effect/sql"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import { OrderStore, type Batch } from "../../src/storage/OrderStore.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { Sales } from "../../src/storage/Sales.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"
import { TestDatabase, testDatabaseMode } from "../support/TestDatabase.ts"

const Storage = Layer.mergeAll(OrderStore.layer, Catalog.layer).pipe(Layer.provideMerge(TestDatabase.layer))

const batchOf = (saleId: SaleId, epoch: number, parts: Partial<Batch>): Batch => ({
  batchId: crypto.randomUUID(),
  saleId,
  epoch,
  orders: [],
  attempts: [],
  refusals: [],
  ...parts
})

const held = (userId: UserId, payBy: number) => ({
  orderId: crypto.randomUUID() as OrderId,
  userId,
  at: Date.now(),
  payBy
})

interface Row {
  readonly status: string
  readonly payBy: number | null
  readonly paid: boolean
}

const rowOf = (orderId: OrderId) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<Row>`
      SELECT status, (extract(epoch FROM pay_by) * 1000)::float8 AS "payBy", paid_at IS NOT NULL AS paid
      FROM orders WHERE id = ${orderId}`
    return rows[0]
  })

const available = (saleId: SaleId) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ available: number }>`SELECT available FROM stocks WHERE sale_id = ${saleId}`
    return rows[0]?.available
  })

const failureTag = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit)) return "success"
  const error = Cause.findErrorOption(exit.cause)
  return error._tag === "Some" ? (error.value as { readonly _tag?: string })._tag : "defect"
}

layer(Storage, { timeout: 60_000, excludeTestServices: true })(
  `order lifecycle on ${testDatabaseMode} PostgreSQL`,
  (it) => {
    it.effect("keeps a sale without holds as it was: hold 0, orders final", () =>
      Effect.gen(function* () {
        const store = yield* OrderStore
        const [buyer] = yield* makeUsers(1)
        const saleId = yield* makeSale(1)
        assert.strictEqual((yield* (yield* Sales).find(saleId))?.holdSeconds, 0)
        const { epoch } = yield* store.claim(saleId)
        const orderId = crypto.randomUUID() as OrderId
        yield* store.commit(batchOf(saleId, epoch, { orders: [{ orderId, userId: buyer!, at: Date.now() }] }))
        assert.deepStrictEqual(yield* rowOf(orderId), { status: "paid", payBy: null, paid: false })
      })
    )

    it.effect("holds an order until paid; a paid order never expires", () =>
      Effect.gen(function* () {
        const store = yield* OrderStore
        const [buyer] = yield* makeUsers(1)
        const saleId = yield* makeSale(1, { holdSeconds: 300 })
        assert.strictEqual((yield* (yield* Sales).find(saleId))?.holdSeconds, 300)
        const { epoch } = yield* store.claim(saleId)
        const order = held(buyer!, Date.now() + 300_000)
        yield* store.commit(batchOf(saleId, epoch, { orders: [order] }))
        const reserved = yield* rowOf(order.orderId)
        assert.strictEqual(reserved?.status, "reserved")
        assert.strictEqual(reserved?.payBy, order.payBy)
        yield* store.commit(batchOf(saleId, epoch, { paid: [{ orderId: order.orderId, at: Date.now() }] }))
        assert.strictEqual((yield* rowOf(order.orderId))?.status, "paid")
        assert.isTrue((yield* rowOf(order.orderId))?.paid)
        yield* store.commit(
          batchOf(saleId, epoch, { ended: [{ orderId: order.orderId, status: "expired" }] })
        )
        assert.strictEqual((yield* rowOf(order.orderId))?.status, "paid")
        assert.strictEqual(yield* available(saleId), 0)
      })
    )

    it.effect("gives an expired unit back once, and sells it again in the same batch", () =>
      Effect.gen(function* () {
        const store = yield* OrderStore
        const [first, second] = yield* makeUsers(2)
        const saleId = yield* makeSale(1, { holdSeconds: 1 })
        const { epoch } = yield* store.claim(saleId)
        const lapsing = held(first!, Date.now() + 1_000)
        yield* store.commit(batchOf(saleId, epoch, { orders: [lapsing] }))
        assert.strictEqual(yield* available(saleId), 0)
        const next = held(second!, Date.now() + 1_000)
        yield* store.commit(
          batchOf(saleId, epoch, { orders: [next], ended: [{ orderId: lapsing.orderId, status: "expired" }] })
        )
        assert.strictEqual((yield* rowOf(lapsing.orderId))?.status, "expired")
        assert.strictEqual((yield* rowOf(next.orderId))?.status, "reserved")
        assert.strictEqual(yield* available(saleId), 0)
        // Expired again (a retried batch, a confused owner): the unit is not given back twice,
        // and a payment for it changes nothing.
        yield* store.commit(
          batchOf(saleId, epoch, {
            ended: [{ orderId: lapsing.orderId, status: "expired" }],
            paid: [{ orderId: lapsing.orderId, at: Date.now() }]
          })
        )
        assert.strictEqual(yield* available(saleId), 0)
        assert.strictEqual((yield* rowOf(lapsing.orderId))?.status, "expired")
        // The new owner's snapshot has only the live order.
        const { snapshot } = yield* store.claim(saleId)
        assert.deepStrictEqual([...snapshot.buyers.entries()], [[second!, next.orderId]])
      })
    )

    it.effect("lets a fenced owner expire nothing", () =>
      Effect.gen(function* () {
        const store = yield* OrderStore
        const [buyer, other] = yield* makeUsers(2)
        const saleId = yield* makeSale(1, { holdSeconds: 1 })
        const stale = yield* store.claim(saleId)
        const order = held(buyer!, Date.now() + 1_000)
        yield* store.commit(batchOf(saleId, stale.epoch, { orders: [order] }))
        yield* store.claim(saleId)
        const exit = yield* Effect.exit(
          store.commit(
            batchOf(saleId, stale.epoch, {
              orders: [held(other!, Date.now() + 1_000)],
              ended: [{ orderId: order.orderId, status: "expired" }]
            })
          )
        )
        assert.strictEqual(failureTag(exit), "StaleEpoch")
        assert.strictEqual((yield* rowOf(order.orderId))?.status, "reserved")
        assert.strictEqual(yield* available(saleId), 0)
        const paying = yield* Effect.exit(
          store.commit(batchOf(saleId, stale.epoch, { paid: [{ orderId: order.orderId, at: Date.now() }] }))
        )
        assert.strictEqual(failureTag(paying), "StaleEpoch")
        assert.strictEqual((yield* rowOf(order.orderId))?.status, "reserved")
      })
    )
  }
)

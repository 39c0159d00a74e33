import { Context, Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import type { OrderId, SaleId, UserId } from "../domain/Ids.ts"

export interface OrderRow {
  readonly orderId: OrderId
  readonly saleId: SaleId
  readonly priceCents: number
  readonly createdAt: number
  readonly status: "reserved" | "paid" | "expired" | "cancelled" | "refunded"
  readonly payBy: number | null
}

/** Reads of committed orders, for buyers looking at what they bought. */
export class OrderQueries extends Context.Service<
  OrderQueries,
  {
    readonly inSale: (
      saleId: SaleId,
      userId: UserId
    ) => Effect.Effect<OrderRow | undefined, SqlError.SqlError>
    readonly ofUser: (userId: UserId) => Effect.Effect<ReadonlyArray<OrderRow>, SqlError.SqlError>
  }
>()("mincommerce/storage/OrderQueries") {
  static readonly layer = Layer.effect(
    OrderQueries,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const columns = sql`
        id AS "orderId", sale_id AS "saleId", price_cents AS "priceCents",
        (extract(epoch FROM created_at) * 1000)::float8 AS "createdAt", status,
        (extract(epoch FROM pay_by) * 1000)::float8 AS "payBy"`
      const inSale = Effect.fn("OrderQueries.inSale")(function* (saleId: SaleId, userId: UserId) {
        const rows = yield* sql<OrderRow>`
          SELECT ${columns} FROM orders WHERE sale_id = ${saleId} AND user_id = ${userId}
          ORDER BY status IN ('reserved', 'paid') DESC, created_at DESC LIMIT 1`
        return rows[0]
      })
      const ofUser = Effect.fn("OrderQueries.ofUser")(function* (userId: UserId) {
        return yield* sql<OrderRow>`
          SELECT ${columns} FROM orders WHERE user_id = ${userId} ORDER BY created_at DESC LIMIT 1000`
      })
      return OrderQueries.of({ inSale, ofUser })
    })
  )
}

import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { Catalog } from "./storage/Catalog.ts"

/**
 * A fresh node has something to sell: when no sale is upcoming or running, a demo product
 * goes on sale shortly after start.
 */
export const DemoSale = Layer.effectDiscard(
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const catalog = yield* Catalog
    const live = yield* sql<{ n: number }>`
      SELECT count(*)::int AS n FROM flash_sales WHERE status = 'scheduled' AND ends_at > now()`
    if ((live[0]?.n ?? 0) > 0) return
    const productId = yield* catalog.createProduct(
      "MinCommerce demo sneaker",
      "A limited run, to try a flash sale end to end."
    )
    const startsAt = Date.now() + 30_000
    const saleId = yield* catalog.createSale({
      productId,
      priceCents: 9_900,
      stock: 1_000,
      startsAt,
      endsAt: startsAt + 3_600_000
    })
    yield* Effect.logInfo("demo sale created", {
      saleId,
      startsAt: new Date(startsAt).toISOString(),
      stock: 1_000
    })
  })
)

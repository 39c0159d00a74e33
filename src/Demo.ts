import { Effect, Layer } from "effect"
import { Products } from "./storage/Products.ts"
import { Sales } from "./storage/Sales.ts"

/**
 * A fresh node has something to sell: when no sale is upcoming or running, a demo product
 * goes on sale shortly after start.
 */
export const DemoSale = Layer.effectDiscard(
  Effect.gen(function* () {
    const products = yield* Products
    const sales = yield* Sales
    if ((yield* sales.current) !== undefined) return
    const productId = yield* products.create(
      "MinCommerce demo sneaker",
      "A limited run, to try a flash sale end to end."
    )
    const startsAt = Date.now() + 30_000
    const saleId = yield* sales
      .create({
        productId,
        priceCents: 9_900,
        stock: 1_000,
        startsAt,
        endsAt: startsAt + 3_600_000
      })
      .pipe(
        // The product was created just above.
        Effect.catchTag("ProductNotFound", Effect.die)
      )
    yield* Effect.logInfo("demo sale created", {
      saleId,
      startsAt: new Date(startsAt).toISOString(),
      stock: 1_000
    })
  })
)

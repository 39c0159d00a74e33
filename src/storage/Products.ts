import { Context, Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import { ProductNotFound } from "../domain/Errors.ts"
import type { ProductId } from "../domain/Ids.ts"

export interface ProductChanges {
  readonly name?: string | undefined
  readonly description?: string | undefined
}

/** What the shop sells, apart from when and at what price (a sale). */
export class Products extends Context.Service<
  Products,
  {
    readonly create: (name: string, description: string) => Effect.Effect<ProductId, SqlError.SqlError>
    readonly update: (
      productId: ProductId,
      changes: ProductChanges
    ) => Effect.Effect<void, ProductNotFound | SqlError.SqlError>
  }
>()("mincommerce/storage/Products") {
  static readonly layer = Layer.effect(
    Products,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient

      const create = Effect.fn("Products.create")(function* (name: string, description: string) {
        const [row] = yield* sql<{ id: ProductId }>`
          INSERT INTO products (name, description) VALUES (${name}, ${description}) RETURNING id`
        if (row === undefined) return yield* Effect.die(new Error("product insert returned no row"))
        return row.id
      })

      const update = Effect.fn("Products.update")(function* (productId: ProductId, changes: ProductChanges) {
        const rows = yield* sql`
          UPDATE products SET name = coalesce(${changes.name ?? null}, name),
                 description = coalesce(${changes.description ?? null}, description), updated_at = now()
          WHERE id = ${productId} RETURNING id`
        if (rows.length === 0) return yield* new ProductNotFound({ productId })
      })

      return Products.of({ create, update })
    })
  )
}

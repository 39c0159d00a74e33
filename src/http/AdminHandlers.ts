import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import type { SqlError } from "effect/sql"
import { SaleRegistry } from "../actors/SaleRegistry.ts"
import type { SaleId } from "../domain/Ids.ts"
import { Catalog } from "../storage/Catalog.ts"
import { sqlState } from "../storage/Database.ts"
import { Api, apiError, saleNotFound, BadRequest, Conflict, CurrentUser, Forbidden, NotFound } from "./Api.ts"
import { presentSale } from "./SaleView.ts"

const forbidden = apiError(Forbidden, { code: "forbidden", message: "Admins only" })

const requireAdmin = Effect.flatMap(CurrentUser, (user) =>
  user.admin ? Effect.void : Effect.fail(forbidden)
)

/** An ISO instant as epoch milliseconds, or a 400 naming the field. */
const instant = (field: string, value: string | undefined) => {
  if (value === undefined) return Effect.succeed(undefined)
  const millis = Date.parse(value)
  return Number.isFinite(millis)
    ? Effect.succeed(millis)
    : Effect.fail(
        apiError(BadRequest, {
          code: "invalid_request",
          message: `Invalid payload: ${field} is not an ISO-8601 instant`,
          details: { in: "payload", path: [field] }
        })
      )
}

// SQLSTATE 23503: foreign_key_violation.
const isForeignKeyViolation = (error: SqlError.SqlError) => sqlState(error) === "23503"

const badWindow = apiError(BadRequest, {
  code: "invalid_request",
  message: "Invalid payload: endsAt must be after startsAt",
  details: { in: "payload", path: ["endsAt"] }
})

export const AdminHandlers = HttpApiBuilder.group(Api, "admin", (handlers) =>
  Effect.gen(function* () {
    const catalog = yield* Catalog
    const registry = yield* SaleRegistry

    const saleView = Effect.fnUntraced(function* (saleId: SaleId) {
      const row = yield* catalog.sale(saleId).pipe(Effect.orDie)
      if (row === undefined) return yield* saleNotFound(saleId)
      return presentSale(registry, row)
    })

    return handlers
      .handle("createProduct", ({ payload }) =>
        Effect.gen(function* () {
          yield* requireAdmin
          const productId = yield* catalog
            .createProduct(payload.name, payload.description ?? "")
            .pipe(Effect.orDie)
          return { productId }
        })
      )
      .handle("updateProduct", ({ params, payload }) =>
        Effect.gen(function* () {
          yield* requireAdmin
          const found = yield* catalog.updateProduct(params.productId, payload).pipe(Effect.orDie)
          if (!found)
            return yield* apiError(NotFound, { code: "product_not_found", message: "No such product" })
          return { productId: params.productId }
        })
      )
      .handle("createSale", ({ payload }) =>
        Effect.gen(function* () {
          yield* requireAdmin
          const startsAt = (yield* instant("startsAt", payload.startsAt))!
          const endsAt = (yield* instant("endsAt", payload.endsAt))!
          if (endsAt <= startsAt) return yield* badWindow
          const saleId = yield* catalog
            .createSale({
              productId: payload.productId,
              priceCents: payload.priceCents,
              stock: payload.stock,
              startsAt,
              endsAt
            })
            .pipe(
              Effect.catchTag("SqlError", (error) =>
                // The only foreign key a valid payload can miss is the product's.
                isForeignKeyViolation(error)
                  ? Effect.fail(apiError(NotFound, { code: "product_not_found", message: "No such product" }))
                  : Effect.die(error)
              )
            )
          return yield* saleView(saleId)
        })
      )
      .handle("updateSale", ({ params, payload }) =>
        Effect.gen(function* () {
          yield* requireAdmin
          const startsAt = yield* instant("startsAt", payload.startsAt)
          const endsAt = yield* instant("endsAt", payload.endsAt)
          const current = yield* catalog.sale(params.saleId).pipe(Effect.orDie)
          if (current === undefined) return yield* saleNotFound(params.saleId)
          if ((endsAt ?? current.endsAt) <= (startsAt ?? current.startsAt)) return yield* badWindow
          // An actor of this node holds the old schedule and stock: it drains and flushes its
          // audit records first. The update then fences any owner elsewhere (Catalog.updateSale).
          yield* registry.stop(params.saleId)
          const result = yield* catalog
            .updateSale(params.saleId, {
              priceCents: payload.priceCents,
              stock: payload.stock,
              startsAt,
              endsAt
            })
            .pipe(Effect.orDie)
          if (result === "missing") return yield* saleNotFound(params.saleId)
          if (result === "cancelled") {
            return yield* apiError(Conflict, {
              code: "sale_cancelled",
              message: "A cancelled sale cannot be changed"
            })
          }
          if (result === "started") {
            return yield* apiError(Conflict, {
              code: "sale_started",
              message: "Only a sale that has not started can be changed"
            })
          }
          return yield* saleView(params.saleId)
        })
      )
      .handle("cancelSale", ({ params }) =>
        Effect.gen(function* () {
          yield* requireAdmin
          const row = yield* catalog.sale(params.saleId).pipe(Effect.orDie)
          if (row === undefined) return yield* saleNotFound(params.saleId)
          // Refused here at once, and what this node's actor decided is flushed; the cancel then
          // fences any owner elsewhere, whose next commit fails and whose successor reloads.
          const running = registry.running(params.saleId)
          if (running !== undefined) {
            yield* running.cancel
            yield* registry.stop(params.saleId)
          }
          yield* catalog.cancelSale(params.saleId).pipe(Effect.orDie)
          return yield* saleView(params.saleId)
        })
      )
      .handle("saleStats", ({ params }) =>
        Effect.gen(function* () {
          yield* requireAdmin
          const sale = yield* saleView(params.saleId)
          const stats = yield* catalog.saleStats(params.saleId).pipe(Effect.orDie)
          return {
            saleId: sale.saleId,
            status: sale.status,
            total: sale.total,
            remaining: sale.remaining,
            attempts: stats.attempts,
            byOutcome: stats.byOutcome,
            committed: stats.committed,
            soldOutAt: stats.soldOutAt === null ? null : new Date(stats.soldOutAt).toISOString(),
            recentPurchasesPerSecond: stats.recentPerSecond,
            commitLatencyMillis: stats.commitMillis
          }
        })
      )
  })
)

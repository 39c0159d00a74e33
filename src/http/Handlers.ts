import { Effect, Layer, Option, Redacted } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { SqlClient } from "effect/sql"
import { SaleRegistry } from "../actors/SaleRegistry.ts"
import { statusAt } from "../actors/SaleState.ts"
import type { SaleId } from "../domain/Ids.ts"
import { Catalog, type SaleRow } from "../storage/Catalog.ts"
import { Database } from "../storage/Database.ts"
import {
  Api,
  apiError,
  Authentication,
  Conflict,
  CurrentUser,
  NotFound,
  Unauthorized,
  Unavailable
} from "./Api.ts"
import { Tokens } from "./Tokens.ts"

const saleNotFound = (saleId: string) =>
  apiError(NotFound, { code: "sale_not_found", message: "No such sale", details: { saleId } })

export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.gen(function* () {
    const tokens = yield* Tokens
    const rejected = apiError(Unauthorized, {
      code: "unauthorized",
      message: "Missing, invalid or expired token"
    })
    return Authentication.of({
      bearer: Effect.fnUntraced(function* (effect, { credential }) {
        const session = yield* tokens.verify(Redacted.value(credential))
        if (Option.isNone(session)) return yield* rejected
        return yield* Effect.provideService(effect, CurrentUser, session.value)
      })
    })
  })
)

export const AuthHandlers = HttpApiBuilder.group(Api, "auth", (handlers) =>
  Effect.gen(function* () {
    const catalog = yield* Catalog
    const tokens = yield* Tokens
    return handlers.handle("login", ({ payload }) =>
      Effect.gen(function* () {
        const email = payload.email.toLowerCase()
        const userId = yield* catalog.userByEmail(email)
        const { token, admin } = yield* tokens.issue(userId, email)
        return { token, userId, email, admin }
      }).pipe(Effect.orDie)
    )
  })
)

export const SalesHandlers = HttpApiBuilder.group(Api, "sales", (handlers) =>
  Effect.gen(function* () {
    const catalog = yield* Catalog
    const registry = yield* SaleRegistry
    // The owner's memory is the freshest view of a running sale; otherwise the stock row.
    const present = (row: SaleRow) => {
      const now = Date.now()
      const running = registry.running(row.saleId)?.view(now)
      const remaining = running?.remaining ?? row.available
      return {
        saleId: row.saleId,
        productName: row.productName,
        priceCents: row.priceCents,
        startsAt: new Date(row.startsAt).toISOString(),
        endsAt: new Date(row.endsAt).toISOString(),
        status: running?.status ?? statusAt({ ...row, remaining }, now),
        total: row.total,
        remaining
      }
    }
    return handlers
      .handle("list", () =>
        catalog.sales().pipe(
          Effect.map((rows) => rows.map(present)),
          Effect.orDie
        )
      )
      .handle("get", ({ params }) =>
        Effect.gen(function* () {
          const row = yield* catalog.sale(params.saleId).pipe(Effect.orDie)
          if (row === undefined) return yield* saleNotFound(params.saleId)
          return present(row)
        })
      )
  })
)

export const PurchaseHandlers = HttpApiBuilder.group(Api, "purchase", (handlers) =>
  Effect.gen(function* () {
    const registry = yield* SaleRegistry
    const purchase = Effect.fnUntraced(function* (saleId: SaleId) {
      const user = yield* CurrentUser
      const outcome = yield* registry.purchase(saleId, user.userId).pipe(
        Effect.catchTags({
          SaleNotFound: () => Effect.fail(saleNotFound(saleId)),
          Overloaded: (e) =>
            Effect.fail(
              apiError(Unavailable, {
                code: "overloaded",
                message: "Too many buyers at once; try again shortly",
                details: { retryAfterSeconds: e.retryAfterSeconds }
              })
            ),
          PurchaseUnavailable: (e) =>
            Effect.fail(
              apiError(Unavailable, {
                code: "unavailable",
                message: "The purchase was not completed; it is safe to try again",
                details: { reason: e.reason, retryAfterSeconds: e.retryAfterSeconds }
              })
            ),
          SqlError: (e) => Effect.die(e)
        })
      )
      switch (outcome._tag) {
        case "Accepted":
          return { orderId: outcome.orderId, saleId, status: "purchased", alreadyPurchased: false } as const
        case "AlreadyPurchased":
          return { orderId: outcome.orderId, saleId, status: "purchased", alreadyPurchased: true } as const
        case "SoldOut":
          return yield* apiError(Conflict, { code: "sold_out", message: "Every unit is sold" })
        case "NotStarted":
          return yield* apiError(Conflict, {
            code: "sale_not_active",
            message: "The sale has not started",
            details: { reason: "not_started", startsAt: new Date(outcome.startsAt).toISOString() }
          })
        case "Ended":
          return yield* apiError(Conflict, {
            code: "sale_not_active",
            message: "The sale is over",
            details: { reason: "ended" }
          })
        case "Cancelled":
          return yield* apiError(Conflict, {
            code: "sale_not_active",
            message: "The sale was cancelled",
            details: { reason: "cancelled" }
          })
      }
    })
    return handlers.handle("purchase", ({ params }) => purchase(params.saleId))
  })
)

export const HealthHandlers = HttpApiBuilder.group(Api, "health", (handlers) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const database = yield* Database
    const reachable = sql`SELECT 1`.pipe(
      Effect.timeout("2 seconds"),
      Effect.as(true),
      Effect.orElseSucceed(() => false)
    )
    return handlers
      .handle("health", () => Effect.succeed({ status: "ok" as const, database: database.mode }))
      .handle("live", () => Effect.succeed({ status: "ok" as const }))
      .handle("ready", () =>
        Effect.flatMap(reachable, (ok) =>
          ok
            ? Effect.succeed({ status: "ready" as const })
            : Effect.fail(
                apiError(Unavailable, { code: "database_unreachable", message: "PostgreSQL does not answer" })
              )
        )
      )
  })
)

export const ApiHandlers = Layer.mergeAll(AuthHandlers, SalesHandlers, PurchaseHandlers, HealthHandlers).pipe(
  Layer.provide(AuthenticationLive)
)

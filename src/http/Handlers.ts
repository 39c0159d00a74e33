import { Effect, Layer } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { SqlClient } from "effect/sql"
import { SaleRouter } from "../cluster/SaleRouter.ts"
import { Database } from "../storage/Database.ts"
import { Api } from "./Api.ts"
import { NotReady } from "./ApiErrors.ts"
import { AuthenticationLive, ErrorAnswersLive } from "./ApiMiddleware.ts"
import { AdminHandlers } from "./AdminHandlers.ts"
import { OrdersHandlers } from "./CheckoutHandlers.ts"
import { IdentityHandlers } from "./AuthHandlers.ts"
import { PurchaseHandlers } from "./PurchaseHandlers.ts"
import { CurrentSaleHandlers, SalesHandlers } from "./SaleReadHandlers.ts"

export const HealthHandlers = HttpApiBuilder.group(Api, "health", (handlers) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const database = yield* Database
    const router = yield* SaleRouter
    const reachable = sql`SELECT 1`.pipe(
      Effect.timeout("2 seconds"),
      Effect.as(true),
      Effect.orElseSucceed(() => false)
    )
    return (
      handlers
        .handle("health", () => Effect.succeed({ status: "ok" as const, database: database.mode }))
        .handle("live", () => Effect.succeed({ status: "ok" as const }))
        // The node serves only after its migrations ran, so answering at all says they did.
        .handle("ready", () =>
          Effect.gen(function* () {
            const [databaseUp, ownershipUp, readiness] = yield* Effect.all(
              [reachable, router.ready, router.readiness],
              { concurrency: 3 }
            )
            if (!databaseUp) {
              return yield* new NotReady({
                error: {
                  code: "database_unreachable",
                  message: "PostgreSQL does not answer",
                  details: { retryAfterSeconds: 1 }
                }
              })
            }
            if (!ownershipUp) {
              return yield* new NotReady({
                error: {
                  code: "ownership_unavailable",
                  message: "Redis does not answer: this node cannot tell who owns a sale",
                  details: { retryAfterSeconds: 1 }
                }
              })
            }
            // Redis away: the node keeps selling what it owns and forwarding along known
            // routes, so it stays in the load balancer, and says it is degraded.
            return readiness === "degraded"
              ? { status: "degraded" as const, ownership: "redis_unreachable" as const }
              : { status: "ready" as const }
          })
        )
    )
  })
)

export const ApiHandlers = Layer.mergeAll(
  IdentityHandlers,
  SalesHandlers,
  CurrentSaleHandlers,
  PurchaseHandlers,
  AdminHandlers,
  OrdersHandlers,
  HealthHandlers
).pipe(Layer.provide(Layer.mergeAll(AuthenticationLive, ErrorAnswersLive)))

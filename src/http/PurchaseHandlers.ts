import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { isRefusal, type Reply } from "../actors/SaleActor.ts"
import { SaleRouter } from "../cluster/SaleRouter.ts"
import type { SaleId, UserId } from "../domain/Ids.ts"
import { Catalog } from "../storage/Catalog.ts"
import { OrderQueries, type OrderRow } from "../storage/OrderQueries.ts"
import { Limits } from "./Limits.ts"
import { countOutcome } from "./Metrics.ts"
import { purchaseAnswer } from "./PurchaseAnswer.ts"
import {
  Api,
  apiError,
  noCurrentSale,
  saleNotFound,
  Conflict,
  CurrentUser,
  Forbidden,
  Unavailable
} from "./Api.ts"

const orderView = (order: OrderRow) => ({
  orderId: order.orderId,
  saleId: order.saleId,
  priceCents: order.priceCents,
  createdAt: new Date(order.createdAt).toISOString()
})

export const PurchaseHandlers = HttpApiBuilder.group(Api, "purchase", (handlers) =>
  Effect.gen(function* () {
    const router = yield* SaleRouter
    const catalog = yield* Catalog
    const orders = yield* OrderQueries
    const limits = yield* Limits

    // The hot path: the user comes from the verified token, the decision from the sale's
    // actor; no log line, no extra database round trip.
    const purchase = Effect.fnUntraced(function* (saleId: SaleId) {
      const user = yield* CurrentUser
      yield* limits.take(user.userId)
      const reply: Reply = yield* router.purchase(saleId, user.userId).pipe(
        Effect.catchTags({
          SaleNotFound: () => Effect.fail(saleNotFound(saleId)),
          Overloaded: (refusal) => Effect.succeed(refusal),
          PurchaseUnavailable: (refusal) => Effect.succeed(refusal)
        })
      )
      if (!isRefusal(reply)) yield* countOutcome(reply._tag)
      const answer = purchaseAnswer(saleId, reply)
      if ("order" in answer) {
        return answer.order.alreadyPurchased
          ? { ...answer.order, alreadyPurchased: true as const }
          : { ...answer.order, alreadyPurchased: false as const }
      }
      return yield* answer.status === 409
        ? apiError(Conflict, answer.error)
        : apiError(Unavailable, answer.error)
    })

    const currentSaleId = Effect.flatMap(catalog.currentSale().pipe(Effect.orDie), (row) =>
      row === undefined ? Effect.fail(noCurrentSale()) : Effect.succeed(row.saleId)
    )

    const mine = Effect.fnUntraced(function* (saleId: SaleId) {
      const user = yield* CurrentUser
      const order = yield* orders.inSale(saleId, user.userId).pipe(Effect.orDie)
      return { saleId, purchased: order !== undefined, order: order === undefined ? null : orderView(order) }
    })

    const ofUser = Effect.fnUntraced(function* (userId: UserId) {
      const user = yield* CurrentUser
      if (user.userId !== userId && !user.admin) {
        return yield* apiError(Forbidden, { code: "forbidden", message: "These orders are not yours" })
      }
      return (yield* orders.ofUser(userId).pipe(Effect.orDie)).map(orderView)
    })

    return handlers
      .handle("purchase", ({ params }) => purchase(params.saleId))
      .handle("attempt", () => Effect.flatMap(currentSaleId, purchase))
      .handle("mine", ({ params }) =>
        Effect.gen(function* () {
          const sale = yield* catalog.sale(params.saleId).pipe(Effect.orDie)
          if (sale === undefined) return yield* saleNotFound(params.saleId)
          return yield* mine(params.saleId)
        })
      )
      .handle("status", () => Effect.flatMap(currentSaleId, mine))
      .handle("ofUser", ({ params }) => ofUser(params.userId))
  })
)

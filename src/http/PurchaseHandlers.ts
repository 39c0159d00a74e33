import { Effect } from "effect"
import { HttpServerRequest } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import type { SaleId, UserId } from "../domain/Ids.ts"
import { SaleWatch } from "../cluster/SaleWatch.ts"
import { DrawRecords } from "../storage/DrawRecords.ts"
import { OrderQueries, type OrderRow } from "../storage/OrderQueries.ts"
import { Sales } from "../storage/Sales.ts"
import { AdminRole } from "./AdminRole.ts"
import { Api, CurrentUser } from "./Api.ts"
import { noCurrentSale, NotYourOrders, saleNotFound } from "./ApiErrors.ts"
import { entryView } from "./DrawHandlers.ts"
import { addressOf } from "./Limits.ts"
import { PurchaseEndpoint } from "./PurchaseEndpoint.ts"

const orderView = (order: OrderRow) => ({
  orderId: order.orderId,
  saleId: order.saleId,
  priceCents: order.priceCents,
  createdAt: new Date(order.createdAt).toISOString()
})

const notYours = new NotYourOrders({ error: { code: "forbidden", message: "These orders are not yours" } })

export const PurchaseHandlers = HttpApiBuilder.group(Api, "purchase", (handlers) =>
  Effect.gen(function* () {
    const endpoint = yield* PurchaseEndpoint
    const sales = yield* Sales
    const orders = yield* OrderQueries
    const role = yield* AdminRole
    const records = yield* DrawRecords
    const watch = yield* SaleWatch

    // The hot path: the user comes from the verified token, the decision from the sale's
    // owner, the answer from the endpoint the node:http route shares; no log line, no extra
    // database round trip.
    const purchase = Effect.fnUntraced(function* (saleId: SaleId) {
      const user = yield* CurrentUser
      const request = yield* HttpServerRequest.HttpServerRequest
      return yield* endpoint.purchase(saleId, user.userId, addressOf(request))
    })

    const currentSaleId = Effect.flatMap(sales.current.pipe(Effect.orDie), (row) =>
      row === undefined ? Effect.fail(noCurrentSale()) : Effect.succeed(row.saleId)
    )

    const mine = Effect.fnUntraced(function* (saleId: SaleId) {
      const user = yield* CurrentUser
      const order = yield* orders.inSale(saleId, user.userId).pipe(Effect.orDie)
      return { saleId, purchased: order !== undefined, order: order === undefined ? null : orderView(order) }
    })

    const ofUser = Effect.fnUntraced(function* (userId: UserId) {
      const user = yield* CurrentUser
      if (user.userId !== userId && !(yield* role.isAdmin(user))) return yield* notYours
      return (yield* orders.ofUser(userId).pipe(Effect.orDie)).map(orderView)
    })

    return handlers
      .handle("purchase", ({ params }) => purchase(params.saleId))
      .handle("attempt", () => Effect.flatMap(currentSaleId, purchase))
      .handle("mine", ({ params }) =>
        Effect.gen(function* () {
          const sale = yield* sales.find(params.saleId).pipe(Effect.orDie)
          if (sale === undefined) return yield* saleNotFound(params.saleId)
          return yield* mine(params.saleId)
        })
      )
      .handle("status", () => Effect.flatMap(currentSaleId, mine))
      .handle("entry", ({ params }) =>
        Effect.flatMap(CurrentUser, (user) => entryView(records, watch, params.saleId, user.userId))
      )
      .handle("ofUser", ({ params }) => ofUser(params.userId))
  })
)

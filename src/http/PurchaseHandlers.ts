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
import { noCurrentSale, NotYourOrders, proofOfWorkNotRequired, saleNotFound } from "./ApiErrors.ts"
import { entryView } from "./DrawHandlers.ts"
import { addressOf, Limits } from "./Limits.ts"
import { ProofOfWork, proofHeader } from "./ProofOfWork.ts"
import { PurchaseEndpoint } from "./PurchaseEndpoint.ts"
import { SaleRules } from "./SaleRules.ts"

const orderView = (order: OrderRow) => ({
  orderId: order.orderId,
  saleId: order.saleId,
  priceCents: order.priceCents,
  createdAt: new Date(order.createdAt).toISOString(),
  status: order.status,
  payBy: order.payBy === null ? null : new Date(order.payBy).toISOString()
})

const notYours = new NotYourOrders({ error: { code: "forbidden", message: "These orders are not yours" } })

export const PurchaseHandlers = HttpApiBuilder.group(Api, "purchase", (handlers) =>
  Effect.gen(function* () {
    const endpoint = yield* PurchaseEndpoint
    const sales = yield* Sales
    const orders = yield* OrderQueries
    const role = yield* AdminRole
    const rules = yield* SaleRules
    const proofOfWork = yield* ProofOfWork
    const limits = yield* Limits
    const records = yield* DrawRecords
    const watch = yield* SaleWatch

    // The hot path: the user comes from the verified token, the decision from the sale's
    // owner, the answer from the endpoint the node:http route shares; no log line, no extra
    // database round trip.
    const purchase = Effect.fnUntraced(function* (saleId: SaleId) {
      const user = yield* CurrentUser
      const request = yield* HttpServerRequest.HttpServerRequest
      return yield* endpoint.purchase(saleId, user, addressOf(request), request.headers[proofHeader])
    })

    // A challenge costs the node one key derivation (on the thread pool), so asking for one
    // takes from the buyer's purchase rate limit; an account the sale refuses gets none.
    const challenge = Effect.fnUntraced(function* (saleId: SaleId) {
      const user = yield* CurrentUser
      const request = yield* HttpServerRequest.HttpServerRequest
      const saleRules = yield* rules.load(saleId)
      if (saleRules === undefined) return yield* saleNotFound(saleId)
      const limited = limits.take(addressOf(request), user.userId)
      if (limited !== undefined) return yield* limited
      if (saleRules.powDifficulty === undefined) return yield* proofOfWorkNotRequired()
      const tooNew = yield* rules.resolve(saleRules, user)
      if (tooNew !== undefined) return yield* tooNew
      return yield* proofOfWork.issue(saleId, user.userId, saleRules.powDifficulty)
    })

    const currentSaleId = Effect.flatMap(sales.current.pipe(Effect.orDie), (row) =>
      row === undefined ? Effect.fail(noCurrentSale()) : Effect.succeed(row.saleId)
    )

    const mine = Effect.fnUntraced(function* (saleId: SaleId) {
      const user = yield* CurrentUser
      const order = yield* orders.inSale(saleId, user.userId).pipe(Effect.orDie)
      // A hold that expired or was cancelled unpaid bought nothing; its order is still shown.
      const purchased = order !== undefined && (order.status === "paid" || order.status === "reserved")
      return { saleId, purchased, order: order === undefined ? null : orderView(order) }
    })

    const ofUser = Effect.fnUntraced(function* (userId: UserId) {
      const user = yield* CurrentUser
      if (user.userId !== userId && !(yield* role.isAdmin(user))) return yield* notYours
      return (yield* orders.ofUser(userId).pipe(Effect.orDie)).map(orderView)
    })

    return handlers
      .handle("purchase", ({ params }) => purchase(params.saleId))
      .handle("attempt", () => Effect.flatMap(currentSaleId, purchase))
      .handle("challenge", ({ params }) => challenge(params.saleId))
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

import { Context, Schema } from "effect"
import {
  HttpApi,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpApiSchema,
  HttpApiSecurity,
  OpenApi
} from "effect/http-api"
import { OrderId, ProductId, SaleId, UserId } from "../domain/Ids.ts"

/**
 * The HTTP surface, stated once: every path, schema and error. Handlers, OpenAPI and the
 * typed client used by the tests all derive from it.
 */

// Every error answers `{ error: { code, message, details? } }` with a stable code.
const ErrorBody = Schema.Struct({
  code: Schema.String,
  message: Schema.String,
  details: Schema.optional(Schema.Unknown)
})
type ErrorBody = typeof ErrorBody.Type

export class BadRequest extends Schema.TaggedError<BadRequest>()(
  "BadRequest",
  { error: ErrorBody },
  { httpApiStatus: 400 }
) {}
export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { error: ErrorBody },
  { httpApiStatus: 401 }
) {}
export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  { error: ErrorBody },
  { httpApiStatus: 403 }
) {}
export class NotFound extends Schema.TaggedError<NotFound>()(
  "NotFound",
  { error: ErrorBody },
  { httpApiStatus: 404 }
) {}
export class Conflict extends Schema.TaggedError<Conflict>()(
  "Conflict",
  { error: ErrorBody },
  { httpApiStatus: 409 }
) {}
export class TooManyRequests extends Schema.TaggedError<TooManyRequests>()(
  "TooManyRequests",
  { error: ErrorBody },
  { httpApiStatus: 429 }
) {}
export class Unavailable extends Schema.TaggedError<Unavailable>()(
  "Unavailable",
  { error: ErrorBody },
  { httpApiStatus: 503 }
) {}

export const apiError = <E>(make: new (fields: { readonly error: ErrorBody }) => E, error: ErrorBody): E =>
  new make({ error })

export const saleNotFound = (saleId: string) =>
  apiError(NotFound, { code: "sale_not_found", message: "No such sale", details: { saleId } })

export const noCurrentSale = () =>
  apiError(NotFound, { code: "no_current_sale", message: "No sale is running or upcoming" })

export class CurrentUser extends Context.Service<
  CurrentUser,
  { readonly userId: UserId; readonly email: string; readonly admin: boolean }
>()("mincommerce/http/CurrentUser") {}

/** Bearer JWT from `POST /api/auth/login`; the user of a purchase always comes from here. */
export class Authentication extends HttpApiMiddleware.Service<Authentication, { provides: CurrentUser }>()(
  "mincommerce/http/Authentication",
  { security: { bearer: HttpApiSecurity.bearer }, error: Unauthorized }
) {}

export const SaleStatus = Schema.Literals(["upcoming", "active", "sold_out", "ended", "cancelled"])

export const SaleView = Schema.Struct({
  saleId: SaleId,
  productName: Schema.String,
  priceCents: Schema.Int,
  startsAt: Schema.String,
  endsAt: Schema.String,
  status: SaleStatus,
  total: Schema.Int,
  remaining: Schema.Int
})

/** 201: a new order, committed. */
export const Purchased = Schema.Struct({
  orderId: OrderId,
  saleId: SaleId,
  status: Schema.Literal("purchased"),
  alreadyPurchased: Schema.Literal(false)
}).pipe(HttpApiSchema.status(201))

/** 200: this buyer had bought already; the existing order, not a second one (retries are safe). */
export const AlreadyPurchased = Schema.Struct({
  orderId: OrderId,
  saleId: SaleId,
  status: Schema.Literal("purchased"),
  alreadyPurchased: Schema.Literal(true)
})

const Email = Schema.String.check(Schema.isTrimmed(), Schema.isMinLength(3), Schema.isMaxLength(254)).check(
  Schema.isPattern(/^[^@\s]+@[^@\s]+$/)
)

export const OrderView = Schema.Struct({
  orderId: OrderId,
  saleId: SaleId,
  priceCents: Schema.Int,
  createdAt: Schema.String
})

export const MyPurchase = Schema.Struct({
  saleId: SaleId,
  purchased: Schema.Boolean,
  order: Schema.NullOr(OrderView)
})

export class AuthGroup extends HttpApiGroup.make("auth").add(
  HttpApiEndpoint.post("login", "/api/auth/login", {
    payload: Schema.Struct({ email: Email }),
    success: Schema.Struct({
      token: Schema.String,
      userId: UserId,
      email: Schema.String,
      admin: Schema.Boolean
    }),
    error: [BadRequest, TooManyRequests]
  })
) {}

export class SalesGroup extends HttpApiGroup.make("sales")
  .add(
    HttpApiEndpoint.get("list", "/api/sales", { success: Schema.Array(SaleView) }),
    HttpApiEndpoint.get("get", "/api/sales/:saleId", {
      params: { saleId: SaleId },
      success: SaleView,
      error: [NotFound, BadRequest]
    })
  )
  .annotateMerge(OpenApi.annotations({ title: "Sales" })) {}

/** The seed's contract, kept: the "current" sale is the running one, else the next. */
export class CurrentSaleGroup extends HttpApiGroup.make("currentSale")
  .add(
    HttpApiEndpoint.get("status", "/api/flash-sale/status", { success: SaleView, error: NotFound }),
    HttpApiEndpoint.get("stats", "/api/flash-sale/stats", {
      success: Schema.Struct({
        saleId: SaleId,
        status: SaleStatus,
        total: Schema.Int,
        sold: Schema.Int,
        remaining: Schema.Int
      }),
      error: NotFound
    })
  )
  .annotateMerge(OpenApi.annotations({ title: "Current sale (seed contract)" })) {}

export class PurchaseGroup extends HttpApiGroup.make("purchase")
  .add(
    HttpApiEndpoint.post("purchase", "/api/sales/:saleId/purchases", {
      params: { saleId: SaleId },
      success: [Purchased, AlreadyPurchased],
      error: [NotFound, Conflict, Unavailable, TooManyRequests, BadRequest]
    }),
    HttpApiEndpoint.get("mine", "/api/sales/:saleId/purchases/me", {
      params: { saleId: SaleId },
      success: MyPurchase,
      error: [NotFound, BadRequest]
    }),
    HttpApiEndpoint.post("attempt", "/api/purchase/attempt", {
      success: [Purchased, AlreadyPurchased],
      error: [NotFound, Conflict, Unavailable, TooManyRequests]
    }),
    HttpApiEndpoint.get("status", "/api/purchase/status", { success: MyPurchase, error: NotFound }),
    HttpApiEndpoint.get("ofUser", "/api/purchase/user/:userId", {
      params: { userId: UserId },
      success: Schema.Array(OrderView),
      error: [Forbidden, BadRequest]
    })
  )
  .middleware(Authentication) {}

const Stock = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(10_000_000))
const Price = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(100_000_000))
/** An instant as an ISO-8601 string, e.g. "2026-12-01T10:00:00Z". */
const Instant = Schema.String.check(Schema.isMaxLength(40))

export const SaleStats = Schema.Struct({
  saleId: SaleId,
  status: SaleStatus,
  total: Schema.Int,
  remaining: Schema.Int,
  attempts: Schema.Int,
  byOutcome: Schema.Record(Schema.String, Schema.Int),
  committed: Schema.Int,
  soldOutAt: Schema.NullOr(Schema.String),
  recentPurchasesPerSecond: Schema.Number,
  /** Duration of the sale's batch transactions on the database, BEGIN to COMMIT; null before any. */
  commitLatencyMillis: Schema.NullOr(Schema.Struct({ p50: Schema.Number, p99: Schema.Number }))
})

/** Admin role only: a signed-in non-admin gets 403. */
export class AdminGroup extends HttpApiGroup.make("admin")
  .add(
    HttpApiEndpoint.post("createProduct", "/api/admin/products", {
      payload: Schema.Struct({
        name: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200)),
        description: Schema.optional(Schema.String.check(Schema.isMaxLength(2_000)))
      }),
      success: Schema.Struct({ productId: ProductId }).pipe(HttpApiSchema.status(201)),
      error: [Forbidden, BadRequest]
    }),
    HttpApiEndpoint.patch("updateProduct", "/api/admin/products/:productId", {
      params: { productId: ProductId },
      payload: Schema.Struct({
        name: Schema.optional(Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(200))),
        description: Schema.optional(Schema.String.check(Schema.isMaxLength(2_000)))
      }),
      success: Schema.Struct({ productId: ProductId }),
      error: [Forbidden, NotFound, BadRequest]
    }),
    HttpApiEndpoint.post("createSale", "/api/admin/sales", {
      payload: Schema.Struct({
        productId: ProductId,
        priceCents: Price,
        stock: Stock,
        startsAt: Instant,
        endsAt: Instant
      }),
      success: SaleView.pipe(HttpApiSchema.status(201)),
      error: [Forbidden, NotFound, BadRequest]
    }),
    HttpApiEndpoint.patch("updateSale", "/api/admin/sales/:saleId", {
      params: { saleId: SaleId },
      payload: Schema.Struct({
        priceCents: Schema.optional(Price),
        stock: Schema.optional(Stock),
        startsAt: Schema.optional(Instant),
        endsAt: Schema.optional(Instant)
      }),
      success: SaleView,
      error: [Forbidden, NotFound, Conflict, BadRequest]
    }),
    HttpApiEndpoint.post("cancelSale", "/api/admin/sales/:saleId/cancel", {
      params: { saleId: SaleId },
      success: SaleView,
      error: [Forbidden, NotFound, BadRequest]
    }),
    HttpApiEndpoint.get("saleStats", "/api/admin/sales/:saleId/stats", {
      params: { saleId: SaleId },
      success: SaleStats,
      error: [Forbidden, NotFound, BadRequest]
    })
  )
  .middleware(Authentication) {}

export class HealthGroup extends HttpApiGroup.make("health").add(
  HttpApiEndpoint.get("health", "/api/health", {
    success: Schema.Struct({ status: Schema.Literal("ok"), database: Schema.String })
  }),
  HttpApiEndpoint.get("live", "/api/health/live", {
    success: Schema.Struct({ status: Schema.Literal("ok") })
  }),
  HttpApiEndpoint.get("ready", "/api/health/ready", {
    success: Schema.Struct({ status: Schema.Literal("ready") }),
    error: Unavailable
  })
) {}

export class Api extends HttpApi.make("mincommerce")
  .add(AuthGroup)
  .add(SalesGroup)
  .add(CurrentSaleGroup)
  .add(PurchaseGroup)
  .add(AdminGroup)
  .add(HealthGroup)
  .annotateMerge(
    OpenApi.annotations({ title: "MinCommerce", description: "Flash-sale purchases, one actor per sale" })
  ) {}

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
import { maxEntryWindowSeconds, minEntryWindowSeconds } from "../domain/Allocation.ts"
import { maxPowDifficulty, minPowDifficulty } from "../domain/PurchaseRules.ts"
import { Email, Instant, Line, Paragraphs } from "../domain/Inputs.ts"
import {
  AccountTooNew,
  EmailInUse,
  InvalidCredentials,
  InvalidRequest,
  NoCurrentSale,
  NotADrawSale,
  NotAdmin,
  NotDrawn,
  NotReady,
  NotSignedIn,
  NotYourOrders,
  OrderNotCancellable,
  OrderNotFound,
  OrderNotPayable,
  Overloaded,
  PaymentUnavailable,
  ProductNotFound,
  ProofOfWorkNotRequired,
  ProofOfWorkRejected,
  ProofOfWorkRequired,
  ProofOfWorkReused,
  PurchaseUnavailable,
  RateLimited,
  SaleCancelled,
  SaleNotActive,
  SaleNotFound,
  SaleStarted,
  SignUpClosed,
  SoldOut,
  StockBelowSold
} from "./ApiErrors.ts"
import { PowChallenge } from "./ProofOfWork.ts"
import type { Session } from "./Tokens.ts"

/**
 * The HTTP surface, stated once: every path, schema and error. Handlers, OpenAPI and the
 * typed client used by the tests all derive from it.
 */

/** The signed-in user of a request; whether they are an admin is AdminRole's to say. */
export class CurrentUser extends Context.Service<CurrentUser, Session>()("mincommerce/http/CurrentUser") {}

/**
 * Bearer JWT: the node's own access token (from sign-up, sign-in or refresh), or the shop's
 * identity provider's; the user of a purchase always comes from here.
 */
export class Authentication extends HttpApiMiddleware.Service<Authentication, { provides: CurrentUser }>()(
  "mincommerce/http/Authentication",
  { security: { bearer: HttpApiSecurity.bearer }, error: NotSignedIn }
) {}

/**
 * Around every endpoint: an API error is answered from the errors' table (status, body,
 * `Retry-After`) with the same bytes the purchase fast route sends.
 */
export class ErrorAnswers extends HttpApiMiddleware.Service<ErrorAnswers>()(
  "mincommerce/http/ErrorAnswers"
) {}

export const SaleStatus = Schema.Literals(["upcoming", "active", "sold_out", "ended", "cancelled"])

/**
 * How the sale hands out its units. A draw shows its window, its draw time and the seed's
 * commitment from the start; the seed, and when it was drawn, once the draw is done.
 */
export const AllocationView = Schema.Union([
  Schema.Struct({ mode: Schema.Literal("first_come") }),
  Schema.Struct({
    mode: Schema.Literal("draw"),
    entryWindowSeconds: Schema.Number,
    drawAt: Schema.String,
    commitment: Schema.String,
    seed: Schema.NullOr(Schema.String),
    drawnAt: Schema.NullOr(Schema.String)
  })
])

export const SaleView = Schema.Struct({
  saleId: SaleId,
  productName: Schema.String,
  priceCents: Schema.Int,
  startsAt: Schema.String,
  endsAt: Schema.String,
  status: SaleStatus,
  total: Schema.Int,
  remaining: Schema.Int,
  /**
   * Proof of work a purchase must carry: the most key derivations its challenge takes
   * (`GET /api/sales/:saleId/challenge`); null: none.
   */
  powDifficulty: Schema.NullOr(Schema.Int),
  /** Only accounts created before this instant (the sale's publication) may buy; null: any. */
  accountsCreatedBefore: Schema.NullOr(Schema.String),
  allocation: AllocationView,
  /** Seconds a purchase is held for its buyer to pay; 0: a purchase is final at once. */
  holdSeconds: Schema.Int
})

/**
 * A hold sale's order is "reserved" until `payBy` (pay with `POST /api/orders/:orderId/pay`);
 * any other order is "purchased", final. A repeat of a buyer whose hold ended unpaid, in a
 * sale that sells once per buyer, is told that order as "lapsed": it holds no unit.
 */
const PurchaseStatus = Schema.Literals(["purchased", "reserved", "lapsed"])

/** 201: a new order, committed. */
export const Purchased = Schema.Struct({
  orderId: OrderId,
  saleId: SaleId,
  status: PurchaseStatus,
  alreadyPurchased: Schema.Literal(false),
  payBy: Schema.optionalKey(Schema.String)
}).pipe(HttpApiSchema.status(201))

/** 200: this buyer had bought already; the existing order, not a second one (retries are safe). */
export const AlreadyPurchased = Schema.Struct({
  orderId: OrderId,
  saleId: SaleId,
  status: PurchaseStatus,
  alreadyPurchased: Schema.Literal(true),
  payBy: Schema.optionalKey(Schema.String)
})

/** 202: a draw sale's entry, committed; a second attempt gets the same entry. */
export const Entered = Schema.Struct({
  saleId: SaleId,
  status: Schema.Literal("entered"),
  entered: Schema.Struct({ entryId: OrderId, enteredAt: Schema.String, drawAt: Schema.String })
}).pipe(HttpApiSchema.status(202))

/** A buyer's entry in a draw sale: none, entered, won (with the order) or not drawn (with a place). */
export const EntryView = Schema.Struct({
  saleId: SaleId,
  status: Schema.Literals(["none", "entered", "won", "not_drawn"]),
  drawAt: Schema.String,
  drawnAt: Schema.NullOr(Schema.String),
  entryId: Schema.NullOr(OrderId),
  enteredAt: Schema.NullOr(Schema.String),
  orderId: Schema.NullOr(OrderId),
  waitingListPlace: Schema.NullOr(Schema.Int)
})

/**
 * A draw as anyone can check it: the commitment from the start; once drawn, the seed, every
 * entry (by buyer id), the winners and the waiting list in draw order. Before the draw the
 * entries are not published (null).
 */
export const DrawView = Schema.Struct({
  saleId: SaleId,
  drawAt: Schema.String,
  commitment: Schema.String,
  drawn: Schema.Boolean,
  drawnAt: Schema.NullOr(Schema.String),
  seed: Schema.NullOr(Schema.String),
  units: Schema.NullOr(Schema.Int),
  entriesHash: Schema.NullOr(Schema.String),
  entries: Schema.NullOr(Schema.Array(Schema.Struct({ userId: UserId, entryId: OrderId }))),
  winners: Schema.NullOr(Schema.Array(UserId)),
  waitingList: Schema.NullOr(Schema.Array(UserId))
})

/** reserved (held until payBy), paid (final), expired or cancelled unpaid, refunded (a late payment given back). */
export const OrderStatus = Schema.Literals(["reserved", "paid", "expired", "cancelled", "refunded"])

export const OrderView = Schema.Struct({
  orderId: OrderId,
  saleId: SaleId,
  priceCents: Schema.Int,
  createdAt: Schema.String,
  status: OrderStatus,
  payBy: Schema.NullOr(Schema.String)
})

/** One order through checkout, for its buyer or an admin. */
export const OrderDetail = Schema.Struct({
  orderId: OrderId,
  saleId: SaleId,
  userId: UserId,
  status: OrderStatus,
  priceCents: Schema.Int,
  currency: Schema.String,
  createdAt: Schema.String,
  payBy: Schema.NullOr(Schema.String),
  paidAt: Schema.NullOr(Schema.String)
})

export const MyPurchase = Schema.Struct({
  saleId: SaleId,
  purchased: Schema.Boolean,
  order: Schema.NullOr(OrderView)
})

/** A password as typed: the policy (length, normalisation) is checked where it is hashed. */
const Password = Schema.String.check(Schema.isMaxLength(1_024))

/**
 * A signed-in session: a short-lived access token (`expiresInSeconds`) and, in an httpOnly
 * cookie scoped to /api/auth, the refresh token that gets the next one. `admin` is the role
 * when the token was issued, for the storefront to show the console; every admin request
 * checks it again.
 */
export const SignedIn = Schema.Struct({
  token: Schema.String,
  expiresInSeconds: Schema.Int,
  userId: UserId,
  email: Schema.String,
  admin: Schema.Boolean
})

export const Credentials = Schema.Struct({ email: Email, password: Password })

export class AuthGroup extends HttpApiGroup.make("auth")
  .add(
    HttpApiEndpoint.post("signup", "/api/auth/signup", {
      payload: Credentials,
      success: SignedIn.pipe(HttpApiSchema.status(201)),
      error: [InvalidRequest, EmailInUse, SignUpClosed, RateLimited]
    }),
    HttpApiEndpoint.post("login", "/api/auth/login", {
      payload: Credentials,
      success: SignedIn,
      error: [InvalidRequest, InvalidCredentials, RateLimited]
    }),
    HttpApiEndpoint.post("refresh", "/api/auth/refresh", {
      success: SignedIn,
      error: [NotSignedIn]
    }),
    HttpApiEndpoint.post("logout", "/api/auth/logout", { success: HttpApiSchema.NoContent })
  )
  .annotateMerge(OpenApi.annotations({ title: "Sign-up and sign-in" })) {}

/** The signed-in user as the node sees them now (the admin role read afresh). */
export class AccountGroup extends HttpApiGroup.make("account")
  .add(
    HttpApiEndpoint.get("me", "/api/auth/me", {
      success: Schema.Struct({ userId: UserId, email: Schema.String, admin: Schema.Boolean })
    })
  )
  .middleware(Authentication) {}

export class SalesGroup extends HttpApiGroup.make("sales")
  .add(
    HttpApiEndpoint.get("list", "/api/sales", { success: Schema.Array(SaleView) }),
    HttpApiEndpoint.get("get", "/api/sales/:saleId", {
      params: { saleId: SaleId },
      success: SaleView,
      error: [SaleNotFound, InvalidRequest]
    }),
    HttpApiEndpoint.get("draw", "/api/sales/:saleId/draw", {
      params: { saleId: SaleId },
      success: DrawView,
      error: [NotADrawSale, InvalidRequest]
    })
  )
  .annotateMerge(OpenApi.annotations({ title: "Sales" })) {}

/** The seed's contract, kept: the "current" sale is the running one, else the next. */
export class CurrentSaleGroup extends HttpApiGroup.make("currentSale")
  .add(
    HttpApiEndpoint.get("status", "/api/flash-sale/status", { success: SaleView, error: NoCurrentSale }),
    HttpApiEndpoint.get("stats", "/api/flash-sale/stats", {
      success: Schema.Struct({
        saleId: SaleId,
        status: SaleStatus,
        total: Schema.Int,
        sold: Schema.Int,
        remaining: Schema.Int
      }),
      error: NoCurrentSale
    })
  )
  .annotateMerge(OpenApi.annotations({ title: "Current sale (seed contract)" })) {}

/** What a sale's purchase rules refuse, before the sale's owner sees the attempt. */
const RuleErrors = [ProofOfWorkRequired, ProofOfWorkRejected, ProofOfWorkReused, AccountTooNew] as const

export class PurchaseGroup extends HttpApiGroup.make("purchase")
  .add(
    HttpApiEndpoint.post("purchase", "/api/sales/:saleId/purchases", {
      params: { saleId: SaleId },
      success: [Purchased, AlreadyPurchased, Entered],
      error: [
        SaleNotFound,
        SoldOut,
        SaleNotActive,
        NotDrawn,
        Overloaded,
        PurchaseUnavailable,
        RateLimited,
        InvalidRequest,
        ...RuleErrors
      ]
    }).annotate(
      OpenApi.Description,
      // The header is read by PurchaseEndpoint (both routes) and decoded there; it is not
      // declared as the endpoint's headers, which would make every typed-client call pass it.
      "Buys one unit as the token's user. A sale with `powDifficulty` asks a solved challenge " +
        "(`GET /api/sales/{saleId}/challenge`) in the `Proof-Of-Work` header: base64 of " +
        "`{ challenge, solution }` JSON."
    ),
    /**
     * A proof-of-work challenge for this buyer and sale (ALTCHA v2), valid two minutes: solve
     * it and send `{ challenge, solution }`, base64 JSON, in the purchase's `Proof-Of-Work` header.
     */
    HttpApiEndpoint.get("challenge", "/api/sales/:saleId/challenge", {
      params: { saleId: SaleId },
      success: PowChallenge,
      error: [SaleNotFound, ProofOfWorkNotRequired, AccountTooNew, RateLimited, InvalidRequest]
    }),
    HttpApiEndpoint.get("mine", "/api/sales/:saleId/purchases/me", {
      params: { saleId: SaleId },
      success: MyPurchase,
      error: [SaleNotFound, InvalidRequest]
    }),
    HttpApiEndpoint.get("entry", "/api/sales/:saleId/entry", {
      params: { saleId: SaleId },
      success: EntryView,
      error: [NotADrawSale, InvalidRequest]
    }),
    HttpApiEndpoint.post("attempt", "/api/purchase/attempt", {
      success: [Purchased, AlreadyPurchased, Entered],
      error: [
        NoCurrentSale,
        SaleNotFound,
        SoldOut,
        SaleNotActive,
        NotDrawn,
        Overloaded,
        PurchaseUnavailable,
        RateLimited,
        ...RuleErrors
      ]
    }),
    HttpApiEndpoint.get("status", "/api/purchase/status", { success: MyPurchase, error: NoCurrentSale }),
    HttpApiEndpoint.get("ofUser", "/api/purchase/user/:userId", {
      params: { userId: UserId },
      success: Schema.Array(OrderView),
      error: [NotYourOrders, InvalidRequest]
    })
  )
  .middleware(Authentication) {}

const Stock = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(10_000_000))
const Price = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(100_000_000))
const EntryWindow = Schema.Int.check(
  Schema.isGreaterThanOrEqualTo(minEntryWindowSeconds),
  Schema.isLessThanOrEqualTo(maxEntryWindowSeconds)
)
const HoldSeconds = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0), Schema.isLessThanOrEqualTo(3_600))
const ProductName = Line(200)
const Description = Paragraphs(2_000)
const PowDifficulty = Schema.Int.check(
  Schema.isGreaterThanOrEqualTo(minPowDifficulty),
  Schema.isLessThanOrEqualTo(maxPowDifficulty)
)

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
  commitLatencyMillis: Schema.NullOr(Schema.Struct({ p50: Schema.Number, p99: Schema.Number })),
  /** Orders by status. */
  orders: Schema.Struct({
    reserved: Schema.Int,
    paid: Schema.Int,
    expired: Schema.Int,
    cancelled: Schema.Int,
    refunded: Schema.Int
  }),
  /** paid / (paid + expired + cancelled + refunded): of the holds that ended, the share paid; null before any ended. */
  paidConversion: Schema.NullOr(Schema.Number)
})

/** Admin role only: a signed-in non-admin gets 403. */
export class AdminGroup extends HttpApiGroup.make("admin")
  .add(
    HttpApiEndpoint.post("createProduct", "/api/admin/products", {
      payload: Schema.Struct({
        name: ProductName,
        description: Schema.optional(Description)
      }),
      success: Schema.Struct({ productId: ProductId }).pipe(HttpApiSchema.status(201)),
      error: [NotAdmin, InvalidRequest]
    }),
    HttpApiEndpoint.patch("updateProduct", "/api/admin/products/:productId", {
      params: { productId: ProductId },
      payload: Schema.Struct({
        name: Schema.optional(ProductName),
        description: Schema.optional(Description)
      }),
      success: Schema.Struct({ productId: ProductId }),
      error: [NotAdmin, ProductNotFound, InvalidRequest]
    }),
    HttpApiEndpoint.post("createSale", "/api/admin/sales", {
      payload: Schema.Struct({
        productId: ProductId,
        priceCents: Price,
        stock: Stock,
        startsAt: Instant,
        endsAt: Instant,
        /** Proof of work per purchase attempt (see SaleView.powDifficulty); absent: none. */
        powDifficulty: Schema.optional(PowDifficulty),
        /** Only accounts created before this sale may buy. */
        olderAccountsOnly: Schema.optional(Schema.Boolean),
        /** first_come (the default) or draw, with its entry window from the start. */
        allocation: Schema.optional(Schema.Literals(["first_come", "draw"])),
        entryWindowSeconds: Schema.optional(EntryWindow),
        /** Seconds each purchase is held for payment (first come only; needs a price); 0, absent: final. */
        holdSeconds: Schema.optional(HoldSeconds),
        /** Whether a buyer whose hold expired or was cancelled may buy again. */
        repurchaseAfterLapse: Schema.optional(Schema.Boolean)
      }),
      success: SaleView.pipe(HttpApiSchema.status(201)),
      error: [NotAdmin, ProductNotFound, InvalidRequest]
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
      error: [NotAdmin, SaleNotFound, SaleStarted, SaleCancelled, StockBelowSold, InvalidRequest]
    }),
    HttpApiEndpoint.post("cancelSale", "/api/admin/sales/:saleId/cancel", {
      params: { saleId: SaleId },
      success: SaleView,
      error: [NotAdmin, SaleNotFound, InvalidRequest]
    }),
    HttpApiEndpoint.get("saleStats", "/api/admin/sales/:saleId/stats", {
      params: { saleId: SaleId },
      success: SaleStats,
      error: [NotAdmin, SaleNotFound, InvalidRequest]
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
    success: Schema.Union([
      Schema.Struct({ status: Schema.Literal("ready") }),
      Schema.Struct({ status: Schema.Literal("degraded"), ownership: Schema.Literal("redis_unreachable") })
    ]),
    error: NotReady
  })
) {}

/** A buyer's orders through checkout: the buyer who owns the order (or an admin, to read it). */
export class OrdersGroup extends HttpApiGroup.make("orders")
  .add(
    HttpApiEndpoint.get("get", "/api/orders/:orderId", {
      params: { orderId: OrderId },
      success: OrderDetail,
      error: [OrderNotFound, InvalidRequest]
    }),
    /** A checkout at the payment provider for a held order: the browser goes to `checkoutUrl`. */
    HttpApiEndpoint.post("pay", "/api/orders/:orderId/pay", {
      params: { orderId: OrderId },
      success: Schema.Struct({ orderId: OrderId, checkoutUrl: Schema.String }),
      error: [OrderNotFound, OrderNotPayable, PaymentUnavailable, InvalidRequest]
    }),
    /** The buyer gives a held order up before paying: its unit goes back on sale. */
    HttpApiEndpoint.post("cancel", "/api/orders/:orderId/cancel", {
      params: { orderId: OrderId },
      success: OrderDetail,
      error: [OrderNotFound, OrderNotCancellable, InvalidRequest]
    })
  )
  .middleware(Authentication) {}

export class Api extends HttpApi.make("mincommerce")
  .add(AuthGroup)
  .add(AccountGroup)
  .add(SalesGroup)
  .add(CurrentSaleGroup)
  .add(PurchaseGroup)
  .add(AdminGroup)
  .add(OrdersGroup)
  .add(HealthGroup)
  .middleware(ErrorAnswers)
  .annotateMerge(
    OpenApi.annotations({ title: "MinCommerce", description: "Flash-sale purchases, one actor per sale" })
  ) {}

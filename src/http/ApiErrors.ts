import { Schema } from "effect"

/**
 * What the API answers when a request does not get what it asked for, each error named after
 * what happened. Every one answers `{ error: { code, message, details? } }` with a stable
 * code; `errorTable` gives each its status and whether it carries `Retry-After`.
 */

const ErrorBody = Schema.Struct({
  code: Schema.String,
  message: Schema.String,
  details: Schema.optional(Schema.Unknown)
})
export type ErrorBody = typeof ErrorBody.Type

// An answer that says when to come back: `Retry-After` repeats `details.retryAfterSeconds`.
const RetryBody = Schema.Struct({
  code: Schema.String,
  message: Schema.String,
  details: Schema.Struct({ retryAfterSeconds: Schema.Number })
})

/** Statuses, and which errors say when to retry: the one place an error meets HTTP. */
export const errorTable = {
  InvalidRequest: { status: 400, retryAfter: false },
  NotSignedIn: { status: 401, retryAfter: false },
  InvalidCredentials: { status: 401, retryAfter: false },
  SignUpClosed: { status: 403, retryAfter: false },
  EmailInUse: { status: 409, retryAfter: false },
  NotAdmin: { status: 403, retryAfter: false },
  NotYourOrders: { status: 403, retryAfter: false },
  SaleNotFound: { status: 404, retryAfter: false },
  ProductNotFound: { status: 404, retryAfter: false },
  NoCurrentSale: { status: 404, retryAfter: false },
  NotADrawSale: { status: 404, retryAfter: false },
  OrderNotFound: { status: 404, retryAfter: false },
  OrderNotPayable: { status: 409, retryAfter: false },
  OrderNotCancellable: { status: 409, retryAfter: false },
  WebhookRejected: { status: 400, retryAfter: false },
  PaymentUnavailable: { status: 503, retryAfter: true },
  NoSuchRoute: { status: 404, retryAfter: false },
  SoldOut: { status: 409, retryAfter: false },
  SaleNotActive: { status: 409, retryAfter: false },
  NotDrawn: { status: 409, retryAfter: false },
  SaleStarted: { status: 409, retryAfter: false },
  SaleCancelled: { status: 409, retryAfter: false },
  StockBelowSold: { status: 409, retryAfter: false },
  ProofOfWorkRequired: { status: 403, retryAfter: false },
  ProofOfWorkRejected: { status: 403, retryAfter: false },
  ProofOfWorkReused: { status: 409, retryAfter: false },
  ProofOfWorkNotRequired: { status: 409, retryAfter: false },
  AccountTooNew: { status: 403, retryAfter: false },
  PayloadTooLarge: { status: 413, retryAfter: false },
  UnsupportedContentType: { status: 415, retryAfter: false },
  RequestTimedOut: { status: 408, retryAfter: false },
  HeadersTooLarge: { status: 431, retryAfter: false },
  UnexpectedFailure: { status: 500, retryAfter: false },
  RateLimited: { status: 429, retryAfter: true },
  Overloaded: { status: 503, retryAfter: true },
  PurchaseUnavailable: { status: 503, retryAfter: true },
  NotReady: { status: 503, retryAfter: true }
} as const

const status = <Tag extends keyof typeof errorTable>(tag: Tag) => ({ httpApiStatus: errorTable[tag].status })

/** Malformed input: the field path is in `details`. */
export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()(
  "InvalidRequest",
  { error: ErrorBody },
  status("InvalidRequest")
) {}
/** No token, or one that is malformed, tampered with or expired. */
export class NotSignedIn extends Schema.TaggedError<NotSignedIn>()(
  "NotSignedIn",
  { error: ErrorBody },
  status("NotSignedIn")
) {}
/** Sign-in refused: no such account or the wrong password, never said which. */
export class InvalidCredentials extends Schema.TaggedError<InvalidCredentials>()(
  "InvalidCredentials",
  { error: ErrorBody },
  status("InvalidCredentials")
) {}
/** Built-in sign-up is turned off (AUTH_SIGNUP): buyers come from the shop's identity provider. */
export class SignUpClosed extends Schema.TaggedError<SignUpClosed>()(
  "SignUpClosed",
  { error: ErrorBody },
  status("SignUpClosed")
) {}
/** Sign-up with an email that already has an account. */
export class EmailInUse extends Schema.TaggedError<EmailInUse>()(
  "EmailInUse",
  { error: ErrorBody },
  status("EmailInUse")
) {}
export class NotAdmin extends Schema.TaggedError<NotAdmin>()(
  "NotAdmin",
  { error: ErrorBody },
  status("NotAdmin")
) {}
/** A buyer asked for another buyer's orders. */
export class NotYourOrders extends Schema.TaggedError<NotYourOrders>()(
  "NotYourOrders",
  { error: ErrorBody },
  status("NotYourOrders")
) {}
export class SaleNotFound extends Schema.TaggedError<SaleNotFound>()(
  "SaleNotFound",
  { error: ErrorBody },
  status("SaleNotFound")
) {}
export class ProductNotFound extends Schema.TaggedError<ProductNotFound>()(
  "ProductNotFound",
  { error: ErrorBody },
  status("ProductNotFound")
) {}
/** The seed contract's "current" sale: none is running or upcoming. */
export class NoCurrentSale extends Schema.TaggedError<NoCurrentSale>()(
  "NoCurrentSale",
  { error: ErrorBody },
  status("NoCurrentSale")
) {}
/** A draw or an entry asked of a sale that is first come, first served (or of no sale). */
export class NotADrawSale extends Schema.TaggedError<NotADrawSale>()(
  "NotADrawSale",
  { error: ErrorBody },
  status("NotADrawSale")
) {}
/** No order with this id that the caller may see (its buyer, or an admin). */
export class OrderNotFound extends Schema.TaggedError<OrderNotFound>()(
  "OrderNotFound",
  { error: ErrorBody },
  status("OrderNotFound")
) {}
/** The order is not held and unpaid, or its deadline passed: `details.status` says what it is. */
export class OrderNotPayable extends Schema.TaggedError<OrderNotPayable>()(
  "OrderNotPayable",
  { error: ErrorBody },
  status("OrderNotPayable")
) {}
export class OrderNotCancellable extends Schema.TaggedError<OrderNotCancellable>()(
  "OrderNotCancellable",
  { error: ErrorBody },
  status("OrderNotCancellable")
) {}
/** A payment provider's webhook that is not signed right, too old, or not an event. */
export class WebhookRejected extends Schema.TaggedError<WebhookRejected>()(
  "WebhookRejected",
  { error: ErrorBody },
  status("WebhookRejected")
) {}
/** The payment provider did not answer; nothing was charged, try again. */
export class PaymentUnavailable extends Schema.TaggedError<PaymentUnavailable>()(
  "PaymentUnavailable",
  { error: RetryBody },
  status("PaymentUnavailable")
) {}
/** A path the API does not serve. */
export class NoSuchRoute extends Schema.TaggedError<NoSuchRoute>()(
  "NoSuchRoute",
  { error: ErrorBody },
  status("NoSuchRoute")
) {}
export class SoldOut extends Schema.TaggedError<SoldOut>()(
  "SoldOut",
  { error: ErrorBody },
  status("SoldOut")
) {}
/** Not started, over, or cancelled: `details.reason` says which. */
export class SaleNotActive extends Schema.TaggedError<SaleNotActive>()(
  "SaleNotActive",
  { error: ErrorBody },
  status("SaleNotActive")
) {}
/** A draw sale's entrant who was not drawn: `details.place` is their waiting-list place. */
export class NotDrawn extends Schema.TaggedError<NotDrawn>()(
  "NotDrawn",
  { error: ErrorBody },
  status("NotDrawn")
) {}
/** An admin change to a sale that has started: only an upcoming sale can change. */
export class SaleStarted extends Schema.TaggedError<SaleStarted>()(
  "SaleStarted",
  { error: ErrorBody },
  status("SaleStarted")
) {}
export class SaleCancelled extends Schema.TaggedError<SaleCancelled>()(
  "SaleCancelled",
  { error: ErrorBody },
  status("SaleCancelled")
) {}
/** A restock below the units already taken. */
export class StockBelowSold extends Schema.TaggedError<StockBelowSold>()(
  "StockBelowSold",
  { error: ErrorBody },
  status("StockBelowSold")
) {}
/** The sale asks a solved challenge (`Proof-Of-Work` header) and the purchase carried none. */
export class ProofOfWorkRequired extends Schema.TaggedError<ProofOfWorkRequired>()(
  "ProofOfWorkRequired",
  { error: ErrorBody },
  status("ProofOfWorkRequired")
) {}
/**
 * The solution does not pass: its code says whether it is malformed or wrong
 * (`proof_of_work_invalid`), past its expiry (`proof_of_work_expired`), or issued to another
 * buyer or for another sale (`proof_of_work_foreign`). A new challenge is the way on.
 */
export class ProofOfWorkRejected extends Schema.TaggedError<ProofOfWorkRejected>()(
  "ProofOfWorkRejected",
  { error: ErrorBody },
  status("ProofOfWorkRejected")
) {}
/** The solution was spent already: each solved challenge buys one attempt. */
export class ProofOfWorkReused extends Schema.TaggedError<ProofOfWorkReused>()(
  "ProofOfWorkReused",
  { error: ErrorBody },
  status("ProofOfWorkReused")
) {}
/** A challenge asked for a sale that asks no proof of work. */
export class ProofOfWorkNotRequired extends Schema.TaggedError<ProofOfWorkNotRequired>()(
  "ProofOfWorkNotRequired",
  { error: ErrorBody },
  status("ProofOfWorkNotRequired")
) {}
/** The sale admits only accounts created before it was published, and this one is newer. */
export class AccountTooNew extends Schema.TaggedError<AccountTooNew>()(
  "AccountTooNew",
  { error: ErrorBody },
  status("AccountTooNew")
) {}
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()(
  "PayloadTooLarge",
  { error: ErrorBody },
  status("PayloadTooLarge")
) {}
/** A body in a format the endpoint does not read (it reads JSON). */
export class UnsupportedContentType extends Schema.TaggedError<UnsupportedContentType>()(
  "UnsupportedContentType",
  { error: ErrorBody },
  status("UnsupportedContentType")
) {}
/** The client did not send its whole request in time. */
export class RequestTimedOut extends Schema.TaggedError<RequestTimedOut>()(
  "RequestTimedOut",
  { error: ErrorBody },
  status("RequestTimedOut")
) {}
/** The request line and headers are over the server's limit. */
export class HeadersTooLarge extends Schema.TaggedError<HeadersTooLarge>()(
  "HeadersTooLarge",
  { error: ErrorBody },
  status("HeadersTooLarge")
) {}
/** A defect on the node: logged with the request id, never described to the client. */
export class UnexpectedFailure extends Schema.TaggedError<UnexpectedFailure>()(
  "UnexpectedFailure",
  { error: ErrorBody },
  status("UnexpectedFailure")
) {}
export class RateLimited extends Schema.TaggedError<RateLimited>()(
  "RateLimited",
  { error: RetryBody },
  status("RateLimited")
) {}
/** The sale's mailbox is full. */
export class Overloaded extends Schema.TaggedError<Overloaded>()(
  "Overloaded",
  { error: RetryBody },
  status("Overloaded")
) {}
/** The purchase was not completed and nothing was promised; `details.reason` says why. */
export class PurchaseUnavailable extends Schema.TaggedError<PurchaseUnavailable>()(
  "PurchaseUnavailable",
  {
    error: Schema.Struct({
      code: Schema.String,
      message: Schema.String,
      details: Schema.Struct({ reason: Schema.String, retryAfterSeconds: Schema.Number })
    })
  },
  status("PurchaseUnavailable")
) {}
/** The node cannot serve now: its database or its ownership directory does not answer. */
export class NotReady extends Schema.TaggedError<NotReady>()(
  "NotReady",
  { error: RetryBody },
  status("NotReady")
) {}

export type ApiError =
  | InvalidRequest
  | NotSignedIn
  | InvalidCredentials
  | SignUpClosed
  | EmailInUse
  | NotAdmin
  | NotYourOrders
  | SaleNotFound
  | ProductNotFound
  | NoCurrentSale
  | NotADrawSale
  | OrderNotFound
  | OrderNotPayable
  | OrderNotCancellable
  | WebhookRejected
  | PaymentUnavailable
  | NoSuchRoute
  | SoldOut
  | SaleNotActive
  | NotDrawn
  | SaleStarted
  | SaleCancelled
  | StockBelowSold
  | ProofOfWorkRequired
  | ProofOfWorkRejected
  | ProofOfWorkReused
  | ProofOfWorkNotRequired
  | AccountTooNew
  | PayloadTooLarge
  | UnsupportedContentType
  | RequestTimedOut
  | HeadersTooLarge
  | UnexpectedFailure
  | RateLimited
  | Overloaded
  | PurchaseUnavailable
  | NotReady

/**
 * An error as the wire carries it: its tag and body. Both an error instance and a plain
 * answer made without one (the purchase fast path) are such a value.
 */
export type ErrorAnswer<E extends ApiError = ApiError> = E extends ApiError
  ? { readonly _tag: E["_tag"]; readonly error: E["error"] }
  : never

type Retryable = RateLimited | Overloaded | PurchaseUnavailable | NotReady | PaymentUnavailable

const isRetryable = (answer: ErrorAnswer): answer is ErrorAnswer<Retryable> =>
  errorTable[answer._tag].retryAfter

/** Seconds for the `Retry-After` header, for the errors the table says carry one. */
export const retryAfterSeconds = (answer: ErrorAnswer): number | undefined =>
  isRetryable(answer) ? Math.max(1, Math.ceil(answer.error.details.retryAfterSeconds)) : undefined

const classes = [
  InvalidRequest,
  NotSignedIn,
  InvalidCredentials,
  SignUpClosed,
  EmailInUse,
  NotAdmin,
  NotYourOrders,
  SaleNotFound,
  ProductNotFound,
  NoCurrentSale,
  NotADrawSale,
  OrderNotFound,
  OrderNotPayable,
  OrderNotCancellable,
  WebhookRejected,
  PaymentUnavailable,
  NoSuchRoute,
  SoldOut,
  SaleNotActive,
  NotDrawn,
  SaleStarted,
  SaleCancelled,
  StockBelowSold,
  ProofOfWorkRequired,
  ProofOfWorkRejected,
  ProofOfWorkReused,
  ProofOfWorkNotRequired,
  AccountTooNew,
  PayloadTooLarge,
  UnsupportedContentType,
  RequestTimedOut,
  HeadersTooLarge,
  UnexpectedFailure,
  RateLimited,
  Overloaded,
  PurchaseUnavailable,
  NotReady
]

/** Whether a failure is one of the API's errors (and so has its answer in the table). */
export const isApiError = (error: unknown): error is ApiError => classes.some((kind) => error instanceof kind)

export const saleNotFound = (saleId: string) =>
  new SaleNotFound({ error: { code: "sale_not_found", message: "No such sale", details: { saleId } } })

export const notDrawn = (place: number) =>
  new NotDrawn({
    error: {
      code: "not_drawn",
      message: "You entered, but were not drawn; you keep your place on the waiting list",
      details: { waitingListPlace: place }
    }
  })

export const notADrawSale = (saleId: string) =>
  new NotADrawSale({
    error: { code: "not_a_draw_sale", message: "No draw sale has this id", details: { saleId } }
  })

export const productNotFound = () =>
  new ProductNotFound({ error: { code: "product_not_found", message: "No such product" } })

export const noCurrentSale = () =>
  new NoCurrentSale({ error: { code: "no_current_sale", message: "No sale is running or upcoming" } })

export const rateLimited = (retryAfterSeconds: number) =>
  new RateLimited({
    error: { code: "rate_limited", message: "Too many requests; slow down", details: { retryAfterSeconds } }
  })

/** A 400 naming the input part (`in`) and the field path of the problem. */
export const invalidRequest = (
  message: string,
  details?: { readonly in: string; readonly path: ReadonlyArray<unknown> }
) =>
  new InvalidRequest({
    error:
      details === undefined
        ? { code: "invalid_request", message }
        : { code: "invalid_request", message, details }
  })

export const noSuchRoute = () =>
  new NoSuchRoute({ error: { code: "not_found", message: "No such resource" } })

export const proofOfWorkRequired = () =>
  new ProofOfWorkRequired({
    error: {
      code: "proof_of_work_required",
      message:
        "This sale asks a solved challenge: GET /api/sales/:saleId/challenge, solve it, send it in Proof-Of-Work"
    }
  })

/** Why a solution was rejected, as its machine-readable code says. */
export type PowRejection = "invalid" | "expired" | "foreign"

const rejectionMessages: Record<PowRejection, string> = {
  invalid: "The proof of work is malformed or does not solve its challenge",
  expired: "The challenge has expired; ask for a new one",
  foreign: "The challenge was issued to another buyer or for another sale"
}

export const proofOfWorkRejected = (reason: PowRejection) =>
  new ProofOfWorkRejected({
    error: { code: `proof_of_work_${reason}`, message: rejectionMessages[reason] }
  })

export const proofOfWorkReused = () =>
  new ProofOfWorkReused({
    error: {
      code: "proof_of_work_reused",
      message: "This solved challenge was used already; ask for a new one"
    }
  })

export const proofOfWorkNotRequired = () =>
  new ProofOfWorkNotRequired({
    error: { code: "proof_of_work_not_required", message: "This sale asks no proof of work" }
  })

export const accountTooNew = (accountsCreatedBefore: number) =>
  new AccountTooNew({
    error: {
      code: "account_too_new",
      message: "This sale is open only to accounts created before it was published",
      details: { accountsCreatedBefore: new Date(accountsCreatedBefore).toISOString() }
    }
  })

export const payloadTooLarge = () =>
  new PayloadTooLarge({
    error: { code: "payload_too_large", message: "The request body is over the size limit" }
  })

export const unsupportedContentType = () =>
  new UnsupportedContentType({
    error: {
      code: "unsupported_media_type",
      message: "The body must be JSON (content-type: application/json)"
    }
  })

export const requestTimedOut = () =>
  new RequestTimedOut({ error: { code: "request_timeout", message: "The request was not received in time" } })

export const headersTooLarge = () =>
  new HeadersTooLarge({ error: { code: "headers_too_large", message: "The request headers are too large" } })

export const unexpectedFailure = (requestId: string) =>
  new UnexpectedFailure({
    error: { code: "internal_error", message: "The request failed on the server", details: { requestId } }
  })

/**
 * The error for a status the framework or Node's parser answered without a body: the same
 * status where the API has an error for it, else a 400 for the client's part or the defect's 500.
 */
export const answerForStatus = (status: number, requestId: string): ApiError => {
  switch (status) {
    case 404:
      return noSuchRoute()
    case 408:
      return requestTimedOut()
    case 413:
      return payloadTooLarge()
    case 415:
      return unsupportedContentType()
    case 431:
      return headersTooLarge()
    default:
      return status < 500 ? invalidRequest("The request could not be read") : unexpectedFailure(requestId)
  }
}

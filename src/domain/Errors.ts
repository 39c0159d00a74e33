import { Schema } from "effect"

/** No sale with this id exists. */
export class SaleNotFound extends Schema.TaggedError<SaleNotFound>()("SaleNotFound", {
  saleId: Schema.String
}) {}

/**
 * The sale's owner epoch in PostgreSQL is no longer the one this writer holds: another
 * owner has claimed the sale since, and this batch was rejected whole (invariant I4).
 */
export class StaleEpoch extends Schema.TaggedError<StaleEpoch>()("StaleEpoch", {
  saleId: Schema.String,
  epoch: Schema.Number
}) {}

/** The sale's mailbox is full: the caller should retry after a short pause. */
export class Overloaded extends Schema.TaggedError<Overloaded>()("Overloaded", {
  saleId: Schema.String,
  retryAfterSeconds: Schema.Number
}) {}

/**
 * The attempt was not completed, and nothing was promised: the order was not stored, or
 * this node stopped owning the sale. Retrying is safe (a buyer is never charged twice).
 */
export class PurchaseUnavailable extends Schema.TaggedError<PurchaseUnavailable>()("PurchaseUnavailable", {
  saleId: Schema.String,
  // no_owner: the sale's owner is changing; owner_unreachable: a forwarded attempt got no answer.
  reason: Schema.Literals(["commit_failed", "fenced", "stopping", "no_owner", "owner_unreachable"]),
  retryAfterSeconds: Schema.Number
}) {}

/** No product with this id exists. */
export class ProductNotFound extends Schema.TaggedError<ProductNotFound>()("ProductNotFound", {
  productId: Schema.String
}) {}

/** Only a sale that has not started can change: this one is running or over. */
export class SaleStarted extends Schema.TaggedError<SaleStarted>()("SaleStarted", {
  saleId: Schema.String
}) {}

/** A cancelled sale cannot change. */
export class SaleCancelled extends Schema.TaggedError<SaleCancelled>()("SaleCancelled", {
  saleId: Schema.String
}) {}

/** A restock below the units already taken: those stay taken, never handed out twice. */
export class StockBelowSold extends Schema.TaggedError<StockBelowSold>()("StockBelowSold", {
  saleId: Schema.String,
  stock: Schema.Number
}) {}

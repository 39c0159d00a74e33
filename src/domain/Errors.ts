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

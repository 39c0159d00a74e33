import { Schema } from "effect"

/**
 * A webhook whose signature is missing, unreadable or made with another key: not from our
 * provider, or altered on the way. Nothing in it may be believed.
 */
export class BadSignature extends Schema.TaggedError<BadSignature>()("BadSignature", {}) {}

/**
 * A correctly signed webhook signed too long ago (or too far ahead): a replay of a captured
 * delivery, or a clock badly off. The provider signs each retry afresh, so a real one passes.
 */
export class StaleWebhook extends Schema.TaggedError<StaleWebhook>()("StaleWebhook", {
  signedAt: Schema.Number,
  now: Schema.Number
}) {}

/** A correctly signed webhook whose body is not an event we understand. */
export class MalformedWebhook extends Schema.TaggedError<MalformedWebhook>()("MalformedWebhook", {
  problem: Schema.String
}) {}

/** The provider could not be reached, or failed on its side (5xx): the call may be retried. */
export class ProviderUnreachable extends Schema.TaggedError<ProviderUnreachable>()("ProviderUnreachable", {
  operation: Schema.String,
  cause: Schema.Defect()
}) {}

/**
 * The provider turned the call down (4xx) or answered something we cannot read: retrying
 * the same call will not help; the configuration (key, URL) or the request is wrong.
 */
export class ProviderRefused extends Schema.TaggedError<ProviderRefused>()("ProviderRefused", {
  operation: Schema.String,
  status: Schema.Number,
  problem: Schema.String
}) {}

/** The intent was never paid (pending, declined), so there is nothing to give back. */
export class NothingToRefund extends Schema.TaggedError<NothingToRefund>()("NothingToRefund", {
  intentId: Schema.String
}) {}

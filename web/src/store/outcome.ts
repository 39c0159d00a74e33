import { ApiError, type Purchase } from "../api.ts"

/** What became of one press of "Buy", in the terms a buyer cares about. */
export type PurchaseOutcome =
  | { readonly kind: "purchased"; readonly orderId: string }
  | { readonly kind: "already_purchased"; readonly orderId: string }
  /** A hold sale: the unit is held until `payBy`; `again` when the buyer already held it. */
  | { readonly kind: "reserved"; readonly orderId: string; readonly payBy: string; readonly again: boolean }
  /** A draw sale's entry, committed: the draw at `drawAt` decides. */
  | { readonly kind: "entered"; readonly drawAt: string }
  /** The draw is done and this buyer was not drawn. */
  | { readonly kind: "not_drawn" }
  | { readonly kind: "sold_out" }
  | { readonly kind: "not_started" }
  | { readonly kind: "ended" }
  | { readonly kind: "cancelled" }
  /** The sale admits only accounts created before it was published. */
  | { readonly kind: "account_too_new" }
  /** The check that the buyer is a person (the proof of work) did not pass; another try solves anew. */
  | { readonly kind: "not_verified" }
  /** 429 or 503: the shop retries by itself after `seconds`. */
  | { readonly kind: "retry"; readonly seconds: number; readonly reason: "rate_limited" | "busy" }
  | { readonly kind: "signed_out" }
  | { readonly kind: "failed"; readonly message: string }

const reasonOf = (details: unknown): unknown =>
  typeof details === "object" && details !== null && "reason" in details ? details.reason : undefined

/** The outcome of a purchase call: its answer, or what it threw. */
export const purchaseOutcome = (result: { ok: Purchase } | { error: unknown }): PurchaseOutcome => {
  if ("ok" in result)
    return result.ok.status === "entered"
      ? { kind: "entered", drawAt: result.ok.entered.drawAt }
      : result.ok.status === "reserved"
        ? {
            kind: "reserved",
            orderId: result.ok.orderId,
            payBy: result.ok.payBy,
            again: result.ok.alreadyPurchased
          }
        : result.ok.alreadyPurchased
          ? { kind: "already_purchased", orderId: result.ok.orderId }
          : { kind: "purchased", orderId: result.ok.orderId }
  const error = result.error
  if (!(error instanceof ApiError))
    return { kind: "failed", message: "The shop could not be reached. Check your connection and try again." }
  if (error.status === 429 || error.status === 503)
    return {
      kind: "retry",
      seconds: error.retryAfterSeconds ?? 1,
      reason: error.status === 429 ? "rate_limited" : "busy"
    }
  if (error.status === 401) return { kind: "signed_out" }
  if (error.code === "sold_out") return { kind: "sold_out" }
  if (error.code === "not_drawn") return { kind: "not_drawn" }
  if (error.code === "account_too_new") return { kind: "account_too_new" }
  if (error.code.startsWith("proof_of_work_")) return { kind: "not_verified" }
  if (error.code === "sale_not_active") {
    const reason = reasonOf(error.details)
    if (reason === "not_started") return { kind: "not_started" }
    if (reason === "cancelled") return { kind: "cancelled" }
    return { kind: "ended" }
  }
  return { kind: "failed", message: error.message }
}

/**
 * Plain words for an outcome. `secondsLeft` counts down a pending automatic retry (it starts
 * at the outcome's `seconds`).
 */
export const describeOutcome = (outcome: PurchaseOutcome, secondsLeft?: number): string => {
  switch (outcome.kind) {
    case "purchased":
      return `Purchased! Your order id is ${outcome.orderId}.`
    case "already_purchased":
      return `You already bought this one. Your order id is ${outcome.orderId}.`
    case "reserved":
      return `${outcome.again ? "You already hold this one" : "Reserved for you"} until ${new Date(outcome.payBy).toLocaleTimeString()}. Pay before then to make it yours. Your order id is ${outcome.orderId}.`
    case "entered":
      return `You're in the draw. Winners are picked at random at ${new Date(outcome.drawAt).toLocaleTimeString()}; the result shows here.`
    case "not_drawn":
      return "The draw is over and you were not picked this time."
    case "sold_out":
      return "Sold out: every unit has been sold."
    case "not_started":
      return "The sale has not started yet."
    case "ended":
      return "The sale is over."
    case "cancelled":
      return "This sale was cancelled."
    case "account_too_new":
      return "This sale is open only to accounts that existed before it was announced."
    case "not_verified":
      return "We could not check that you're a person. Press Buy to try again."
    case "retry": {
      const seconds = Math.max(0, secondsLeft ?? outcome.seconds)
      const why = outcome.reason === "rate_limited" ? "Too many tries from you" : "The shop is busy"
      return seconds > 0 ? `${why}; trying again in ${seconds} s.` : `${why}; trying again now.`
    }
    case "signed_out":
      return "Your session has expired. Sign in again to buy."
    case "failed":
      return `Something went wrong: ${outcome.message}`
  }
}

/** Outcomes after which pressing Buy again cannot help. */
export const isFinal = (outcome: PurchaseOutcome): boolean =>
  outcome.kind === "purchased" ||
  outcome.kind === "already_purchased" ||
  outcome.kind === "reserved" ||
  outcome.kind === "entered" ||
  outcome.kind === "not_drawn" ||
  outcome.kind === "sold_out" ||
  outcome.kind === "ended" ||
  outcome.kind === "cancelled" ||
  outcome.kind === "account_too_new"

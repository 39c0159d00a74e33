import { Effect } from "effect"
import { Overloaded, PurchaseUnavailable, SaleNotFound } from "./Errors.ts"
import { outcomeTags, type Outcome } from "./Outcome.ts"

/** Why a purchase was not decided: the sale is busy, or cannot decide now (retry is safe). */
export type Refusal = Overloaded | PurchaseUnavailable

/** What a purchase is answered with: the sale's decision, or a refusal to decide now. */
export type Reply = Outcome | Refusal

/** What the router answers: a reply, or no such sale. */
export type RoutedReply = Reply | SaleNotFound

const outcomes: ReadonlySet<string> = new Set(outcomeTags)

export const isOutcome = <E extends { readonly _tag: string }>(answer: Outcome | E): answer is Outcome =>
  outcomes.has(answer._tag)

export const isRefusal = (reply: RoutedReply): reply is Refusal =>
  reply instanceof Overloaded || reply instanceof PurchaseUnavailable

/** The one place the Effect form of a purchase is derived from the callback primitive. */
export const awaitReply = <E extends { readonly _tag: string }>(
  submit: (reply: (answer: Outcome | E) => void) => void
): Effect.Effect<Outcome, E> =>
  Effect.callback<Outcome, E>((resume) =>
    submit((answer) => resume(isOutcome(answer) ? Effect.succeed(answer) : Effect.fail(answer)))
  )

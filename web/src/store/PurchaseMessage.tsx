import { describeOutcome, type PurchaseOutcome } from "./outcome.ts"

const tone = (outcome: PurchaseOutcome): "good" | "bad" | "wait" =>
  outcome.kind === "purchased" ||
  outcome.kind === "already_purchased" ||
  outcome.kind === "reserved" ||
  outcome.kind === "entered"
    ? "good"
    : outcome.kind === "retry"
      ? "wait"
      : "bad"

/** The outcome of a purchase, announced to screen readers as it changes. */
export function PurchaseMessage(props: {
  readonly outcome: PurchaseOutcome | undefined
  readonly secondsLeft?: number | undefined
}) {
  return (
    <p
      className={props.outcome === undefined ? "outcome" : `outcome ${tone(props.outcome)}`}
      role="status"
      aria-live="polite"
      data-testid="purchase-outcome"
    >
      {props.outcome === undefined ? " " : describeOutcome(props.outcome, props.secondsLeft)}
    </p>
  )
}

import { useEffect } from "react"
import type { OrderDetail } from "../api.ts"
import { checkoutWords, payable } from "./checkout.ts"
import { Countdown } from "./Countdown.tsx"
import { useNow } from "./time.ts"
import { useCheckout } from "./useCheckout.ts"

/**
 * A held order: the time left to pay, "Pay" and "Cancel my order" while it lasts, and what
 * became of it in plain words. The parent keys it by order, so each order starts afresh.
 */
export function Checkout(props: {
  readonly token: string
  readonly orderId: string
  /** The buyer is back from the payment page with this order. */
  readonly returned: boolean
  /** A second press of Buy answered with this order. */
  readonly repeated: boolean
  readonly onOrder: (order: OrderDetail) => void
}) {
  const { order, checking, unanswered, acting, problem, check, pay, cancel } = useCheckout(
    props.token,
    props.orderId,
    props.returned,
    props.onOrder
  )
  const payBy = order?.payBy == null ? 0 : Date.parse(order.payBy)
  const now = useNow(1_000, payBy)
  const open = order !== undefined && payable(order, now)
  // The hold ran out unpaid here: the node says what became of it (expired, or paid just in time).
  const holdOver = order?.status === "reserved" && payBy > 0 && now >= payBy
  useEffect(() => {
    if (holdOver) check()
  }, [holdOver, check])
  const words =
    order === undefined
      ? undefined
      : checkoutWords(order, {
          now,
          checking,
          unanswered,
          returned: props.returned,
          repeated: props.repeated
        })

  return (
    <section
      className="checkout"
      aria-label="Your order"
      data-testid="checkout"
      data-order-id={props.orderId}
    >
      {open ? <Countdown to={payBy} label="Pay within" /> : null}
      {open ? (
        <div className="row">
          <button type="button" onClick={pay} disabled={acting !== undefined}>
            {acting === "pay" ? "Going to payment…" : "Pay"}
          </button>
          <button type="button" className="danger" onClick={cancel} disabled={acting !== undefined}>
            {acting === "cancel" ? "Cancelling…" : "Cancel my order"}
          </button>
        </div>
      ) : null}
      <p
        className={words === undefined ? "outcome" : `outcome ${words.tone}`}
        role="status"
        aria-live="polite"
        data-testid="checkout-status"
      >
        {words?.text ?? (checking ? "Checking your order…" : " ")}
      </p>
      {problem === undefined ? null : (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
      {order?.status === "reserved" && !open && !checking ? (
        <button type="button" className="link" onClick={check}>
          Check again
        </button>
      ) : null}
    </section>
  )
}

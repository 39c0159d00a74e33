import type { IntentStatus } from "./DevelopmentProtocol.ts"

/** What the development provider's checkout page shows. */
export interface CheckoutView {
  readonly intentId: string
  readonly orderId: string
  readonly amountCents: number
  readonly currency: string
  readonly status: IntentStatus
  readonly returnUrl: string
  /** Where the page's buttons post, by answer. */
  readonly payAction: string
  readonly declineAction: string
}

const escape = (text: string): string =>
  text.replace(
    /[&<>"']/g,
    (char) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[char] ?? char
  )

/** The amount as a buyer reads it, in the currency's own minor unit (no cents for JPY). */
export const formatAmount = (amountCents: number, currency: string): string => {
  const format = new Intl.NumberFormat("en", { style: "currency", currency })
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2
  return format.format(amountCents / 10 ** digits)
}

const settled: Record<Exclude<IntentStatus, "pending">, string> = {
  succeeded: "This payment was made.",
  failed: "This payment was declined.",
  refunded: "This payment was made and then refunded."
}

/**
 * The buyer's page: the amount, and "Pay" or "Decline" while the intent is pending. Plain
 * forms, no script: the provider answers each with a redirect to the shop.
 */
export const checkoutPage = (view: CheckoutView): string => {
  const amount = escape(formatAmount(view.amountCents, view.currency))
  const body =
    view.status === "pending"
      ? `<p class="amount">${amount}</p>
    <form method="post" action="${escape(view.payAction)}"><button class="pay" type="submit">Pay</button></form>
    <form method="post" action="${escape(view.declineAction)}"><button type="submit">Decline</button></form>`
      : `<p class="amount">${amount}</p>
    <p class="status">${settled[view.status]}</p>
    <p><a href="${escape(view.returnUrl)}">Back to the shop</a></p>`
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Pay ${amount} · MinCommerce development provider</title>
    <style>
      body { font-family: system-ui, sans-serif; max-width: 24rem; margin: 4rem auto; text-align: center; }
      .amount { font-size: 2.5rem; margin: 1rem 0; }
      form { display: inline-block; margin: 0 0.5rem; }
      button { font-size: 1.1rem; padding: 0.6rem 1.6rem; cursor: pointer; }
      .pay { background: #176b3a; color: white; border: none; border-radius: 4px; }
      .note { color: #666; font-size: 0.85rem; margin-top: 3rem; }
    </style>
  </head>
  <body>
    <h1>Checkout</h1>
    <p>Order <code>${escape(view.orderId)}</code></p>
    ${body}
    <p class="note">Development provider: no money moves. Payment <code>${escape(view.intentId)}</code>.</p>
  </body>
</html>
`
}

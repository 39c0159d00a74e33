import type { OrderStatus, Sale, SaleStats } from "../api.ts"

const shown: ReadonlyArray<readonly [OrderStatus, string]> = [
  ["reserved", "Reserved"],
  ["paid", "Paid"],
  ["expired", "Expired"],
  ["cancelled", "Cancelled"],
  ["refunded", "Refunded"]
]

/** paid / settled as a percentage; "–" while no hold has settled. */
export const conversionWords = (conversion: number | null | undefined): string =>
  conversion == null ? "–" : `${Math.round(conversion * 1_000) / 10} %`

/**
 * A sale with holds on the live view: its orders by checkout status, and how many of the holds
 * that settled were paid.
 */
export function LiveCheckout(props: { readonly sale: Sale; readonly stats: SaleStats | undefined }) {
  if (props.sale.holdSeconds === 0) return null
  const orders = props.stats?.orders
  return (
    <dl className="figures checkout-record" data-testid="live-checkout">
      {shown.map(([status, label]) => (
        <div key={status}>
          <dt>{label}</dt>
          <dd className="digits" data-testid={`live-orders-${status}`}>
            {orders?.[status].toLocaleString("en-US") ?? "–"}
          </dd>
        </div>
      ))}
      <div>
        <dt>Paid conversion</dt>
        <dd className="digits" data-testid="live-paid-conversion">
          {conversionWords(props.stats?.paidConversion)}
        </dd>
      </div>
      <div>
        <dt>Hold</dt>
        <dd className="digits">{props.sale.holdSeconds.toLocaleString("en-US")} s</dd>
      </div>
    </dl>
  )
}

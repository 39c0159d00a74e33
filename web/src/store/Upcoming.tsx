import { formatPrice, type Sale } from "../api.ts"
import { Countdown } from "./Countdown.tsx"
import { formatInstant } from "./time.ts"

/** The sales after the current one, soonest first. */
export function Upcoming(props: { readonly sales: ReadonlyArray<Sale>; readonly onStart: () => void }) {
  return (
    <section aria-labelledby="upcoming-title" className="panel">
      <h2 id="upcoming-title">Coming up</h2>
      {props.sales.length === 0 ? (
        <p className="muted">Nothing else is scheduled yet.</p>
      ) : (
        <ul className="upcoming" data-testid="upcoming">
          {props.sales.map((sale) => (
            <li key={sale.saleId}>
              <div>
                <strong>{sale.productName}</strong>
                <span className="muted">
                  {" "}
                  · {formatPrice(sale.priceCents)} · {sale.total.toLocaleString("en-US")} units
                </span>
              </div>
              <div className="muted">
                <time dateTime={sale.startsAt}>{formatInstant(sale.startsAt)}</time>
              </div>
              <Countdown to={Date.parse(sale.startsAt)} label="Starts in" onElapsed={props.onStart} />
            </li>
          ))}
        </ul>
      )}
    </section>
  )
}

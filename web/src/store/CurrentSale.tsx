import { useEffect, useRef } from "react"
import { formatPrice, type Sale, type Session } from "../api.ts"
import { Countdown } from "./Countdown.tsx"
import { PurchaseMessage } from "./PurchaseMessage.tsx"
import { StockBar } from "./StockBar.tsx"
import { formatInstant, useNow } from "./time.ts"
import { usePurchase } from "./usePurchase.ts"
import { useSaleEvents } from "./useSaleEvents.ts"

const statusWords: Record<Sale["status"], string> = {
  upcoming: "Starts soon",
  active: "On sale now",
  sold_out: "Sold out",
  ended: "Ended",
  cancelled: "Cancelled"
}

/** The sale on now (or next): live stock, countdown, and the Buy button. */
export function CurrentSale(props: {
  readonly sale: Sale
  readonly session: Session | undefined
  readonly purchasedOrderId: string | undefined
  readonly onPurchased: () => void
  readonly onScheduleChange: () => void
}) {
  const { sale, session } = props
  const { live, connected } = useSaleEvents(sale.saleId)
  const now = useNow()
  const { buy, busy, proving, outcome, secondsLeft } = usePurchase(
    session?.token,
    sale.saleId,
    sale.powDifficulty,
    props.onPurchased
  )

  const startsAt = Date.parse(sale.startsAt)
  const endsAt = Date.parse(sale.endsAt)
  const remaining = live?.remaining ?? sale.remaining
  const total = live?.total ?? sale.total
  // The node decides when the sale opens and closes: its live status, once connected, is what
  // the page shows. Until then (or without events) the list's status and the local clock do.
  const byClock: Sale["status"] =
    sale.status === "cancelled" || sale.status === "sold_out"
      ? sale.status
      : now >= endsAt
        ? "ended"
        : now >= startsAt
          ? "active"
          : "upcoming"
  const status: Sale["status"] = live?.status ?? byClock
  // A change of status may come with a new schedule (a sale rescheduled): read the list again.
  const scheduleChanged = useRef(props.onScheduleChange)
  useEffect(() => {
    scheduleChanged.current = props.onScheduleChange
  })
  useEffect(() => {
    if (live?.status !== undefined) scheduleChanged.current()
  }, [live?.status])
  const bought =
    props.purchasedOrderId !== undefined ||
    outcome?.kind === "purchased" ||
    outcome?.kind === "already_purchased"

  // What the sale says comes first; then whether this visitor can buy.
  const disabledBecause = bought
    ? "Purchased"
    : status === "upcoming"
      ? "Not started"
      : status === "sold_out"
        ? "Sold out"
        : status === "ended"
          ? "Ended"
          : status === "cancelled"
            ? "Cancelled"
            : session === undefined
              ? "Sign in to buy"
              : proving
                ? "Checking you're a person…"
                : busy
                  ? "Buying…"
                  : undefined

  return (
    <article className="sale current" aria-labelledby="current-sale-name" data-testid="current-sale">
      <header>
        <p className={`badge ${status}`} data-testid="sale-status">
          {statusWords[status]}
        </p>
        <h2 id="current-sale-name">{sale.productName}</h2>
        <p className="price">{formatPrice(sale.priceCents)}</p>
      </header>
      <StockBar remaining={remaining} total={total} live={connected} />
      <div className="when">
        {status === "upcoming" ? (
          <Countdown to={startsAt} label="Starts in" onElapsed={props.onScheduleChange} />
        ) : status === "active" ? (
          <Countdown to={endsAt} label="Ends in" onElapsed={props.onScheduleChange} />
        ) : (
          <p className="countdown">
            <span>{status === "ended" ? "Ended" : "Started"}</span>{" "}
            <time dateTime={status === "ended" ? sale.endsAt : sale.startsAt}>
              {formatInstant(status === "ended" ? sale.endsAt : sale.startsAt)}
            </time>
          </p>
        )}
      </div>
      {sale.accountsCreatedBefore === null ? null : (
        <p className="note" data-testid="sale-rule">
          Open to accounts created before {formatInstant(sale.accountsCreatedBefore)}.
        </p>
      )}
      <button type="button" className="buy" onClick={buy} disabled={disabledBecause !== undefined}>
        {disabledBecause ?? `Buy for ${formatPrice(sale.priceCents)}`}
      </button>
      <PurchaseMessage
        outcome={
          outcome ??
          (props.purchasedOrderId === undefined
            ? undefined
            : { kind: "already_purchased", orderId: props.purchasedOrderId })
        }
        secondsLeft={secondsLeft}
      />
    </article>
  )
}

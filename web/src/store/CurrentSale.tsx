import { useEffect, useRef, useState } from "react"
import { drawOf, formatPrice, type OrderDetail, type Sale, type Session } from "../api.ts"
import { Checkout } from "./Checkout.tsx"
import { buttonForOrder, followedOrder } from "./checkout.ts"
import { Countdown } from "./Countdown.tsx"
import { DrawPanel } from "./DrawPanel.tsx"
import { PurchaseMessage } from "./PurchaseMessage.tsx"
import { StockBar } from "./StockBar.tsx"
import { formatInstant, useNow } from "./time.ts"
import { useEntry } from "./useEntry.ts"
import { usePurchase } from "./usePurchase.ts"
import { useSaleEvents } from "./useSaleEvents.ts"

const statusWords: Record<Sale["status"], string> = {
  upcoming: "Starts soon",
  active: "On sale now",
  sold_out: "Sold out",
  ended: "Ended",
  cancelled: "Cancelled"
}

/**
 * The sale on now (or next): live stock, countdown, and the Buy button; in a sale with holds,
 * the buyer's held order below it, to pay or give up.
 */
export function CurrentSale(props: {
  readonly sale: Sale
  readonly session: Session | undefined
  readonly purchasedOrderId: string | undefined
  /** The order the buyer came back from the payment page with. */
  readonly returnedOrderId: string | undefined
  readonly onPurchased: () => void
  readonly onOrder: (order: OrderDetail) => void
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

  const draw = drawOf(sale)
  const drawAt = draw === undefined ? Infinity : Date.parse(draw.drawAt)
  const entry = useEntry(
    draw === undefined ? undefined : session?.token,
    sale.saleId,
    drawAt,
    outcome?.kind === "entered" ? 1 : 0
  )
  // The draw is done (the buyer's entry says so, or its time is well past): the sale's record
  // now carries the seed, so the list is read again once.
  const drawnSeen = entry?.drawnAt != null && draw?.drawnAt === null
  const reload = useRef(props.onScheduleChange)
  useEffect(() => {
    reload.current = props.onScheduleChange
  })
  useEffect(() => {
    if (drawnSeen) reload.current()
  }, [drawnSeen])

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
  // In a sale with holds (or back from paying), the buyer's order decides the button.
  const followed = followedOrder({
    outcome,
    holds: sale.holdSeconds > 0,
    returnedOrderId: props.returnedOrderId,
    wonOrderId: entry?.status === "won" ? (entry.orderId ?? undefined) : undefined,
    purchasedOrderId: props.purchasedOrderId
  })
  const [seen, setSeen] = useState<OrderDetail | undefined>(undefined)
  const orderSays =
    followed === undefined
      ? bought
        ? "Purchased"
        : undefined
      : buttonForOrder(
          seen?.orderId === followed.orderId ? seen.status : undefined,
          followed.repeated || draw !== undefined
        )
  const entered = outcome?.kind === "entered" || (entry !== undefined && entry.status !== "none")
  // Once drawn, the draw's panel says what became of the entry; the entry's own message goes.
  const drawnResult = entry?.status === "won" || entry?.status === "not_drawn"
  // A win is an order: the buyer's orders are read again.
  const won = entry?.status === "won"
  const purchasedRef = useRef(props.onPurchased)
  useEffect(() => {
    purchasedRef.current = props.onPurchased
  })
  useEffect(() => {
    if (won) purchasedRef.current()
  }, [won])

  // What the sale says comes first; then whether this visitor can buy.
  const disabledBecause =
    orderSays !== undefined
      ? orderSays
      : draw !== undefined && entered
        ? won
          ? "Purchased"
          : entry?.status === "not_drawn"
            ? "Not picked"
            : "Entered"
        : draw !== undefined && now >= drawAt && status === "active"
          ? "Draw closed"
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
                        ? draw === undefined
                          ? "Buying…"
                          : "Entering…"
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
      {draw === undefined ? null : (
        <DrawPanel
          saleId={sale.saleId}
          draw={draw}
          entry={entry}
          started={status !== "upcoming"}
          onDrawTime={() => setTimeout(() => reload.current(), 3_000)}
        />
      )}
      <button type="button" className="buy" onClick={buy} disabled={disabledBecause !== undefined}>
        {disabledBecause ??
          (draw === undefined
            ? `Buy for ${formatPrice(sale.priceCents)}`
            : `Enter the draw (${formatPrice(sale.priceCents)})`)}
      </button>
      {followed === undefined || session === undefined ? null : (
        <Checkout
          // Learning that the buyer is back from paying for it starts the order's checkout afresh.
          key={followed.orderId + (followed.returned ? " returned" : "")}
          token={session.token}
          orderId={followed.orderId}
          returned={followed.returned}
          repeated={followed.repeated}
          onOrder={(order) => {
            setSeen(order)
            props.onOrder(order)
          }}
        />
      )}
      <PurchaseMessage
        outcome={
          // The checkout speaks for the order it follows; the message for the rest (a refusal).
          drawnResult || (followed !== undefined && (outcome === undefined || "orderId" in outcome))
            ? undefined
            : (outcome ??
              (props.purchasedOrderId === undefined
                ? undefined
                : { kind: "already_purchased", orderId: props.purchasedOrderId }))
        }
        secondsLeft={secondsLeft}
      />
    </article>
  )
}

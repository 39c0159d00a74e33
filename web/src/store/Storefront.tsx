import { useCallback, useEffect, useRef, useState } from "react"
import {
  api,
  ApiError,
  type Order,
  type OrderDetail,
  type OrderStatus,
  type Sale,
  type Session
} from "../api.ts"
import { Checkout } from "./Checkout.tsx"
import { forgetReturnInAddress, returnedOrderId } from "./checkout.ts"
import { CurrentSale } from "./CurrentSale.tsx"
import { MyOrders } from "./MyOrders.tsx"
import { useNow } from "./time.ts"
import { Upcoming } from "./Upcoming.tsx"

// The sale list is small and changes rarely; the stock of the current sale comes live over SSE.
const refreshMillis = 15_000

/** The running sale (one in its window, even sold out), else the next to start. */
export const pickSales = (
  sales: ReadonlyArray<Sale>,
  now: number
): { current: Sale | undefined; upcoming: ReadonlyArray<Sale> } => {
  const open = sales.filter(
    (sale) => sale.status !== "cancelled" && sale.status !== "ended" && Date.parse(sale.endsAt) > now
  )
  const byStart = [...open].sort((a, b) => Date.parse(a.startsAt) - Date.parse(b.startsAt))
  const current =
    byStart.find((sale) => sale.status === "active") ??
    byStart.find((sale) => Date.parse(sale.startsAt) <= now) ??
    byStart[0]
  return { current, upcoming: byStart.filter((sale) => sale !== current && sale.status === "upcoming") }
}

/** The shop of one visitor; App keys it by user, so no state of one user outlives a sign-out. */
export function Storefront(props: {
  readonly session: Session | undefined
  readonly onSignedOut: () => void
}) {
  const { session } = props
  const [sales, setSales] = useState<ReadonlyArray<Sale> | undefined>(undefined)
  const [failed, setFailed] = useState(false)
  const [orders, setOrders] = useState<ReadonlyArray<Order>>([])
  // What checkout has learnt of the buyer's orders since the page opened.
  const [statuses, setStatuses] = useState<ReadonlyMap<string, OrderStatus>>(new Map())
  const [returned] = useState(returnedOrderId)
  useEffect(forgetReturnInAddress, [])
  // The sale of the order the buyer came back from paying with: its card shows the order, or a
  // panel of its own when that sale is no longer the current one ("" when it cannot be read).
  const [returnedSale, setReturnedSale] = useState<string | undefined>(undefined)
  const token = session?.token
  useEffect(() => {
    if (returned === undefined || token === undefined) return
    let live = true
    api.order(token, returned).then(
      (order) => live && setReturnedSale(order.saleId),
      () => live && setReturnedSale("")
    )
    return () => {
      live = false
    }
  }, [returned, token])
  const now = useNow()
  const signedOut = useRef(props.onSignedOut)
  useEffect(() => {
    signedOut.current = props.onSignedOut
  })

  const loadSales = useCallback(() => {
    api.sales().then(
      (list) => {
        setSales(list)
        setFailed(false)
      },
      () => setFailed(true)
    )
  }, [])

  const loadOrders = useCallback(() => {
    if (session === undefined) return
    api.myOrders(session.token, session.userId).then(setOrders, (failure: unknown) => {
      // A token the node no longer accepts (expired, or signed with another secret): sign in again.
      if (failure instanceof ApiError && failure.status === 401) signedOut.current()
    })
  }, [session])

  useEffect(() => {
    loadSales()
    const timer = setInterval(loadSales, refreshMillis)
    return () => clearInterval(timer)
  }, [loadSales])
  useEffect(() => {
    loadOrders()
  }, [loadOrders])

  const known = useRef(new Map<string, OrderStatus>())
  const onOrder = useCallback(
    (order: OrderDetail) => {
      if (known.current.get(order.orderId) === order.status) return
      known.current.set(order.orderId, order.status)
      setStatuses(new Map(known.current))
      // A change of status may be a new or lapsed order in the list: it is read again.
      loadOrders()
    },
    [loadOrders]
  )

  if (sales === undefined)
    return (
      <p className="muted">{failed ? "The shop cannot be reached right now. Retrying…" : "Loading sales…"}</p>
    )

  const { current, upcoming } = pickSales(sales, now)
  // The buyer's latest order in the current sale (a lapsed hold may have been followed by another).
  const purchased = orders
    .filter((order) => order.saleId === current?.saleId)
    .reduce<Order | undefined>(
      (latest, order) => (latest === undefined || order.createdAt > latest.createdAt ? order : latest),
      undefined
    )
  const returnedHere = returnedSale !== undefined && returnedSale === current?.saleId
  const returnedName = sales.find((sale) => sale.saleId === returnedSale)?.productName
  return (
    <div className="store">
      {returned === undefined ||
      returnedSale === undefined ||
      returnedHere ||
      session === undefined ? null : (
        <section className="panel" aria-labelledby="returned-title">
          <h2 id="returned-title">
            {returnedName === undefined ? "Your order" : `Your order of ${returnedName}`}
          </h2>
          <Checkout
            token={session.token}
            orderId={returned}
            returned={true}
            repeated={false}
            onOrder={onOrder}
          />
        </section>
      )}
      {current === undefined ? (
        <section className="panel">
          <h2>No sale right now</h2>
          <p className="muted">Come back soon.</p>
        </section>
      ) : (
        <CurrentSale
          key={current.saleId + (session?.userId ?? "")}
          sale={current}
          session={session}
          purchasedOrderId={purchased?.orderId}
          returnedOrderId={returnedHere ? returned : undefined}
          onPurchased={loadOrders}
          onOrder={onOrder}
          onScheduleChange={loadSales}
        />
      )}
      <Upcoming sales={upcoming} onStart={loadSales} />
      {session === undefined ? null : <MyOrders orders={orders} sales={sales} statuses={statuses} />}
    </div>
  )
}

import { useCallback, useEffect, useRef, useState } from "react"
import { api, ApiError, type Order, type Sale, type Session } from "../api.ts"
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

  if (sales === undefined)
    return (
      <p className="muted">{failed ? "The shop cannot be reached right now. Retrying…" : "Loading sales…"}</p>
    )

  const { current, upcoming } = pickSales(sales, now)
  const purchased = orders.find((order) => order.saleId === current?.saleId)
  return (
    <div className="store">
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
          onPurchased={loadOrders}
          onScheduleChange={loadSales}
        />
      )}
      <Upcoming sales={upcoming} onStart={loadSales} />
      {session === undefined ? null : <MyOrders orders={orders} sales={sales} />}
    </div>
  )
}

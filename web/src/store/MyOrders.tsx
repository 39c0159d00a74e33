import { formatPrice, type Order, type OrderStatus, type Sale } from "../api.ts"
import { statusWords } from "./checkout.ts"
import { formatInstant } from "./time.ts"

/** An order's checkout status as a badge; none for a sale without holds (its orders are final). */
const orderStatus = (
  order: Order,
  statuses: ReadonlyMap<string, OrderStatus>,
  holds: ReadonlySet<string>
) => {
  const status = statuses.get(order.orderId) ?? order.status
  if (status === undefined || (status === "paid" && !holds.has(order.saleId))) return null
  return (
    <span className={`badge order-${status}`} data-testid="order-status">
      {statusWords[status]}
    </span>
  )
}

/**
 * The signed-in buyer's orders, newest first; in a sale with holds, where each stands in
 * checkout when known (from the list, or what this page has seen of it).
 */
export function MyOrders(props: {
  readonly orders: ReadonlyArray<Order>
  readonly sales: ReadonlyArray<Sale>
  readonly statuses: ReadonlyMap<string, OrderStatus>
}) {
  const names = new Map(props.sales.map((sale) => [sale.saleId, sale.productName]))
  const holds = new Set(props.sales.filter((sale) => sale.holdSeconds > 0).map((sale) => sale.saleId))
  const orders = [...props.orders].sort((a, b) => b.createdAt.localeCompare(a.createdAt))
  return (
    <section aria-labelledby="orders-title" className="panel">
      <h2 id="orders-title">My orders</h2>
      {orders.length === 0 ? (
        <p className="muted">No orders yet.</p>
      ) : (
        <ul className="orders" data-testid="orders">
          {orders.map((order) => (
            <li key={order.orderId} data-order-id={order.orderId}>
              <strong>{names.get(order.saleId) ?? "Sale " + order.saleId.slice(0, 8)}</strong>
              <span>{formatPrice(order.priceCents)}</span>
              {orderStatus(order, props.statuses, holds)}
              <span className="muted">
                <time dateTime={order.createdAt}>{formatInstant(order.createdAt)}</time>
              </span>
              <code className="order-id">{order.orderId}</code>
            </li>
          ))}
        </ul>
      )}
    </section>
  )
}

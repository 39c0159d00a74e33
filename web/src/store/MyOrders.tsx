import { formatPrice, type Order, type Sale } from "../api.ts"
import { formatInstant } from "./time.ts"

/** The signed-in buyer's orders, newest first. */
export function MyOrders(props: {
  readonly orders: ReadonlyArray<Order>
  readonly sales: ReadonlyArray<Sale>
}) {
  const names = new Map(props.sales.map((sale) => [sale.saleId, sale.productName]))
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

/**
 * Baseline "row lock", the usual design: each purchase is one transaction on a pooled
 * connection that takes a unit with
 * `UPDATE stocks SET available = available - 1 WHERE sale_id = $1 AND available > 0` (the
 * row lock serialises every buyer of the sale) and inserts the order; the UNIQUE (sale, user)
 * constraint refuses a second order, which rolls the unit back. Answers after COMMIT.
 */
import type { OrderId } from "../../src/domain/Ids.ts"
import { makePool, servePurchases, type Purchase } from "./server.ts"

const pool = makePool()

const purchase: Purchase = async (sale, userId, orderId) => {
  const client = await pool.connect()
  try {
    await client.query("BEGIN")
    const taken = await client.query(
      "UPDATE stocks SET available = available - 1, updated_at = now() WHERE sale_id = $1 AND available > 0",
      [sale.saleId]
    )
    if (taken.rowCount === 0) {
      await client.query("ROLLBACK")
      return { _tag: "SoldOut" }
    }
    const inserted = await client.query(
      `INSERT INTO orders (id, sale_id, user_id, price_cents, owner_epoch, created_at)
       VALUES ($1, $2, $3, $4, 0, now()) ON CONFLICT (sale_id, user_id) WHERE status IN ('reserved', 'paid') DO NOTHING`,
      [orderId, sale.saleId, userId, sale.priceCents]
    )
    if (inserted.rowCount === 0) {
      await client.query("ROLLBACK")
      const { rows } = await client.query<{ id: OrderId }>(
        "SELECT id FROM orders WHERE sale_id = $1 AND user_id = $2",
        [sale.saleId, userId]
      )
      return rows[0] === undefined
        ? { _tag: "Unavailable" }
        : { _tag: "AlreadyPurchased", orderId: rows[0].id }
    }
    await client.query("COMMIT")
    return { _tag: "Purchased", orderId }
  } catch (cause) {
    await client.query("ROLLBACK").catch(() => undefined)
    throw cause
  } finally {
    client.release()
  }
}

servePurchases({ pool, purchase })

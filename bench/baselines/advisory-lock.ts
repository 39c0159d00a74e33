/**
 * Baseline "advisory lock", the seed's design: each purchase is one transaction on a pooled
 * connection that takes a PostgreSQL advisory lock on the sale
 * (`pg_advisory_xact_lock(hashtextextended(sale_id, 0))`, released at COMMIT), then checks the
 * stock, checks the user has no order, inserts the order and takes the unit. Answers after
 * COMMIT.
 */
import type { OrderId } from "../../src/domain/Ids.ts"
import { makePool, servePurchases, type Purchase } from "./server.ts"

const pool = makePool()

const purchase: Purchase = async (sale, userId, orderId) => {
  const client = await pool.connect()
  try {
    await client.query("BEGIN")
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 0))", [sale.saleId])
    const stock = await client.query<{ available: number }>(
      "SELECT available FROM stocks WHERE sale_id = $1",
      [sale.saleId]
    )
    if ((stock.rows[0]?.available ?? 0) <= 0) {
      await client.query("ROLLBACK")
      return { _tag: "SoldOut" }
    }
    const existing = await client.query<{ id: OrderId }>(
      "SELECT id FROM orders WHERE sale_id = $1 AND user_id = $2",
      [sale.saleId, userId]
    )
    if (existing.rows[0] !== undefined) {
      await client.query("ROLLBACK")
      return { _tag: "AlreadyPurchased", orderId: existing.rows[0].id }
    }
    await client.query(
      `INSERT INTO orders (id, sale_id, user_id, price_cents, owner_epoch, created_at)
       VALUES ($1, $2, $3, $4, 0, now())`,
      [orderId, sale.saleId, userId, sale.priceCents]
    )
    await client.query("UPDATE stocks SET available = available - 1, updated_at = now() WHERE sale_id = $1", [
      sale.saleId
    ])
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

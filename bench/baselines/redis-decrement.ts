/**
 * Baseline "Redis decrement": a Lua script in Redis checks the buyer is new and a unit is
 * left, then decrements the stock and marks the buyer, atomically; the order is then inserted
 * into PostgreSQL (one statement, autocommit, on a pooled connection) before the buyer is
 * answered, so a 201 is as durable as MinCommerce's. If the insert fails, a second script
 * gives the unit back and unmarks the buyer. Redis holds the stock of record while the sale
 * runs (loaded from the stock row on the sale's first purchase); keys start with REDIS_PREFIX.
 */
import { Redis } from "ioredis"
import type { OrderId } from "../../src/domain/Ids.ts"
import { buyersKey, stockKey } from "./redis-keys.ts"
import { makePool, servePurchases, type Purchase } from "./server.ts"

const pool = makePool()
const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379")
const prefix = process.env.REDIS_PREFIX ?? "bench:"

// 1 taken, 0 sold out, -1 this buyer already has a unit.
const take = `
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return -1 end
local left = tonumber(redis.call('GET', KEYS[1]) or '0')
if left <= 0 then return 0 end
redis.call('DECR', KEYS[1])
redis.call('SADD', KEYS[2], ARGV[1])
return 1`
const giveBack = `
if redis.call('SREM', KEYS[2], ARGV[1]) == 1 then redis.call('INCR', KEYS[1]) end
return 1`
redis.defineCommand("takeUnit", { numberOfKeys: 2, lua: take })
redis.defineCommand("giveBackUnit", { numberOfKeys: 2, lua: giveBack })
const scripts = redis as unknown as {
  takeUnit: (stock: string, buyers: string, userId: string) => Promise<number>
  giveBackUnit: (stock: string, buyers: string, userId: string) => Promise<number>
}

const purchase: Purchase = async (sale, userId, orderId) => {
  const stock = stockKey(prefix, sale.saleId)
  const buyers = buyersKey(prefix, sale.saleId)
  const taken = await scripts.takeUnit(stock, buyers, userId)
  if (taken === 0) return { _tag: "SoldOut" }
  if (taken === -1) {
    const { rows } = await pool.query<{ id: OrderId }>(
      "SELECT id FROM orders WHERE sale_id = $1 AND user_id = $2",
      [sale.saleId, userId]
    )
    // The buyer's first purchase may still be inserting: retryable.
    return rows[0] === undefined ? { _tag: "Unavailable" } : { _tag: "AlreadyPurchased", orderId: rows[0].id }
  }
  try {
    await pool.query(
      `INSERT INTO orders (id, sale_id, user_id, price_cents, owner_epoch, created_at)
       VALUES ($1, $2, $3, $4, 0, now())`,
      [orderId, sale.saleId, userId, sale.priceCents]
    )
    return { _tag: "Purchased", orderId }
  } catch {
    await scripts.giveBackUnit(stock, buyers, userId)
    return { _tag: "Unavailable" }
  }
}

servePurchases({
  pool,
  purchase,
  prepareSale: async (sale, available) => {
    await redis.set(stockKey(prefix, sale.saleId), available, "NX")
  }
})

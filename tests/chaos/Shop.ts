import { createSigner } from "fast-jwt"
import pg from "pg"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import type { SaleRecord } from "../../src/storage/Audit.ts"
import { waitFor } from "../support/PrivateServices.ts"

/**
 * The suite's view of a shop: rows written and read with plain SQL, session tokens signed with
 * the shared secret. It is a black-box test of the node (its HTTP contract, its settings and
 * its tables), not of its modules, so it can test any commit's nodes and keeps loading while
 * src/ is being changed.
 */

const connect = async (url: string) => {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 })
  await client.connect()
  return client
}

const withClient = async <A>(url: string, use: (client: pg.Client) => Promise<A>): Promise<A> => {
  const client = await connect(url)
  try {
    return await use(client)
  } finally {
    await client.end()
  }
}

/** A sale of `stock` units, running from a minute ago for an hour, and `buyers` users. */
export const stockShop = (
  url: string,
  options: { readonly stock: number; readonly buyers: number; readonly tag: string }
) =>
  withClient(url, async (client) => {
    // The first node to start runs the migrations.
    await waitFor(
      "the schema",
      async () =>
        (await client.query(`SELECT to_regclass('public.stocks') AS t`)).rows[0]?.t !== null || undefined,
      60_000,
      100
    )
    await client.query("BEGIN")
    const product = await client.query<{ id: string }>(
      `INSERT INTO products (name, description) VALUES ('Chaos sneaker', 'A fault-suite product') RETURNING id`
    )
    const sale = await client.query<{ id: SaleId }>(
      `INSERT INTO flash_sales (product_id, price_cents, starts_at, ends_at)
       VALUES ($1, 12900, now() - interval '1 minute', now() + interval '1 hour') RETURNING id`,
      [product.rows[0]!.id]
    )
    const saleId = sale.rows[0]!.id
    await client.query(`INSERT INTO stocks (sale_id, total, available) VALUES ($1, $2, $2)`, [
      saleId,
      options.stock
    ])
    const emails = Array.from({ length: options.buyers }, (_, i) => `chaos-${options.tag}-${i}@example.test`)
    const users = await client.query<{ id: UserId; email: string }>(
      `INSERT INTO users (email) SELECT unnest($1::text[]) RETURNING id, email`,
      [emails]
    )
    await client.query("COMMIT")
    const byEmail = new Map(users.rows.map((row) => [row.email, row.id]))
    return { saleId, users: emails.map((email) => ({ userId: byEmail.get(email)!, email })) }
  })

/** What PostgreSQL committed for the sale, read directly (not through the fault proxy). */
export const readSale = (url: string, saleId: SaleId): Promise<SaleRecord> =>
  withClient(url, async (client) => {
    const stock = await client.query<{ total: number; available: number }>(
      `SELECT total, available FROM stocks WHERE sale_id = $1`,
      [saleId]
    )
    const orders = await client.query<{ id: OrderId; user_id: UserId }>(
      `SELECT id, user_id FROM orders WHERE sale_id = $1`,
      [saleId]
    )
    return {
      saleId,
      stock: stock.rows[0]?.total ?? 0,
      available: stock.rows[0]?.available ?? 0,
      orders: new Map(orders.rows.map((row) => [row.id, row.user_id]))
    }
  })

/** Session tokens as the nodes issue them: HS256 over { sub, email, iat, exp } with JWT_SECRET. */
export const tokenSigner = (secret: string) => {
  const sign = createSigner({ key: secret, algorithm: "HS256", expiresIn: 3_600_000 })
  return (userId: UserId, email: string): string => sign({ sub: userId, email })
}

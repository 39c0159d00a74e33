/**
 * What every lock-based baseline shares: a bare node:http server for
 * `POST /api/sales/:saleId/purchases` with MinCommerce's validation and answers (the HS256 bearer
 * token verified by MinCommerce's own `Tokens`; the sale id checked as a UUID;
 * a body over 16 KiB refused; the sale's window checked), a `pg` connection pool, and the
 * sale's row read once a second at most. Only `purchase` differs between designs.
 */
import { Schema } from "effect"
import { randomUUID } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import pg from "pg"
import { type OrderId, type SaleId, SaleId as SaleIdSchema, type UserId } from "../../src/domain/Ids.ts"
import { Tokens } from "../../src/http/Tokens.ts"

export interface Sale {
  readonly saleId: SaleId
  readonly priceCents: number
  readonly startsAt: number
  readonly endsAt: number
  readonly cancelled: boolean
}

/** What a design answers for one purchase; the shapes are MinCommerce's. */
export type Answer =
  | { readonly _tag: "Purchased"; readonly orderId: OrderId }
  | { readonly _tag: "AlreadyPurchased"; readonly orderId: OrderId }
  | { readonly _tag: "SoldOut" }
  | { readonly _tag: "Unavailable" }

export type Purchase = (sale: Sale, userId: UserId, orderId: OrderId) => Promise<Answer>

const isSaleId = Schema.is(SaleIdSchema)
const purchasePath = /^\/api\/sales\/([^/?#]+)\/purchases$/
const maxBodyBytes = 16 * 1024
const saleCacheMillis = 1_000

const settings = () => {
  const databaseUrl = process.env.DATABASE_URL
  const secret = process.env.JWT_SECRET
  if (databaseUrl === undefined || secret === undefined)
    throw new Error("DATABASE_URL and JWT_SECRET are required")
  return {
    databaseUrl,
    secret,
    poolSize: Number(process.env.POOL_SIZE ?? 20),
    port: Number(process.env.PORT ?? 0)
  }
}

/** The pool every baseline uses: `POOL_SIZE` connections (default 20) to `DATABASE_URL`. */
export const makePool = () => {
  const { databaseUrl, poolSize } = settings()
  return new pg.Pool({ connectionString: databaseUrl, max: poolSize })
}

const send = (response: ServerResponse, status: number, body: unknown) => {
  const text = JSON.stringify(body)
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text)
  })
  response.end(text)
}

const error = (response: ServerResponse, status: number, code: string, message: string) =>
  send(response, status, { error: { code, message } })

/** Starts the server; logs "Listening on <url>" once it accepts connections. */
export const servePurchases = (options: {
  readonly pool: pg.Pool
  readonly purchase: Purchase
  /** Runs once per sale, on its first purchase (the Redis design loads the stock there). */
  readonly prepareSale?: (sale: Sale, available: number) => Promise<void>
}) => {
  const { secret, port } = settings()
  // MinCommerce's own token check, so the validation cannot drift apart.
  const tokens = Tokens.make({ secret: new TextEncoder().encode(secret), ttlSeconds: 3_600 })
  const userOf = (authorization: string | undefined): UserId | undefined =>
    authorization === undefined || !authorization.startsWith("Bearer ")
      ? undefined
      : tokens.verify(authorization.slice(7))?.userId

  const sales = new Map<SaleId, { readonly at: number; readonly sale: Promise<Sale | undefined> }>()
  const prepared = new Map<SaleId, Promise<void>>()
  const loadSale = async (saleId: SaleId): Promise<Sale | undefined> => {
    const { rows } = await options.pool.query<{
      price_cents: number
      starts_at: Date
      ends_at: Date
      status: string
      available: number
    }>(
      `SELECT f.price_cents, f.starts_at, f.ends_at, f.status, s.available
         FROM flash_sales f JOIN stocks s ON s.sale_id = f.id WHERE f.id = $1`,
      [saleId]
    )
    const row = rows[0]
    if (row === undefined) return undefined
    const sale: Sale = {
      saleId,
      priceCents: row.price_cents,
      startsAt: row.starts_at.getTime(),
      endsAt: row.ends_at.getTime(),
      cancelled: row.status === "cancelled"
    }
    if (options.prepareSale !== undefined && !prepared.has(saleId)) {
      prepared.set(saleId, options.prepareSale(sale, row.available))
    }
    await prepared.get(saleId)
    return sale
  }
  const saleOf = (saleId: SaleId): Promise<Sale | undefined> => {
    const now = Date.now()
    const cached = sales.get(saleId)
    if (cached !== undefined && now - cached.at < saleCacheMillis) return cached.sale
    const sale = loadSale(saleId)
    sales.set(saleId, { at: now, sale })
    sale.catch(() => sales.delete(saleId))
    return sale
  }

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const saleId = request.method === "POST" ? purchasePath.exec(request.url ?? "")?.[1] : undefined
    if (saleId === undefined) return error(response, 404, "not_found", "No such resource")
    if (!isSaleId(saleId)) return error(response, 400, "invalid_request", "Invalid path: expected a UUID")
    const userId = userOf(request.headers.authorization)
    if (userId === undefined) return error(response, 401, "unauthorized", "A valid bearer token is required")
    const sale = await saleOf(saleId)
    if (sale === undefined) return error(response, 404, "sale_not_found", "No such sale")
    const now = Date.now()
    if (sale.cancelled || now < sale.startsAt || now >= sale.endsAt) {
      return error(response, 409, "sale_not_active", "The sale is not running")
    }
    const answer = await options.purchase(sale, userId, randomUUID() as OrderId)
    switch (answer._tag) {
      case "Purchased":
        return send(response, 201, {
          orderId: answer.orderId,
          saleId,
          status: "purchased",
          alreadyPurchased: false
        })
      case "AlreadyPurchased":
        return send(response, 200, {
          orderId: answer.orderId,
          saleId,
          status: "purchased",
          alreadyPurchased: true
        })
      case "SoldOut":
        return error(response, 409, "sold_out", "Every unit is sold")
      case "Unavailable":
        response.setHeader("retry-after", "1")
        return error(response, 503, "unavailable", "The purchase was not completed; it is safe to try again")
    }
  }

  const server = createServer((request, response) => {
    // As a MinCommerce node does: the caller's request id comes back (the bench matches each
    // answer to its buyer by it).
    const requestId = request.headers["x-request-id"]
    if (typeof requestId === "string" && requestId.length <= 64) response.setHeader("x-request-id", requestId)
    // The endpoint takes no payload: a body is read and dropped, and refused past the limit.
    let bytes = 0
    let refused = false
    request.on("data", (chunk: Buffer) => {
      bytes += chunk.length
      if (bytes > maxBodyBytes && !refused) {
        refused = true
        error(response, 413, "payload_too_large", "The request body is over the size limit")
      }
    })
    request.on("end", () => {
      if (refused) return
      handle(request, response).catch(() => {
        if (!response.headersSent) error(response, 503, "unavailable", "The purchase was not completed")
      })
    })
  })
  server.headersTimeout = 5_000
  server.requestTimeout = 10_000
  server.keepAliveTimeout = 5_000
  server.listen(port, "127.0.0.1", () => {
    const address = server.address()
    console.log(
      `Listening on http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : port}`
    )
  })
  const close = () => {
    server.close()
    server.closeAllConnections()
    void options.pool.end().then(() => process.exit(0))
  }
  process.once("SIGTERM", close)
  process.once("SIGINT", close)
}

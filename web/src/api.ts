/** The MinCommerce HTTP API as the browser sees it (paths and shapes of src/http/Api.ts). */

export type SaleStatus = "upcoming" | "active" | "sold_out" | "ended" | "cancelled"

export interface Sale {
  readonly saleId: string
  readonly productName: string
  readonly priceCents: number
  readonly startsAt: string
  readonly endsAt: string
  readonly status: SaleStatus
  readonly total: number
  readonly remaining: number
}

export interface Session {
  readonly token: string
  readonly userId: string
  readonly email: string
  readonly admin: boolean
}

export interface Order {
  readonly orderId: string
  readonly saleId: string
  readonly priceCents: number
  readonly createdAt: string
}

export interface Purchase {
  readonly orderId: string
  readonly saleId: string
  readonly status: "purchased"
  readonly alreadyPurchased: boolean
}

export interface SaleStats {
  readonly saleId: string
  readonly status: SaleStatus
  readonly total: number
  readonly remaining: number
  readonly attempts: number
  readonly byOutcome: Readonly<Record<string, number>>
  readonly committed: number
  readonly soldOutAt: string | null
  readonly recentPurchasesPerSecond: number
  /** Over the sale's commits so far, whichever node made them; null before the first. */
  readonly commitLatencyMillis: { readonly p50: number; readonly p99: number } | null
}

/** An answer other than 2xx: the API's `{ error: { code, message, details? } }`. */
export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly details: unknown
  /** Seconds from `Retry-After` (429 and 503), else undefined. */
  readonly retryAfterSeconds: number | undefined

  constructor(status: number, code: string, message: string, details: unknown, retryAfterSeconds?: number) {
    super(message)
    this.status = status
    this.code = code
    this.details = details
    this.retryAfterSeconds = retryAfterSeconds
  }
}

/** `Retry-After` is either seconds or an HTTP date; at least one second. */
export const parseRetryAfter = (value: string | null, now: number = Date.now()): number | undefined => {
  if (value === null || value.trim() === "") return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds)) return Math.max(1, Math.ceil(seconds))
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(1, Math.ceil((at - now) / 1_000))
}

const errorOf = async (response: Response): Promise<ApiError> => {
  let code = "http_" + response.status
  let message = response.statusText || "Request failed"
  let details: unknown
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string; details?: unknown } }
    if (body.error?.code !== undefined) code = body.error.code
    if (body.error?.message !== undefined) message = body.error.message
    details = body.error?.details
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(
    response.status,
    code,
    message,
    details,
    parseRetryAfter(response.headers.get("retry-after"))
  )
}

const call = async <A>(
  method: string,
  path: string,
  options: { token?: string | undefined; body?: unknown; signal?: AbortSignal | undefined } = {}
): Promise<{ status: number; body: A }> => {
  const headers: Record<string, string> = { accept: "application/json" }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  if (options.body !== undefined) headers["content-type"] = "application/json"
  const init: RequestInit = { method, headers }
  if (options.body !== undefined) init.body = JSON.stringify(options.body)
  if (options.signal !== undefined) init.signal = options.signal
  const response = await fetch(path, init)
  if (!response.ok) throw await errorOf(response)
  return { status: response.status, body: (await response.json()) as A }
}

const get = async <A>(path: string, token?: string, signal?: AbortSignal): Promise<A> =>
  (await call<A>("GET", path, { token, signal })).body

export const api = {
  login: async (email: string): Promise<Session> =>
    (await call<Session>("POST", "/api/auth/login", { body: { email } })).body,
  sales: (signal?: AbortSignal) => get<ReadonlyArray<Sale>>("/api/sales", undefined, signal),
  sale: (saleId: string) => get<Sale>(`/api/sales/${encodeURIComponent(saleId)}`),
  purchase: async (token: string, saleId: string): Promise<Purchase> =>
    (await call<Purchase>("POST", `/api/sales/${encodeURIComponent(saleId)}/purchases`, { token })).body,
  myOrders: (token: string, userId: string) =>
    get<ReadonlyArray<Order>>(`/api/purchase/user/${encodeURIComponent(userId)}`, token),
  createProduct: async (token: string, name: string): Promise<{ productId: string }> =>
    (await call<{ productId: string }>("POST", "/api/admin/products", { token, body: { name } })).body,
  createSale: async (
    token: string,
    sale: { productId: string; priceCents: number; stock: number; startsAt: string; endsAt: string }
  ): Promise<Sale> => (await call<Sale>("POST", "/api/admin/sales", { token, body: sale })).body,
  updateSale: async (
    token: string,
    saleId: string,
    changes: { priceCents?: number; stock?: number; startsAt?: string; endsAt?: string }
  ): Promise<Sale> =>
    (await call<Sale>("PATCH", `/api/admin/sales/${encodeURIComponent(saleId)}`, { token, body: changes }))
      .body,
  cancelSale: async (token: string, saleId: string): Promise<Sale> =>
    (await call<Sale>("POST", `/api/admin/sales/${encodeURIComponent(saleId)}/cancel`, { token })).body,
  saleStats: (token: string, saleId: string) =>
    get<SaleStats>(`/api/admin/sales/${encodeURIComponent(saleId)}/stats`, token),
  /** Prometheus text of the node that answers. */
  metrics: async (): Promise<string> => {
    const response = await fetch("/metrics")
    if (!response.ok) throw await errorOf(response)
    return response.text()
  }
}

export const formatPrice = (cents: number): string =>
  new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" }).format(cents / 100)

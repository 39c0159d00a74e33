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
  /** A purchase must carry a solved challenge of this difficulty; null: none. */
  readonly powDifficulty: number | null
  /** Only accounts created before this instant may buy; null: any. */
  readonly accountsCreatedBefore: string | null
  readonly allocation: Allocation
  /** Seconds a purchase is held for payment; 0: a purchase is final at once. */
  readonly holdSeconds: number
}

/** The sale's draw, when it is one. */
export const drawOf = (sale: Sale): Extract<Allocation, { readonly mode: "draw" }> | undefined =>
  sale.allocation.mode === "draw" ? sale.allocation : undefined

/**
 * How a sale hands out its units: first come, first served, or a draw among everyone who
 * entered in the window from the start to `drawAt`. The seed's commitment is public from the
 * start; the seed itself once the draw is done.
 */
export type Allocation =
  | { readonly mode: "first_come" }
  | {
      readonly mode: "draw"
      readonly entryWindowSeconds: number
      readonly drawAt: string
      readonly commitment: string
      readonly seed: string | null
      readonly drawnAt: string | null
    }

/** A draw as anyone can check it; entries, seed and result only once it is done. */
export interface DrawRecord {
  readonly saleId: string
  readonly drawAt: string
  readonly commitment: string
  readonly drawn: boolean
  readonly drawnAt: string | null
  readonly seed: string | null
  readonly units: number | null
  readonly entriesHash: string | null
  readonly entries: ReadonlyArray<{ readonly userId: string; readonly entryId: string }> | null
  readonly winners: ReadonlyArray<string> | null
  readonly waitingList: ReadonlyArray<string> | null
}

/** A buyer's entry in a draw sale. */
export interface Entry {
  readonly saleId: string
  readonly status: "none" | "entered" | "won" | "not_drawn"
  readonly drawAt: string
  readonly drawnAt: string | null
  readonly entryId: string | null
  readonly enteredAt: string | null
  /** The winner's order. */
  readonly orderId: string | null
  /** Not drawn: place on the waiting list for units that come back (1 is next). */
  readonly waitingListPlace: number | null
}

/** A proof-of-work challenge as the node issues it (ALTCHA v2), bound to the buyer and the sale. */
export interface PowChallenge {
  readonly parameters: {
    readonly algorithm: string
    readonly nonce: string
    readonly salt: string
    readonly cost: number
    readonly keyLength: number
    readonly keyPrefix: string
    readonly keySignature?: string
    readonly expiresAt?: number
    readonly data?: Readonly<Record<string, string | number | boolean | null>>
  }
  readonly signature: string
}

/**
 * A signed-in buyer: a short-lived access token (until `expiresAt`, epoch ms) that the client
 * renews from the node's httpOnly refresh cookie without the buyer noticing. `admin` is for
 * showing the console; the node checks the role again on every admin request.
 */
export interface Session {
  readonly token: string
  readonly expiresAt: number
  readonly userId: string
  readonly email: string
  readonly admin: boolean
}

interface SignedIn {
  readonly token: string
  readonly expiresInSeconds: number
  readonly userId: string
  readonly email: string
  readonly admin: boolean
}

const sessionOf = (signedIn: SignedIn): Session => ({
  token: signedIn.token,
  expiresAt: Date.now() + signedIn.expiresInSeconds * 1_000,
  userId: signedIn.userId,
  email: signedIn.email,
  admin: signedIn.admin
})

export interface Order {
  readonly orderId: string
  readonly saleId: string
  readonly priceCents: number
  readonly createdAt: string
  readonly status: OrderStatus
  /** A held order's deadline to pay; null once final (or for a sale without holds). */
  readonly payBy: string | null
}

/**
 * An order's place in checkout: held for payment until `payBy` (reserved), then paid, expired
 * (not paid in time), cancelled by its buyer, or refunded (paid after the hold ended). An order
 * of a sale without holds is paid from the start.
 */
export type OrderStatus = "reserved" | "paid" | "expired" | "cancelled" | "refunded"

/** One order as its buyer (or an admin) reads it. */
export interface OrderDetail {
  readonly orderId: string
  readonly saleId: string
  readonly userId: string
  readonly status: OrderStatus
  readonly priceCents: number
  readonly currency: string
  readonly createdAt: string
  readonly payBy: string | null
  readonly paidAt: string | null
}

export type Purchase =
  | {
      readonly orderId: string
      readonly saleId: string
      /** "lapsed": a repeat of a buyer whose hold ended unpaid; the order holds no unit. */
      readonly status: "purchased" | "lapsed"
      readonly alreadyPurchased: boolean
    }
  /** A hold sale: the unit is the buyer's if paid by `payBy` (a repeat may be either kind). */
  | {
      readonly orderId: string
      readonly saleId: string
      readonly status: "reserved"
      readonly alreadyPurchased: boolean
      readonly payBy: string
    }
  /** 202 in a draw sale's window: an entry, committed; the draw decides later. */
  | {
      readonly saleId: string
      readonly status: "entered"
      readonly entered: { readonly entryId: string; readonly enteredAt: string; readonly drawAt: string }
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
  /** Order rows by checkout status. */
  readonly orders: Readonly<Record<OrderStatus, number>>
  /** paid / (paid + expired + cancelled + refunded); null while none of those exist. */
  readonly paidConversion: number | null
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

type Listener = (session: Session | undefined) => void
const listeners = new Set<Listener>()

/** Called with the renewed session after each refresh (undefined: the session is over). */
export const onSessionChange = (listener: Listener): (() => void) => {
  listeners.add(listener)
  return () => listeners.delete(listener)
}

let refreshing: Promise<Session | undefined> | undefined

/**
 * A new access token from the refresh cookie, once at a time however many calls ask; undefined
 * when the cookie is gone or expired (the buyer signs in again).
 */
export const refreshSession = (): Promise<Session | undefined> => {
  refreshing ??= fetch("/api/auth/refresh", { method: "POST", headers: { accept: "application/json" } })
    .then(async (response) => (response.ok ? sessionOf((await response.json()) as SignedIn) : undefined))
    .catch(() => undefined)
    .then((session) => {
      refreshing = undefined
      for (const listener of listeners) listener(session)
      return session
    })
  return refreshing
}

interface CallOptions {
  token?: string | undefined
  body?: unknown
  signal?: AbortSignal | undefined
  headers?: Readonly<Record<string, string>> | undefined
}

const send = (method: string, path: string, options: CallOptions): Promise<Response> => {
  const headers: Record<string, string> = { accept: "application/json", ...options.headers }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  if (options.body !== undefined) headers["content-type"] = "application/json"
  const init: RequestInit = { method, headers }
  if (options.body !== undefined) init.body = JSON.stringify(options.body)
  if (options.signal !== undefined) init.signal = options.signal
  return fetch(path, init)
}

const call = async <A>(
  method: string,
  path: string,
  options: CallOptions = {}
): Promise<{ status: number; body: A }> => {
  let response = await send(method, path, options)
  // An access token lives minutes: an expired one is renewed once and the call made again.
  if (response.status === 401 && options.token !== undefined) {
    const renewed = await refreshSession()
    if (renewed !== undefined) response = await send(method, path, { ...options, token: renewed.token })
  }
  if (!response.ok) throw await errorOf(response)
  return { status: response.status, body: (response.status === 204 ? undefined : await response.json()) as A }
}

const get = async <A>(path: string, token?: string, signal?: AbortSignal): Promise<A> =>
  (await call<A>("GET", path, { token, signal })).body

export const api = {
  signUp: async (email: string, password: string): Promise<Session> =>
    sessionOf((await call<SignedIn>("POST", "/api/auth/signup", { body: { email, password } })).body),
  login: async (email: string, password: string): Promise<Session> =>
    sessionOf((await call<SignedIn>("POST", "/api/auth/login", { body: { email, password } })).body),
  logout: async (): Promise<void> => {
    await call<undefined>("POST", "/api/auth/logout")
  },
  /** The signed-in user as the node sees them now, the admin role included. */
  me: (token: string) => get<{ userId: string; email: string; admin: boolean }>("/api/auth/me", token),
  sales: (signal?: AbortSignal) => get<ReadonlyArray<Sale>>("/api/sales", undefined, signal),
  sale: (saleId: string) => get<Sale>(`/api/sales/${encodeURIComponent(saleId)}`),
  /** A proof-of-work challenge for this buyer and sale (only for a sale with a difficulty). */
  challenge: (token: string, saleId: string) =>
    get<PowChallenge>(`/api/sales/${encodeURIComponent(saleId)}/challenge`, token),
  /** `proof`: the solved challenge, for a sale that asks one. */
  purchase: async (token: string, saleId: string, proof?: string): Promise<Purchase> =>
    (
      await call<Purchase>("POST", `/api/sales/${encodeURIComponent(saleId)}/purchases`, {
        token,
        headers: proof === undefined ? undefined : { "proof-of-work": proof }
      })
    ).body,
  /** The buyer's entry in a draw sale: entered, won (with the order) or not drawn. */
  entry: (token: string, saleId: string) =>
    get<Entry>(`/api/sales/${encodeURIComponent(saleId)}/entry`, token),
  draw: (saleId: string) => get<DrawRecord>(`/api/sales/${encodeURIComponent(saleId)}/draw`),
  /** One of the buyer's orders, where it stands in checkout. */
  order: (token: string, orderId: string) =>
    get<OrderDetail>(`/api/orders/${encodeURIComponent(orderId)}`, token),
  /** Starts paying a held order: the provider's page to send the browser to. */
  payOrder: async (token: string, orderId: string): Promise<{ checkoutUrl: string }> =>
    (await call<{ checkoutUrl: string }>("POST", `/api/orders/${encodeURIComponent(orderId)}/pay`, { token }))
      .body,
  /** Gives a held order up: the unit goes back on sale. */
  cancelOrder: async (token: string, orderId: string): Promise<OrderDetail> =>
    (await call<OrderDetail>("POST", `/api/orders/${encodeURIComponent(orderId)}/cancel`, { token })).body,
  myOrders: (token: string, userId: string) =>
    get<ReadonlyArray<Order>>(`/api/purchase/user/${encodeURIComponent(userId)}`, token),
  createProduct: async (token: string, name: string): Promise<{ productId: string }> =>
    (await call<{ productId: string }>("POST", "/api/admin/products", { token, body: { name } })).body,
  createSale: async (
    token: string,
    sale: {
      productId: string
      priceCents: number
      stock: number
      startsAt: string
      endsAt: string
      powDifficulty?: number
      olderAccountsOnly?: boolean
      allocation?: "first_come" | "draw"
      entryWindowSeconds?: number
      holdSeconds?: number
      repurchaseAfterLapse?: boolean
    }
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

import autocannon from "autocannon"
import { Effect } from "effect"
import type { OrderId, UserId } from "../src/domain/Ids.ts"

/** What one load phase measured. */
export interface Phase {
  readonly seconds: number
  readonly requests: number
  readonly requestsPerSecond: number
  /** 201 answers per second from the start until the last 201 (while stock lasted). */
  readonly purchasesPerSecond: number
  readonly p50: number
  readonly p99: number
  readonly p999: number
  /** Answers by HTTP status, plus "errors" (connection errors) and "timeouts". */
  readonly outcomes: Record<string, number>
  /** Every 2xx answer with an order id: order id -> the buyer whose token was sent. */
  readonly confirmed: Map<OrderId, UserId>
  /** Buyers answered a definite refusal (a 4xx other than 408). */
  readonly refused: Set<UserId>
  readonly purchased: number
  /** Seconds from the start to the last 201. */
  readonly lastPurchaseSeconds: number
}

/** Live counts, for a progress bar. */
export interface Ticker {
  readonly onTick: (elapsedSeconds: number, requests: number, purchased: number) => void
}

/**
 * POSTs `{"quantity":1}` to `urls` (connections spread over them) for `seconds`, each request
 * with the next buyer's bearer token (buyers cycle in order, so a phase of fewer requests than
 * buyers sends each buyer once).
 */
export const load = (options: {
  readonly urls: ReadonlyArray<string>
  readonly connections: number
  readonly seconds: number
  readonly tokens: ReadonlyArray<string>
  readonly users: ReadonlyArray<UserId>
  readonly ticker?: Ticker
}) =>
  Effect.promise(async (): Promise<Phase> => {
    const { tokens, users } = options
    let next = 0
    let requests = 0
    let purchased = 0
    const outcomes: Record<string, number> = {}
    const confirmed = new Map<OrderId, UserId>()
    const refused = new Set<UserId>()
    const started = performance.now()
    let lastPurchase = started
    const ticks = setInterval(
      () => options.ticker?.onTick((performance.now() - started) / 1_000, requests, purchased),
      200
    )
    const result = await autocannon({
      // autocannon takes several URLs (connections go round-robin), though its types say one.
      url: (options.urls.length === 1 ? options.urls[0]! : [...options.urls]) as string,
      connections: options.connections,
      duration: options.seconds,
      requests: [
        {
          method: "POST",
          body: '{"quantity":1}',
          setupRequest: (request, context: { user?: number }) => {
            const i = next++ % tokens.length
            context.user = i
            return {
              ...request,
              headers: {
                ...request.headers,
                "content-type": "application/json",
                authorization: `Bearer ${tokens[i]}`
              }
            }
          },
          onResponse: (status, body, context: { user?: number }) => {
            requests++
            outcomes[status] = (outcomes[status] ?? 0) + 1
            if (status >= 400 && status <= 499 && status !== 408 && context.user !== undefined) {
              refused.add(users[context.user]!)
            }
            if (status < 200 || status > 299) return
            if (status === 201) {
              purchased++
              lastPurchase = performance.now()
            }
            let orderId: OrderId | undefined
            try {
              orderId = (JSON.parse(body) as { orderId?: OrderId }).orderId
            } catch {
              orderId = undefined
            }
            if (orderId !== undefined && context.user !== undefined)
              confirmed.set(orderId, users[context.user]!)
          }
        }
      ]
    })
    clearInterval(ticks)
    const seconds = (performance.now() - started) / 1_000
    if (result.errors > 0) outcomes.errors = result.errors
    if (result.timeouts > 0) outcomes.timeouts = result.timeouts
    const lastPurchaseSeconds = purchased === 0 ? 0 : (lastPurchase - started) / 1_000
    return {
      seconds,
      requests,
      requestsPerSecond: requests / Math.min(seconds, options.seconds),
      purchasesPerSecond: purchased === 0 ? 0 : purchased / Math.max(lastPurchaseSeconds, 0.001),
      p50: result.latency.p50,
      p99: result.latency.p99,
      p999: result.latency.p99_9,
      outcomes,
      confirmed,
      refused,
      purchased,
      lastPurchaseSeconds
    }
  })

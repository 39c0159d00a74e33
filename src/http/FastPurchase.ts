import { Cause, Context, Effect, Exit, Layer, Schema } from "effect"
import { EventEmitter } from "node:events"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import { isRefusal, type SaleActor } from "../actors/SaleActor.ts"
import { SaleRouter } from "../cluster/SaleRouter.ts"
import { SaleId } from "../domain/Ids.ts"
import * as Settings from "../Settings.ts"
import { Limits } from "./Limits.ts"
import { countOutcomeUnsafe, countRequestUnsafe } from "./Metrics.ts"
import { purchaseAnswer, type PurchaseAnswer } from "./PurchaseAnswer.ts"
import { requestIdFor, securityHeaders } from "./ResponseHeaders.ts"
import { Tokens, type Session } from "./Tokens.ts"

const purchasePath = /^\/api\/sales\/([^/?#]+)\/purchases$/
const isSaleId = Schema.is(SaleId)
// The HttpApi error classes these statuses belong to: their encoded answers carry the tag.
const errorTag = { 409: "Conflict", 429: "TooManyRequests", 503: "Unavailable" } as const
// The metrics' route label, known here without reading the sale id out of each URL.
const route = "/api/sales/:id/purchases"

/**
 * The purchase endpoint (`POST /api/sales/:saleId/purchases`, as the HttpApi states it)
 * served straight from node:http when the request is the common, well-formed case: a
 * valid token, a sale whose actor runs here (or whose owner elsewhere is known: the purchase
 * is forwarded to it), a small body. Measured on this
 * machine, the framework's own per-request layers cost more than the whole decision, and a
 * flash sale is almost nothing but this one request.
 *
 * Anything else (no or bad token, a sale nobody is known to own, big or chunked body, a CORS
 * request) is declined and goes to the HttpApi handler, which answers it with the same
 * `PurchaseAnswer` and shapes every error; so the contract has one definition.
 */
export class FastPurchase extends Context.Service<
  FastPurchase,
  {
    /** Serves the request and returns true, or returns false and leaves it untouched. */
    readonly handle: (request: IncomingMessage, response: ServerResponse) => boolean
  }
>()("mincommerce/http/FastPurchase") {
  static readonly make = (options: {
    /**
     * How to offer a purchase for the sale without a fiber: its actor here, or a forward to
     * the owner whose route is known; undefined sends the request the long way.
     */
    readonly offerTo: (saleId: SaleId) => SaleActor["offer"] | undefined
    readonly verify: (token: string) => Session | undefined
    readonly limits: Limits["Service"]
    readonly maxBodyBytes: number
    /** Browsers on other origins need CORS headers: their requests take the HttpApi route. */
    readonly corsEnabled: boolean
  }) => {
    const answer = (request: IncomingMessage, response: ServerResponse, result: PurchaseAnswer) => {
      const body = JSON.stringify(
        "order" in result ? result.order : { _tag: errorTag[result.status], error: result.error }
      )
      const headers: Record<string, string | number> = {
        ...securityHeaders,
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        "x-request-id": requestIdFor(header(request, "x-request-id"))
      }
      if ("retryAfterSeconds" in result && result.retryAfterSeconds !== undefined) {
        headers["retry-after"] = String(Math.max(1, Math.ceil(result.retryAfterSeconds)))
      }
      response.writeHead(result.status, headers)
      response.end(body)
      countRequestUnsafe("POST", route, result.status)
    }

    const handle = (request: IncomingMessage, response: ServerResponse): boolean => {
      if (request.method !== "POST") return false
      const url = request.url ?? ""
      const match = purchasePath.exec(url)
      const saleId = match?.[1]
      if (saleId === undefined || !isSaleId(saleId)) return false
      const headers = request.headers
      if (headers["transfer-encoding"] !== undefined || headers.expect !== undefined) return false
      if (Number(headers["content-length"] ?? 0) > options.maxBodyBytes) return false
      if (options.corsEnabled && headers.origin !== undefined) return false
      const authorization = headers.authorization
      if (authorization === undefined || !authorization.startsWith("Bearer ")) return false
      const session = options.verify(authorization.slice(7))
      if (session === undefined) return false
      const offer = options.offerTo(saleId)
      if (offer === undefined) return false

      const address = request.socket.remoteAddress ?? "unknown"
      const limited = Effect.runSyncExit(options.limits.takeFor(address, session.userId))
      if (Exit.isFailure(limited)) {
        const tooMany = Cause.findErrorOption(limited.cause)
        if (tooMany._tag === "None") return false
        request.resume()
        const details = tooMany.value.error.details as { readonly retryAfterSeconds?: number } | undefined
        answer(request, response, {
          status: 429,
          error: tooMany.value.error,
          retryAfterSeconds: details?.retryAfterSeconds ?? 1
        })
        return true
      }

      // The endpoint takes no payload: whatever was sent is read and dropped.
      request.resume()
      offer(session.userId, (reply) => {
        if (!isRefusal(reply)) countOutcomeUnsafe(reply._tag)
        answer(request, response, purchaseAnswer(saleId, reply))
      })
      return true
    }

    return FastPurchase.of({ handle })
  }

  /** The fast path over this node's actors, tokens and rate limits. */
  static readonly layerWith = (options: { readonly maxBodyBytes: number; readonly corsEnabled: boolean }) =>
    Layer.effect(
      FastPurchase,
      Effect.gen(function* () {
        const router = yield* SaleRouter
        const tokens = yield* Tokens
        const limits = yield* Limits
        const offerTo = (saleId: SaleId) => router.localActor(saleId)?.offer ?? router.forwarderFor(saleId)
        return FastPurchase.make({ ...options, offerTo, verify: tokens.verifyUnsafe, limits })
      })
    )

  static readonly layer = Layer.unwrap(
    Effect.map(Settings.httpSettings, ({ maxBodyBytes, corsOrigins }) =>
      FastPurchase.layerWith({ maxBodyBytes: Number(maxBodyBytes), corsEnabled: corsOrigins.length > 0 })
    )
  )
}

const header = (request: IncomingMessage, name: string): string | undefined => {
  const value = request.headers[name]
  return Array.isArray(value) ? value[0] : value
}

/**
 * A node:http server that offers every request to the fast path first; what it declines
 * reaches the Effect handler the server is later given, unchanged.
 */
export const createServerWith = (fast: FastPurchase["Service"]): Server => {
  const server = createServer()
  const emit = EventEmitter.prototype.emit.bind(server)
  server.emit = ((event: string | symbol, ...args: Array<unknown>) => {
    if (event === "request" && fast.handle(args[0] as IncomingMessage, args[1] as ServerResponse)) return true
    return emit(event, ...args)
  }) as typeof server.emit
  return server
}

import { Context, Effect, Exit, Layer, Schema } from "effect"
import type { HttpServerResponse } from "effect/http"
import type { IncomingMessage, ServerResponse } from "node:http"
import { SaleRouter } from "../cluster/SaleRouter.ts"
import { SaleNotFound } from "../domain/Errors.ts"
import { SaleId, type UserId } from "../domain/Ids.ts"
import type { PurchaseRules } from "../domain/PurchaseRules.ts"
import { isOutcome, type RoutedReply } from "../domain/Reply.ts"
import * as Settings from "../Settings.ts"
import * as Tracing from "../Tracing.ts"
import { NotReady } from "./ApiErrors.ts"
import { errorAnswer, headerList, successAnswer, toServerResponse, type JsonAnswer } from "./JsonAnswer.ts"
import { Limits } from "./Limits.ts"
import { countOutcome, countRequest } from "./Metrics.ts"
import { ProofOfWork, proofHeader } from "./ProofOfWork.ts"
import { purchaseAnswer } from "./PurchaseAnswer.ts"
import { requestIdFor } from "./ResponseHeaders.ts"
import { SaleRules } from "./SaleRules.ts"
import { Tokens, type Session } from "./Tokens.ts"

const purchasePath = /^\/api\/sales\/([^/?#]+)\/purchases$/
const isSaleId = Schema.is(SaleId)
// The metrics' route label, known here without reading the sale id out of each URL.
const route = "/api/sales/:id/purchases"

/**
 * `POST /api/sales/:saleId/purchases`, stated once for its two ways in: the HttpApi handler,
 * and a node:http route in front of the framework that serves the common, well-formed case
 * without a fiber (on this machine the framework's own per-request layers cost more than the
 * whole decision, and a flash sale is almost nothing but this request). Both take the caller's
 * rate limits the same way and render the sale's reply with the same bytes, status and headers.
 *
 * Both also apply the sale's purchase rules before the sale's mailbox: the account rule (the
 * account's age from the token's claim) and the proof of work (two HMACs over the solution the
 * `Proof-Of-Work` header carries), with no database read once the node knows the sale's rules.
 * A sale without proof of work pays one map lookup for its rules.
 */
export class PurchaseEndpoint extends Context.Service<
  PurchaseEndpoint,
  {
    /**
     * The node:http route: serves the request and returns true, or returns false and leaves it
     * untouched for the HttpApi, which answers every other case (no or bad token, big or
     * chunked body, a CORS request) with the API's own errors.
     */
    readonly route: (request: IncomingMessage, response: ServerResponse) => boolean
    /**
     * The HttpApi handler's purchase, for a buyer the framework has authenticated, with the
     * `Proof-Of-Work` header's value when there is one.
     */
    readonly purchase: (
      saleId: SaleId,
      session: Session,
      address: string,
      proof: string | undefined
    ) => Effect.Effect<HttpServerResponse.HttpServerResponse>
  }
>()("mincommerce/http/PurchaseEndpoint") {
  static readonly make = (options: {
    readonly router: Pick<SaleRouter["Service"], "offer" | "purchase">
    readonly tokens: Tokens["Service"]
    readonly limits: Limits["Service"]
    readonly rules: SaleRules["Service"]
    readonly proofOfWork: ProofOfWork["Service"]
    readonly maxBodyBytes: number
    /** Browsers on other origins need CORS headers: their requests take the HttpApi route. */
    readonly corsEnabled: boolean
    /** Spans for the node:http route's requests; undefined while tracing is off. */
    readonly startSpan?: Tracing.StartSpan | undefined
  }) => {
    const { router, limits, rules, proofOfWork, startSpan } = options

    // The preflight both routes share once the caller is known; undefined admits the purchase.
    const refusal = (address: string, userId: UserId): JsonAnswer | undefined => {
      const limited = limits.take(address, userId)
      return limited === undefined ? undefined : errorAnswer(limited)
    }

    // Refusals that name no sale, buyer or time are rendered once, header block included: a
    // sold-out sale answers little else.
    const fixedAnswers = new Map<RoutedReply["_tag"], Rendered>()

    const answer = (saleId: SaleId, reply: RoutedReply): Rendered => {
      if (isOutcome(reply)) countOutcome(reply._tag)
      const fixed = fixedAnswers.get(reply._tag)
      if (fixed !== undefined) return fixed
      const told = purchaseAnswer(saleId, reply)
      const made = rendered(
        "order" in told
          ? successAnswer(told.status, told.order)
          : "entry" in told
            ? successAnswer(told.status, told.entry)
            : errorAnswer(told)
      )
      if (fixedTags.has(reply._tag)) fixedAnswers.set(reply._tag, made)
      return made
    }

    const serve = (request: IncomingMessage, response: ServerResponse): boolean => {
      const admitted = admit(request, options)
      if (admitted === undefined) return false
      // The endpoint takes no payload: whatever was sent is read and dropped.
      request.resume()
      const refused = refusal(request.socket.remoteAddress ?? "unknown", admitted.userId)
      if (refused !== undefined) {
        write(request, response, rendered(refused))
        return true
      }
      const known = rules.known(admitted.saleId)
      if (known !== undefined) {
        checkAccount(request, response, admitted, known)
        return true
      }
      // Read once per sale and node; from then on `known` answers.
      rules.loadThen(admitted.saleId, (exit) => {
        if (Exit.isFailure(exit)) return write(request, response, rulesUnread)
        if (exit.value === undefined)
          return write(
            request,
            response,
            answer(admitted.saleId, new SaleNotFound({ saleId: admitted.saleId }))
          )
        checkAccount(request, response, admitted, exit.value)
      })
      return true
    }

    const checkAccount = (
      request: IncomingMessage,
      response: ServerResponse,
      admitted: Admitted,
      saleRules: PurchaseRules
    ) => {
      const account = rules.account(saleRules, admitted.session)
      if (account === "admitted") return checkProof(request, response, admitted, saleRules)
      if (account !== "unknown") return write(request, response, rendered(errorAnswer(account)))
      // A token without the account's creation time: read once per account and node.
      rules.resolveThen(saleRules, admitted.session, (exit) => {
        if (Exit.isFailure(exit)) return write(request, response, rulesUnread)
        if (exit.value !== undefined) return write(request, response, rendered(errorAnswer(exit.value)))
        checkProof(request, response, admitted, saleRules)
      })
    }

    const checkProof = (
      request: IncomingMessage,
      response: ServerResponse,
      admitted: Admitted,
      saleRules: PurchaseRules
    ) => {
      if (saleRules.powDifficulty === undefined)
        return offer(request, response, admitted.saleId, admitted.userId)
      const refusal = proofOfWork.verify(header(request, proofHeader), admitted.saleId, admitted.userId)
      if (refusal !== undefined) return write(request, response, rendered(errorAnswer(refusal)))
      offer(request, response, admitted.saleId, admitted.userId)
    }

    const offer = (request: IncomingMessage, response: ServerResponse, saleId: SaleId, userId: UserId) => {
      if (startSpan === undefined) {
        router.offer(saleId, userId, (reply) => write(request, response, answer(saleId, reply)))
        return
      }
      const span = startSpan(`POST ${route}`, {
        kind: "server",
        parent: Tracing.parentFromHeaders(request.headers),
        attributes: { "http.request.method": "POST", "http.route": route, "sale.id": saleId }
      })
      Tracing.routing(span?.context, () =>
        router.offer(saleId, userId, (reply) => {
          write(request, response, answer(saleId, reply))
          span?.end({ "http.response.status_code": response.statusCode, "purchase.reply": reply._tag })
        })
      )
    }

    // The rules of the effectful route: read when this node does not know the sale's rules or
    // the buyer's account age yet (once each), then the same checks as the node:http route.
    const ruleRefusal = Effect.fnUntraced(function* (
      saleId: SaleId,
      saleRules: PurchaseRules,
      session: Session,
      proof: string | undefined
    ) {
      const tooNew = yield* rules.resolve(saleRules, session)
      if (tooNew !== undefined) return tooNew
      if (saleRules.powDifficulty === undefined) return undefined
      return proofOfWork.verify(proof, saleId, session.userId)
    })

    const purchase = Effect.fnUntraced(function* (
      saleId: SaleId,
      session: Session,
      address: string,
      proof: string | undefined
    ) {
      const refused = refusal(address, session.userId)
      if (refused !== undefined) return toServerResponse(refused)
      const saleRules = rules.known(saleId) ?? (yield* rules.load(saleId))
      if (saleRules === undefined) return toServerResponse(answer(saleId, new SaleNotFound({ saleId })).told)
      const broken = yield* ruleRefusal(saleId, saleRules, session, proof)
      if (broken !== undefined) return toServerResponse(errorAnswer(broken))
      return yield* router.purchase(saleId, session.userId).pipe(
        // A refusal or an unknown sale is an answer too, rendered like a decision.
        Effect.catch((failure) => Effect.succeed<RoutedReply>(failure)),
        Effect.map((reply) => toServerResponse(answer(saleId, reply).told))
      )
    })

    return PurchaseEndpoint.of({ route: serve, purchase })
  }

  /** The endpoint over this node's router, tokens and rate limits. */
  static readonly layerWith = (options: { readonly maxBodyBytes: number; readonly corsEnabled: boolean }) =>
    Layer.effect(
      PurchaseEndpoint,
      Effect.gen(function* () {
        const router = yield* SaleRouter
        return PurchaseEndpoint.make({
          ...options,
          router,
          tokens: yield* Tokens,
          limits: yield* Limits,
          rules: yield* SaleRules,
          proofOfWork: yield* ProofOfWork,
          startSpan: yield* Tracing.startSpan
        })
      })
    )

  static readonly layer = Layer.unwrap(
    Effect.map(Settings.httpSettings, ({ maxBodyBytes, corsOrigins }) =>
      PurchaseEndpoint.layerWith({ maxBodyBytes: Number(maxBodyBytes), corsEnabled: corsOrigins.length > 0 })
    )
  )
}

/** A purchase the node:http route took: its sale and its authenticated buyer. */
interface Admitted {
  readonly saleId: SaleId
  readonly userId: UserId
  readonly session: Session
}

/**
 * Whether the node:http route takes the request: a purchase path with a well-formed sale id,
 * a small body of known length, no CORS origin to answer, a valid bearer token.
 */
const admit = (
  request: IncomingMessage,
  options: {
    readonly tokens: Tokens["Service"]
    readonly maxBodyBytes: number
    readonly corsEnabled: boolean
  }
): Admitted | undefined => {
  if (request.method !== "POST") return undefined
  const saleId = purchasePath.exec(request.url ?? "")?.[1]
  if (saleId === undefined || !isSaleId(saleId)) return undefined
  const headers = request.headers
  if (headers["transfer-encoding"] !== undefined || headers.expect !== undefined) return undefined
  if (Number(headers["content-length"] ?? 0) > options.maxBodyBytes) return undefined
  if (options.corsEnabled && headers.origin !== undefined) return undefined
  const authorization = headers.authorization
  if (authorization === undefined || !authorization.startsWith("Bearer ")) return undefined
  const session = options.tokens.verify(authorization.slice(7))
  return session === undefined ? undefined : { saleId, userId: session.userId, session }
}

/** An answer with its header block for the fast route, but the request id. */
interface Rendered {
  readonly told: JsonAnswer
  readonly headers: ReadonlyArray<string>
}

const rendered = (told: JsonAnswer): Rendered => ({ told, headers: headerList(told) })

/** The sale's rules could not be read (PostgreSQL did not answer): nothing was decided. */
const rulesUnread = rendered(
  errorAnswer(
    new NotReady({
      error: {
        code: "database_unreachable",
        message: "The sale's purchase rules could not be read; retry shortly",
        details: { retryAfterSeconds: 1 }
      }
    })
  )
)

const fixedTags: ReadonlySet<RoutedReply["_tag"]> = new Set(["SoldOut", "Ended", "Cancelled"])

// The fast route's answer, with the headers the edge puts on every HttpApi answer.
const write = (request: IncomingMessage, response: ServerResponse, { told, headers }: Rendered) => {
  response.writeHead(told.status, [...headers, "x-request-id", requestIdFor(header(request, "x-request-id"))])
  response.end(told.body)
  countRequest("POST", route, told.status)
}

const header = (request: IncomingMessage, name: string): string | undefined => {
  const value = request.headers[name]
  return Array.isArray(value) ? value[0] : value
}

import { type ByteSize, Cause, Effect, Layer, Option, Predicate } from "effect"
import { HttpIncomingMessage, HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import type { IncomingMessage, Server } from "node:http"
import { SaleWatch } from "../cluster/SaleWatch.ts"
import { hasControlCharacter } from "../domain/Inputs.ts"
import * as Settings from "../Settings.ts"
import { Api } from "./Api.ts"
import { ApiDocs } from "./ApiDocs.ts"
import {
  answerForStatus,
  invalidRequest,
  isApiError,
  noSuchRoute,
  payloadTooLarge,
  unexpectedFailure,
  type ApiError,
  type InvalidRequest
} from "./ApiErrors.ts"
import { PaymentsLive, WebhookRoute } from "./CheckoutHandlers.ts"
import { ApiHandlers } from "./Handlers.ts"
import { errorAnswer, toServerResponse } from "./JsonAnswer.ts"
import { Limits } from "./Limits.ts"
import { countRequest, MetricsRoute, unmatched } from "./Metrics.ts"
import * as NodeServer from "./NodeServer.ts"
import { ProofOfWork } from "./ProofOfWork.ts"
import { PurchaseEndpoint } from "./PurchaseEndpoint.ts"
import { apiHeaderList, apiHeaders, requestIdFor, securityHeadersFor } from "./ResponseHeaders.ts"
import { eventsRoute, SaleEventsRoute } from "./SaleEvents.ts"
import { readRoute } from "./SaleReadHandlers.ts"
import { SaleRules } from "./SaleRules.ts"
import { StaticAssets } from "./StaticAssets.ts"
import { Tokens } from "./Tokens.ts"

// "Expected a UUID\n  at [\"saleId\"]" -> ["saleId"]
const fieldPath = (message: string): ReadonlyArray<unknown> | undefined => {
  const at = /\bat (\[.*\])\s*$/m.exec(message)
  if (at?.[1] === undefined) return undefined
  try {
    return JSON.parse(at[1]) as ReadonlyArray<unknown>
  } catch {
    return undefined
  }
}

/**
 * The framework's own failures (unknown route, undecodable params or body, body over the
 * limit) answered in the API's error shape instead of an empty body; undefined for others.
 */
const requestFailure = (cause: Cause.Cause<unknown>): ApiError | undefined => {
  for (const reason of cause.reasons) {
    const error: unknown = Cause.isFailReason(reason)
      ? reason.error
      : Cause.isDieReason(reason)
        ? reason.defect
        : undefined
    if (isApiError(error)) return error
    if (!Predicate.hasProperty(error, "_tag")) continue
    if (error._tag === "HttpApiSchemaError" && Predicate.hasProperty(error, "kind")) {
      const schemaError = Predicate.hasProperty(error, "cause") ? error.cause : undefined
      const message = Predicate.hasProperty(schemaError, "message")
        ? String(schemaError.message)
        : "invalid input"
      const detail = message.split("\n")[0] ?? message
      const part = String(error.kind).toLowerCase()
      return invalidRequest(`Invalid ${part}: ${detail}`, { in: part, path: fieldPath(message) ?? [] })
    }
    if (error._tag === "HttpServerError" && Predicate.hasProperty(error, "reason")) {
      const inner = error.reason
      if (Predicate.hasProperty(inner, "_tag") && inner._tag === "RouteNotFound") return noSuchRoute()
      if (Predicate.hasProperty(inner, "_tag") && inner._tag === "RequestParseError") {
        return /maxBytes/.test(String(Predicate.hasProperty(inner, "cause") ? inner.cause : ""))
          ? payloadTooLarge()
          : invalidRequest("The request could not be read")
      }
    }
  }
  return undefined
}

// No route or static file has a longer segment or path; a longer one is refused before any
// route sees it (the file system refuses names over 255 bytes, paths over 4 KB).
const maxTargetLength = 2_048
const maxSegmentLength = 128

/** A 400 for a request target no route could serve sanely: not a path, too long, NUL or control characters. */
const refusedTarget = (url: string): InvalidRequest | undefined => {
  if (url.length > maxTargetLength)
    return invalidRequest("The request path is too long", { in: "path", path: [] })
  if (url.charCodeAt(0) !== 47)
    return invalidRequest("The request target must be a path", { in: "path", path: [] })
  const query = url.indexOf("?")
  const segments = (query === -1 ? url : url.slice(0, query)).split("/")
  for (const [index, segment] of segments.entries()) {
    if (index === 0) continue
    if (segment.length > maxSegmentLength)
      return invalidRequest("A path segment is too long", { in: "path", path: [index - 1] })
    if (segment.includes("%") && !decodesSanely(segment))
      return invalidRequest("A path segment is not a valid name", { in: "path", path: [index - 1] })
  }
  return undefined
}

const decodesSanely = (segment: string): boolean => {
  try {
    return !hasControlCharacter(decodeURIComponent(segment))
  } catch {
    return false
  }
}

const contentTypeOf = (response: HttpServerResponse.HttpServerResponse): string | undefined => {
  const body = response.body
  return ("contentType" in body ? body.contentType : undefined) ?? response.headers["content-type"]
}

const isJson = (response: HttpServerResponse.HttpServerResponse): boolean =>
  contentTypeOf(response)?.startsWith("application/json") === true

const answer = (error: ApiError) => toServerResponse(errorAnswer(error))

/**
 * Around every request: a request id (echoed when the caller sent a sane one), the security
 * headers, a count under the matched route, and the API's error answer for whatever is not a
 * success: a target refused before routing, what the framework refuses (unknown path,
 * undecodable input, a body over the limit, a bare status of its own) and any defect, which is
 * logged at error level with the request id and answered without its details.
 */
const edge = <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const requestId = requestIdFor(request.headers["x-request-id"])
    const refused = refusedTarget(request.url)
    let response: HttpServerResponse.HttpServerResponse
    let route = unmatched
    if (refused !== undefined) response = answer(refused)
    else {
      response = yield* Effect.gen(function* () {
        const answered = yield* app.pipe(
          Effect.catchCause((cause) => {
            if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause)
            const known = requestFailure(cause)
            if (known !== undefined) return Effect.succeed(answer(known))
            return Effect.as(
              Effect.logError("Request failed with a defect", cause).pipe(
                Effect.annotateLogs({ method: request.method, url: request.url })
              ),
              answer(unexpectedFailure(requestId))
            )
          })
        )
        // The router leaves the matched route in the fiber's context for the rest of the request.
        const matched = yield* Effect.serviceOption(HttpRouter.RouteContext)
        if (Option.isSome(matched)) route = matched.value.route.path
        return answered
      }).pipe(
        // Whatever a handler logs names the request it served.
        Effect.annotateLogs("requestId", requestId)
      )
      if (response.status >= 400 && !isJson(response))
        response = answer(answerForStatus(response.status, requestId))
    }
    countRequest(request.method, route, response.status)
    return HttpServerResponse.setHeaders(response, {
      ...securityHeadersFor(contentTypeOf(response)),
      "x-request-id": requestId
    })
  })

/** The edge around every route of the server (see `edge`). */
export const Edge = HttpRouter.middleware(edge, { global: true })

export const ApiRoutes = Layer.mergeAll(
  HttpApiBuilder.layer(Api, { openapiPath: "/openapi.json" }),
  ApiDocs,
  MetricsRoute,
  SaleEventsRoute,
  StaticAssets,
  WebhookRoute,
  Edge
).pipe(Layer.provide(ApiHandlers), Layer.provide(PaymentsLive))

/**
 * The API on an HTTP server, with request bodies capped at `maxBodyBytes`. Browsers on other
 * origins may call it only when their origin is listed in `corsOrigins`.
 */
export const serveApi = (options: {
  readonly maxBodyBytes: ByteSize.ByteSize
  readonly corsOrigins: ReadonlyArray<string>
}) =>
  HttpRouter.serve(
    options.corsOrigins.length === 0
      ? ApiRoutes
      : Layer.merge(ApiRoutes, HttpRouter.cors({ allowedOrigins: options.corsOrigins, maxAge: 600 })),
    { disableLogger: true }
  ).pipe(Layer.provide(Layer.succeed(HttpIncomingMessage.MaxBodySize, options.maxBodyBytes)))

/**
 * Serves the API on PORT/HOST; slow clients are cut off in seconds, bodies are capped, and
 * purchases meet the node:http route of their endpoint before the framework.
 */
export const HttpServerLive = Layer.unwrap(
  Effect.gen(function* () {
    const { port, host, maxBodyBytes, corsOrigins } = yield* Settings.httpSettings
    const endpoint = yield* PurchaseEndpoint
    // The public reads and live events from memory meet node:http first too, with the edge's headers.
    const watch = yield* SaleWatch
    const requestId = (request: IncomingMessage) => {
      const incoming = request.headers["x-request-id"]
      return requestIdFor(typeof incoming === "string" ? incoming : undefined)
    }
    const headers = (request: IncomingMessage) => ({ ...apiHeaders, "x-request-id": requestId(request) })
    const reads = readRoute(watch, {
      headers: (request) => [...apiHeaderList, "x-request-id", requestId(request)],
      counted: (route, status) => countRequest("GET", route, status)
    })
    const events = eventsRoute(watch, yield* Settings.liveSettings, headers)
    const route: NodeServer.RawRoute = (request, response) =>
      reads(request, response) || events.route(request, response) || endpoint.route(request, response)
    return serveApi({ maxBodyBytes, corsOrigins }).pipe(
      Layer.provide(
        NodeServer.layer({
          route,
          listen: { port, host },
          configure: limitSlowClients,
          stopping: events.endAll
        })
      )
    )
  })
).pipe(
  Layer.provide(PurchaseEndpoint.layer),
  Layer.provide(Layer.mergeAll(Tokens.layer, Limits.layer, SaleRules.layer, ProofOfWork.layer))
)

const limitSlowClients = (server: Server) => {
  server.headersTimeout = 5_000
  server.requestTimeout = 10_000
  server.keepAliveTimeout = 5_000
}

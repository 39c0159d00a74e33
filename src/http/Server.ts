import { NodeHttpServer } from "@effect/platform-node"
import { type ByteSize, Cause, Effect, Layer, Predicate } from "effect"
import { HttpIncomingMessage, HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApiBuilder, HttpApiScalar } from "effect/http-api"
import * as Settings from "../Settings.ts"
import { Api } from "./Api.ts"
import { ApiHandlers } from "./Handlers.ts"
import { FastPurchase, createServerWith } from "./FastPurchase.ts"
import { Limits } from "./Limits.ts"
import { requestIdFor, securityHeaders } from "./ResponseHeaders.ts"
import { countRequest, MetricsRoute } from "./Metrics.ts"
import { SaleEventsRoute } from "./SaleEvents.ts"
import { StaticAssets } from "./StaticAssets.ts"
import { Tokens } from "./Tokens.ts"

const errorResponse = (status: number, code: string, message: string, details?: unknown) =>
  HttpServerResponse.jsonUnsafe(
    { error: details === undefined ? { code, message } : { code, message, details } },
    { status }
  )

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

// Overload answers carry `details.retryAfterSeconds`; the header repeats it for clients and proxies.
const retryAfterSeconds = (response: HttpServerResponse.HttpServerResponse): number => {
  if (response.body._tag !== "Uint8Array") return 1
  try {
    const body: unknown = JSON.parse(new TextDecoder().decode(response.body.body))
    const seconds =
      Predicate.hasProperty(body, "error") && Predicate.hasProperty(body.error, "details")
        ? Predicate.hasProperty(body.error.details, "retryAfterSeconds")
          ? body.error.details.retryAfterSeconds
          : 1
        : 1
    return typeof seconds === "number" && seconds >= 1 ? Math.ceil(seconds) : 1
  } catch {
    return 1
  }
}

/**
 * The framework's own failures (unknown route, undecodable params or body, body over the
 * limit) answered in the API's error shape instead of an empty body; undefined for others.
 */
const requestFailure = (cause: Cause.Cause<unknown>): HttpServerResponse.HttpServerResponse | undefined => {
  for (const reason of cause.reasons) {
    const error: unknown = Cause.isFailReason(reason)
      ? reason.error
      : Cause.isDieReason(reason)
        ? reason.defect
        : undefined
    if (!Predicate.hasProperty(error, "_tag")) continue
    if (error._tag === "HttpApiSchemaError" && Predicate.hasProperty(error, "kind")) {
      const schemaError = Predicate.hasProperty(error, "cause") ? error.cause : undefined
      const message = Predicate.hasProperty(schemaError, "message")
        ? String(schemaError.message)
        : "invalid input"
      const detail = message.split("\n")[0] ?? message
      return errorResponse(400, "invalid_request", `Invalid ${String(error.kind).toLowerCase()}: ${detail}`, {
        in: String(error.kind).toLowerCase(),
        path: fieldPath(message) ?? []
      })
    }
    if (error._tag === "HttpServerError" && Predicate.hasProperty(error, "reason")) {
      const inner = error.reason
      if (Predicate.hasProperty(inner, "_tag") && inner._tag === "RouteNotFound")
        return errorResponse(404, "not_found", "No such resource")
      if (Predicate.hasProperty(inner, "_tag") && inner._tag === "RequestParseError") {
        return /maxBytes/.test(String(Predicate.hasProperty(inner, "cause") ? inner.cause : ""))
          ? errorResponse(413, "payload_too_large", "The request body is over the size limit")
          : errorResponse(400, "invalid_request", "The request could not be read")
      }
    }
  }
  return undefined
}

/**
 * Around every request: a request id (echoed when the caller sent a sane one), the security
 * headers, `Retry-After` on 503, and the JSON error shape for answers the framework makes
 * with an empty body (unknown path, undecodable input).
 */
const edge = <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const requestId = requestIdFor(request.headers["x-request-id"])
    let response = yield* app.pipe(
      Effect.catchCause((cause) => {
        const answer = requestFailure(cause)
        return answer === undefined ? Effect.failCause(cause) : Effect.succeed(answer)
      }),
      // Whatever a handler logs names the request it served.
      Effect.annotateLogs("requestId", requestId)
    )
    if (
      (response.status === 503 || response.status === 429) &&
      response.headers["retry-after"] === undefined
    ) {
      response = HttpServerResponse.setHeader(response, "retry-after", String(retryAfterSeconds(response)))
    }
    yield* countRequest(request.method, request.url, response.status)
    return HttpServerResponse.setHeaders(response, { ...securityHeaders, "x-request-id": requestId })
  })

export const ApiRoutes = Layer.mergeAll(
  HttpApiBuilder.layer(Api, { openapiPath: "/openapi.json" }),
  HttpApiScalar.layer(Api, { path: "/docs" }),
  MetricsRoute,
  SaleEventsRoute,
  StaticAssets,
  HttpRouter.middleware(edge, { global: true })
).pipe(Layer.provide(ApiHandlers))

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
 * purchases take the fast path when they can.
 */
export const HttpServerLive = Layer.unwrap(
  Effect.gen(function* () {
    const { port, host, maxBodyBytes, corsOrigins } = yield* Settings.httpSettings
    const server = createServerWith(yield* FastPurchase)
    server.headersTimeout = 5_000
    server.requestTimeout = 10_000
    server.keepAliveTimeout = 5_000
    return serveApi({ maxBodyBytes, corsOrigins }).pipe(
      Layer.provide(NodeHttpServer.layer(() => server, { port, host }))
    )
  })
).pipe(Layer.provide(FastPurchase.layer), Layer.provide(Layer.mergeAll(Tokens.layer, Limits.layer)))

import { type ByteSize, Cause, Effect, Layer, Predicate } from "effect"
import { HttpIncomingMessage, HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApiBuilder, HttpApiScalar } from "effect/http-api"
import type { Server } from "node:http"
import * as Settings from "../Settings.ts"
import { Api } from "./Api.ts"
import { invalidRequest, NoSuchRoute, PayloadTooLarge, type ErrorAnswer } from "./ApiErrors.ts"
import { ApiHandlers } from "./Handlers.ts"
import { errorAnswer, toServerResponse } from "./JsonAnswer.ts"
import { Limits } from "./Limits.ts"
import { countRequest, MetricsRoute } from "./Metrics.ts"
import * as NodeServer from "./NodeServer.ts"
import { PurchaseEndpoint } from "./PurchaseEndpoint.ts"
import { requestIdFor, securityHeaders } from "./ResponseHeaders.ts"
import { SaleEventsRoute } from "./SaleEvents.ts"
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

const noSuchRoute = new NoSuchRoute({ error: { code: "not_found", message: "No such resource" } })
const payloadTooLarge = new PayloadTooLarge({
  error: { code: "payload_too_large", message: "The request body is over the size limit" }
})

/**
 * The framework's own failures (unknown route, undecodable params or body, body over the
 * limit) answered in the API's error shape instead of an empty body; undefined for others.
 */
const requestFailure = (cause: Cause.Cause<unknown>): ErrorAnswer | undefined => {
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
      const part = String(error.kind).toLowerCase()
      return invalidRequest(`Invalid ${part}: ${detail}`, { in: part, path: fieldPath(message) ?? [] })
    }
    if (error._tag === "HttpServerError" && Predicate.hasProperty(error, "reason")) {
      const inner = error.reason
      if (Predicate.hasProperty(inner, "_tag") && inner._tag === "RouteNotFound") return noSuchRoute
      if (Predicate.hasProperty(inner, "_tag") && inner._tag === "RequestParseError") {
        return /maxBytes/.test(String(Predicate.hasProperty(inner, "cause") ? inner.cause : ""))
          ? payloadTooLarge
          : invalidRequest("The request could not be read")
      }
    }
  }
  return undefined
}

/**
 * Around every request: a request id (echoed when the caller sent a sane one), the security
 * headers, and the API's error answer for what the framework itself refuses (unknown path,
 * undecodable input, a body over the limit).
 */
const edge = <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const requestId = requestIdFor(request.headers["x-request-id"])
    const response = yield* app.pipe(
      Effect.catchCause((cause) => {
        const answer = requestFailure(cause)
        return answer === undefined
          ? Effect.failCause(cause)
          : Effect.succeed(toServerResponse(errorAnswer(answer)))
      }),
      // Whatever a handler logs names the request it served.
      Effect.annotateLogs("requestId", requestId)
    )
    countRequest(request.method, request.url, response.status)
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
 * purchases meet the node:http route of their endpoint before the framework.
 */
export const HttpServerLive = Layer.unwrap(
  Effect.gen(function* () {
    const { port, host, maxBodyBytes, corsOrigins } = yield* Settings.httpSettings
    const endpoint = yield* PurchaseEndpoint
    return serveApi({ maxBodyBytes, corsOrigins }).pipe(
      Layer.provide(
        NodeServer.layer({ route: endpoint.route, listen: { port, host }, configure: limitSlowClients })
      )
    )
  })
).pipe(Layer.provide(PurchaseEndpoint.layer), Layer.provide(Layer.mergeAll(Tokens.layer, Limits.layer)))

const limitSlowClients = (server: Server) => {
  server.headersTimeout = 5_000
  server.requestTimeout = 10_000
  server.keepAliveTimeout = 5_000
}

import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Scope } from "effect"
import { HttpServer } from "effect/http"
import { createServer, type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from "node:http"
import type { Duplex } from "node:stream"
import { answerForStatus } from "./ApiErrors.ts"
import { answerHeaders, errorAnswer } from "./JsonAnswer.ts"
import { countRequest, unmatched } from "./Metrics.ts"
import { apiHeaders, requestIdFor } from "./ResponseHeaders.ts"

/** A route served straight from node:http: true when it answered, false to pass the request on. */
export type RawRoute = (request: IncomingMessage, response: ServerResponse) => boolean

// How long a stopping server lets open requests finish before their fibers are interrupted.
const gracefulShutdownMillis = 20_000

/**
 * The node's HttpServer: a node:http server whose every request meets `route` first, and
 * whose Effect app (the HttpApi and the other routes) gets what the route declines. The
 * server listens with `listen`, after `configure` has set its timeouts. When it stops, it
 * calls `stopping` (to end the answers that would never end by themselves, the live streams)
 * and lets open requests finish.
 */
export const layer = (options: {
  readonly route: RawRoute
  readonly listen: NodeHttpServer.Options
  readonly configure?: (server: Server) => void
  readonly stopping?: () => void
}) =>
  Layer.effect(
    HttpServer.HttpServer,
    Effect.gen(function* () {
      // Node checks its header and request timeouts this often (30 s by default), so a client
      // dripping its headers gets its 408 within a second of the limit.
      const server = createServer({ connectionsCheckingInterval: 1_000 })
      options.configure?.(server)
      const context = yield* Effect.context<never>()
      server.on("clientError", (error: NodeJS.ErrnoException, socket: Duplex) => {
        const status = answerClientError(error, socket)
        if (status === undefined) return
        countRequest("unparsed", unmatched, status)
        Effect.runForkWith(context)(
          Effect.logInfo("Request refused by the HTTP parser").pipe(
            Effect.annotateLogs({ status, code: error.code ?? "unknown" })
          )
        )
      })
      // Listens now and closes the server with the layer; its own `serve` is not used.
      const listening = yield* NodeHttpServer.make(() => server, options.listen)
      return HttpServer.make({
        address: listening.address,
        serve: Effect.fnUntraced(function* (app, middleware) {
          const serveScope = yield* Effect.scope
          const requests = Scope.forkUnsafe(serveScope, "parallel")
          const handler = yield* NodeHttpServer.makeHandler(app, { middleware, scope: requests })
          let closing = false
          const onRequest = (request: IncomingMessage, response: ServerResponse) => {
            if (closing) response.setHeader("connection", "close")
            let served: boolean
            try {
              served = options.route(request, response)
            } catch (defect) {
              // Thrown from an event listener it would take the process down.
              const requestId = answerDefect(request, response)
              countRequest(request.method ?? "unparsed", unmatched, 500)
              Effect.runForkWith(context)(
                Effect.logError("Request failed with a defect in the node:http route", defect).pipe(
                  Effect.annotateLogs({ requestId, method: request.method, url: request.url })
                )
              )
              return
            }
            if (!served) handler(request, response)
          }
          // Stops taking connections, ends the live streams and lets open requests finish,
          // then lets go of them.
          yield* Scope.addFinalizer(
            serveScope,
            Effect.ensuring(
              stopListening(server, () => {
                closing = true
                options.stopping?.()
              }).pipe(Effect.timeoutOrElse({ duration: gracefulShutdownMillis, orElse: () => Effect.void })),
              Effect.sync(() => server.off("request", onRequest))
            )
          )
          server.on("request", onRequest)
        })
      })
    })
  ).pipe(Layer.provideMerge(NodeHttpServer.layerHttpServices))

// How often a closing server closes the keep-alive connections that have gone idle.
const idleCloseMillis = 50

/**
 * Closes the server and resumes once its last connection is gone. node:http closes the idle
 * keep-alive connections at `close()` but keeps one busy then for as long as its client keeps
 * sending on it (a load balancer or a buyer's browser): `stopping` makes every later answer
 * say `Connection: close`, and the connections that go idle meanwhile are closed as they do.
 */
const stopListening = (server: Server, stopping: () => void) =>
  Effect.callback<void>((resume) => {
    if (!server.listening) return resume(Effect.void)
    const idle = setInterval(() => server.closeIdleConnections(), idleCloseMillis)
    server.close(() => {
      clearInterval(idle)
      resume(Effect.void)
    })
    stopping()
    return Effect.sync(() => clearInterval(idle))
  })

/** The JSON 500 for a defect in a raw route, unless its answer had started; the request id. */
const answerDefect = (request: IncomingMessage, response: ServerResponse): string => {
  const incoming = request.headers["x-request-id"]
  const requestId = requestIdFor(Array.isArray(incoming) ? incoming[0] : incoming)
  if (response.headersSent) {
    response.destroy()
    return requestId
  }
  const answer = errorAnswer(answerForStatus(500, requestId))
  response.writeHead(500, {
    ...apiHeaders,
    ...answerHeaders(answer),
    "content-length": Buffer.byteLength(answer.body),
    "x-request-id": requestId
  })
  response.end(answer.body)
  return requestId
}

// Node's parser codes for what the client sent, by the status Node itself would answer.
const statusOfParseError = (code: string | undefined): number => {
  switch (code) {
    case "HPE_HEADER_OVERFLOW":
      return 431
    case "HPE_CHUNK_EXTENSIONS_OVERFLOW":
      return 413
    case "ERR_HTTP_REQUEST_TIMEOUT":
      return 408
    default:
      return 400
  }
}

/**
 * Answers what Node's parser refused before any request existed (a malformed request line, headers
 * over the limit, a client too slow to send them) with the API's JSON error and the security
 * headers, instead of Node's bare status line; then closes the connection. Returns the status, or
 * undefined when nothing could be written: the peer is gone, or a response on this connection has
 * started and a second one would corrupt it.
 */
const answerClientError = (error: NodeJS.ErrnoException, socket: Duplex): number | undefined => {
  // The response in flight on this connection, as node:http tracks it.
  const inFlight = (socket as Duplex & { readonly _httpMessage?: { readonly headersSent?: boolean } })
    ._httpMessage
  if (error.code === "ECONNRESET" || !socket.writable || inFlight?.headersSent === true) {
    socket.destroy()
    return undefined
  }
  const status = statusOfParseError(error.code)
  const requestId = requestIdFor(undefined)
  const answer = errorAnswer(answerForStatus(status, requestId))
  const headers = { ...apiHeaders, ...answerHeaders(answer), "x-request-id": requestId }
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\n`
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`
  head += `content-length: ${Buffer.byteLength(answer.body)}\r\nconnection: close\r\n\r\n`
  socket.end(head + answer.body)
  return status
}

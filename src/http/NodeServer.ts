import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Scope } from "effect"
import { HttpServer } from "effect/http"
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"

/** A route served straight from node:http: true when it answered, false to pass the request on. */
export type RawRoute = (request: IncomingMessage, response: ServerResponse) => boolean

// How long a stopping server lets open requests finish before their fibers are interrupted.
const gracefulShutdownMillis = 20_000

/**
 * The node's HttpServer: a node:http server whose every request meets `route` first, and
 * whose Effect app (the HttpApi and the other routes) gets what the route declines. The
 * server listens with `listen`, after `configure` has set its timeouts.
 */
export const layer = (options: {
  readonly route: RawRoute
  readonly listen: NodeHttpServer.Options
  readonly configure?: (server: Server) => void
}) =>
  Layer.effect(
    HttpServer.HttpServer,
    Effect.gen(function* () {
      const server = createServer()
      options.configure?.(server)
      // Listens now and closes the server with the layer; its own `serve` is not used.
      const listening = yield* NodeHttpServer.make(() => server, options.listen)
      return HttpServer.make({
        address: listening.address,
        serve: Effect.fnUntraced(function* (app, middleware) {
          const serveScope = yield* Effect.scope
          const requests = Scope.forkUnsafe(serveScope, "parallel")
          const handler = yield* NodeHttpServer.makeHandler(app, { middleware, scope: requests })
          const onRequest = (request: IncomingMessage, response: ServerResponse) => {
            if (!options.route(request, response)) handler(request, response)
          }
          // Stops taking connections and lets open requests finish, then lets go of them.
          yield* Scope.addFinalizer(
            serveScope,
            Effect.ensuring(
              stopListening(server).pipe(
                Effect.timeoutOrElse({ duration: gracefulShutdownMillis, orElse: () => Effect.void })
              ),
              Effect.sync(() => server.off("request", onRequest))
            )
          )
          server.on("request", onRequest)
        })
      })
    })
  ).pipe(Layer.provideMerge(NodeHttpServer.layerHttpServices))

const stopListening = (server: Server) =>
  Effect.callback<void>((resume) => {
    if (!server.listening) return resume(Effect.void)
    server.close(() => resume(Effect.void))
  })

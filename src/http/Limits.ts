import { Context, Duration, Effect, Layer, Option } from "effect"
import { IncomingMessage } from "node:http"
import { HttpServerRequest } from "effect/http"
import { RateLimiter } from "effect/persistence"
import * as Settings from "../Settings.ts"
import { apiError, TooManyRequests } from "./Api.ts"

// Node's request adapter leaves `remoteAddress` unset; the socket knows the peer.
const addressOf = (request: HttpServerRequest.HttpServerRequest): string =>
  Option.getOrElse(request.remoteAddress, () => {
    const source: unknown = request.source
    return source instanceof IncomingMessage ? (source.socket.remoteAddress ?? "unknown") : "unknown"
  })

/**
 * Token buckets per user and per client address, kept in this node's memory: a buyer or a
 * script hammering "Buy" gets 429 with Retry-After long before it costs the sale's actor.
 */
export class Limits extends Context.Service<
  Limits,
  {
    /** One request from the caller's address; `userId` also counts against that user. */
    readonly take: (
      userId?: string
    ) => Effect.Effect<void, TooManyRequests, HttpServerRequest.HttpServerRequest>
    /** `take` for a caller known by address; it completes synchronously (memory buckets). */
    readonly takeFor: (address: string, userId?: string) => Effect.Effect<void, TooManyRequests>
  }
>()("mincommerce/http/Limits") {
  static readonly make = (options: {
    readonly perUser: number
    readonly perAddress: number
    readonly window: Duration.Input
  }) =>
    Layer.effect(
      Limits,
      Effect.gen(function* () {
        const limiter = yield* RateLimiter.RateLimiter
        const bucket = (key: string, limit: number) =>
          limit <= 0
            ? Effect.void
            : limiter
                .consume({
                  algorithm: "token-bucket",
                  onExceeded: "fail",
                  window: options.window,
                  limit,
                  key
                })
                .pipe(
                  Effect.asVoid,
                  Effect.catchTag("RateLimiterError", (error) =>
                    error.reason._tag === "RateLimitExceeded"
                      ? Effect.fail(
                          apiError(TooManyRequests, {
                            code: "rate_limited",
                            message: "Too many requests; slow down",
                            details: {
                              retryAfterSeconds: Math.max(
                                1,
                                Math.ceil(Duration.toSeconds(error.reason.retryAfter))
                              )
                            }
                          })
                        )
                      : Effect.void
                  )
                )
        const takeFor = (address: string, userId?: string) =>
          userId === undefined
            ? bucket(`address:${address}`, options.perAddress)
            : Effect.andThen(
                bucket(`address:${address}`, options.perAddress),
                bucket(`user:${userId}`, options.perUser)
              )
        return Limits.of({
          take: (userId) =>
            Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
              takeFor(addressOf(request), userId)
            ),
          takeFor
        })
      })
    ).pipe(Layer.provide(RateLimiter.layer.pipe(Layer.provide(RateLimiter.layerStoreMemory))))

  static readonly layer = Layer.unwrap(
    Effect.map(Settings.limitSettings, (settings) => Limits.make(settings))
  )
}

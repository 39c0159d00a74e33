import { Context, Duration, Effect, Layer } from "effect"
import { HttpServerRequest } from "effect/http"
import { RateLimiter } from "effect/persistence"
import * as Settings from "../Settings.ts"
import { apiError, TooManyRequests } from "./Api.ts"

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
        return Limits.of({
          take: (userId) =>
            Effect.gen(function* () {
              const request = yield* HttpServerRequest.HttpServerRequest
              const address = request.remoteAddress._tag === "Some" ? request.remoteAddress.value : "unknown"
              yield* bucket(`address:${address}`, options.perAddress)
              if (userId !== undefined) yield* bucket(`user:${userId}`, options.perUser)
            })
        })
      })
    ).pipe(Layer.provide(RateLimiter.layer.pipe(Layer.provide(RateLimiter.layerStoreMemory))))

  static readonly layer = Layer.unwrap(
    Effect.map(Settings.limitSettings, (settings) => Limits.make(settings))
  )
}

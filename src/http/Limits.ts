import { Context, Duration, Effect, Exit, Layer, Option } from "effect"
import { IncomingMessage } from "node:http"
import type { HttpServerRequest } from "effect/http"
import { RateLimiter } from "effect/persistence"
import * as Settings from "../Settings.ts"
import { rateLimited, type RateLimited } from "./ApiErrors.ts"

/** The caller's address, the key of its rate limit. */
export const addressOf = (request: HttpServerRequest.HttpServerRequest): string =>
  // Node's request adapter leaves `remoteAddress` unset; the socket knows the peer.
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
    /**
     * One request from `address`; `userId` also counts against that user. The answer when
     * a bucket is empty, else undefined. Synchronous (memory buckets), so the purchase fast
     * route takes it without a fiber.
     */
    readonly take: (address: string, userId?: string) => RateLimited | undefined
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
                      ? Effect.fail(rateLimited(Math.ceil(Duration.toSeconds(error.reason.retryAfter))))
                      : Effect.void
                  )
                )
        const take = (address: string, userId?: string): RateLimited | undefined => {
          const buckets =
            userId === undefined
              ? bucket(`address:${address}`, options.perAddress)
              : Effect.andThen(
                  bucket(`address:${address}`, options.perAddress),
                  bucket(`user:${userId}`, options.perUser)
                )
          // Anything but an empty bucket (a store that cannot answer) lets the request through:
          // a limit protects the sale, it must not take it down.
          return Option.getOrUndefined(Exit.findErrorOption(Effect.runSyncExit(buckets)))
        }
        return Limits.of({ take })
      })
    ).pipe(Layer.provide(RateLimiter.layer.pipe(Layer.provide(RateLimiter.layerStoreMemory))))

  static readonly layer = Layer.unwrap(
    Effect.map(Settings.limitSettings, (settings) => Limits.make(settings))
  )
}

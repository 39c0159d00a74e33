import { Context, Duration, Effect, Layer, Option } from "effect"
import { IncomingMessage } from "node:http"
import type { HttpServerRequest } from "effect/http"
import * as Settings from "../Settings.ts"
import type { RateLimited } from "./ApiErrors.ts"
import { admit, Buckets } from "./Buckets.ts"

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
     * a bucket is empty (taking from none), else undefined. Synchronous (memory buckets), so
     * the purchase fast route takes it without a fiber.
     */
    readonly take: (address: string, userId?: string) => RateLimited | undefined
  }
>()("mincommerce/http/Limits") {
  static readonly make = (options: {
    readonly perUser: number
    readonly perAddress: number
    readonly window: Duration.Input
  }) => {
    const window = Duration.toMillis(Duration.fromInputUnsafe(options.window))
    const addresses = new Buckets(options.perAddress, window)
    const users = new Buckets(options.perUser, window)
    const take = (address: string, userId?: string): RateLimited | undefined =>
      userId === undefined
        ? admit([[addresses, address]])
        : admit([
            [addresses, address],
            [users, userId]
          ])
    return Layer.succeed(Limits, Limits.of({ take }))
  }

  static readonly layer = Layer.unwrap(
    Effect.map(Settings.limitSettings, (settings) => Limits.make(settings))
  )
}

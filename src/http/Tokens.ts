import { Context, Effect, Layer, Option, Schema } from "effect"
import { createSigner, createVerifier } from "fast-jwt"
import { UserId } from "../domain/Ids.ts"
import { sharedSecret } from "../Secret.ts"
import * as Settings from "../Settings.ts"

export interface Session {
  readonly userId: UserId
  readonly email: string
  readonly admin: boolean
}

const Claims = Schema.Struct({ sub: UserId, email: Schema.String, admin: Schema.Boolean })
const decodeClaims = Schema.decodeUnknownOption(Claims)

/**
 * Signs and checks session tokens (HS256 JWTs). Verification is synchronous, so
 * a purchase costs no database round trip and no thread-pool hop to authenticate.
 */
export class Tokens extends Context.Service<
  Tokens,
  {
    readonly issue: (userId: UserId, email: string) => Effect.Effect<{ token: string; admin: boolean }>
    /**
     * The session a token carries, or undefined when it is malformed, tampered with or
     * expired. Synchronous, so the purchase fast route needs no fiber to authenticate.
     */
    readonly verify: (token: string) => Session | undefined
  }
>()("mincommerce/http/Tokens") {
  static readonly make = (options: {
    readonly secret: Uint8Array
    readonly admins: ReadonlySet<string>
    readonly ttlSeconds: number
  }) => {
    const key = Buffer.from(options.secret)
    const sign = createSigner({ key, algorithm: "HS256", expiresIn: options.ttlSeconds * 1_000 })
    // No verification cache: in a flash sale nearly every token is seen once or twice, so a cache
    // costs a hash of the token and an LRU update per request and saves almost nothing.
    const check = createVerifier({ key, algorithms: ["HS256"] })
    const session = (token: string): Session | undefined => {
      try {
        const claims = decodeClaims(check(token))
        return Option.isSome(claims)
          ? { userId: claims.value.sub, email: claims.value.email, admin: claims.value.admin }
          : undefined
      } catch {
        return undefined
      }
    }
    return Tokens.of({
      issue: (userId, email) =>
        Effect.sync(() => {
          const admin = options.admins.has(email.toLowerCase())
          return { token: sign({ sub: userId, email, admin }), admin }
        }),
      verify: session
    })
  }

  static readonly layer = Layer.effect(
    Tokens,
    Effect.gen(function* () {
      const auth = yield* Settings.authSettings
      const secret = yield* sharedSecret
      const admins = new Set(
        auth.adminEmails
          .split(",")
          .map((email) => email.trim().toLowerCase())
          .filter((email) => email.length > 0)
      )
      return Tokens.make({ secret, admins, ttlSeconds: auth.tokenTtlSeconds })
    })
  )
}

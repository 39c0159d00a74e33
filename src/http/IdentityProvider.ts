import { Context, Effect, Layer, Option } from "effect"
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from "jose"
import * as Settings from "../Settings.ts"
import { Accounts } from "../storage/Accounts.ts"
import { Tokens, type Session } from "./Tokens.ts"

/** Where the shop's identity provider publishes its keys, and what its tokens must say. */
export interface ProviderOptions {
  readonly jwksUrl: URL
  readonly issuer: string
  readonly audience: string
  /** The claim that carries the admin role; undefined: the role is the database's. */
  readonly adminClaim: string | undefined
  /** The value in that claim that means admin. */
  readonly adminRole: string
  readonly clockToleranceSeconds: number
  /** Least time between two fetches of the key set for a key it did not have (rotation). */
  readonly refetchAfterMillis?: number | undefined
}

// Whether a claim (a list, a space-separated string like `scope`, or a flag) grants `role`.
const grants = (claim: unknown, role: string): boolean =>
  Array.isArray(claim)
    ? claim.includes(role)
    : typeof claim === "string"
      ? claim.split(" ").includes(role)
      : claim === true

const emailOf = (payload: JWTPayload): string | undefined =>
  typeof payload.email === "string" &&
  payload.email.length <= 254 &&
  /^[^@\s\p{Cc}]+@[^@\s\p{Cc}]+$/u.test(payload.email)
    ? payload.email
    : undefined

/**
 * The shop's own identity provider: its RS256/ES256 access tokens, checked against its JWKS
 * (fetched once and cached, fetched again for a key it has not seen: rotation), its issuer and
 * audience, with a little clock tolerance. A subject seen for the first time becomes a buyer.
 * Each token is verified once: the session is then remembered by Tokens until the token
 * expires, so the purchase fast route checks it synchronously like the node's own.
 */
export class IdentityProvider extends Context.Service<
  IdentityProvider,
  {
    /** The session a provider token carries, or undefined when it is not a valid one. */
    readonly verify: (token: string) => Effect.Effect<Session | undefined>
  }
>()("mincommerce/http/IdentityProvider") {
  /** No provider: only the node's own tokens are accepted. */
  static readonly none = Layer.succeed(
    IdentityProvider,
    IdentityProvider.of({ verify: () => Effect.succeed(undefined) })
  )

  static readonly make = (options: ProviderOptions) =>
    Layer.effect(
      IdentityProvider,
      Effect.gen(function* () {
        const accounts = yield* Accounts
        const tokens = yield* Tokens
        const keys = createRemoteJWKSet(options.jwksUrl, {
          cooldownDuration: options.refetchAfterMillis ?? 30_000,
          cacheMaxAge: 10 * 60_000,
          timeoutDuration: 5_000
        })
        const check = (token: string) =>
          Effect.tryPromise(() =>
            jwtVerify(token, keys, {
              issuer: options.issuer,
              audience: options.audience,
              algorithms: ["RS256", "ES256"],
              clockTolerance: options.clockToleranceSeconds,
              requiredClaims: ["sub", "exp", "iat"]
            })
          )
        const verify = Effect.fn("IdentityProvider.verify")(function* (token: string) {
          const verified = yield* Effect.option(check(token))
          if (Option.isNone(verified)) return undefined
          const { payload } = verified.value
          if (payload.sub === undefined || payload.exp === undefined) return undefined
          const account = yield* accounts.ofSubject(payload.sub, emailOf(payload)).pipe(Effect.orDie)
          const session: Session = {
            userId: account.userId,
            email: account.email,
            accountCreatedAt: account.createdAt.getTime(),
            adminClaim:
              options.adminClaim === undefined
                ? undefined
                : grants(payload[options.adminClaim], options.adminRole)
          }
          tokens.remember(token, session, payload.exp * 1_000)
          return session
        })
        return IdentityProvider.of({ verify })
      })
    )

  static readonly layer = Layer.unwrap(
    Effect.map(Settings.providerSettings, (settings) =>
      Option.isSome(settings.jwksUrl) && Option.isSome(settings.issuer) && Option.isSome(settings.audience)
        ? IdentityProvider.make({
            jwksUrl: new URL(settings.jwksUrl.value),
            issuer: settings.issuer.value,
            audience: settings.audience.value,
            adminClaim: Option.getOrUndefined(settings.adminClaim),
            adminRole: settings.adminRole,
            clockToleranceSeconds: settings.clockToleranceSeconds
          })
        : IdentityProvider.none
    )
  )
}

import { Context, Effect, Layer, Option, Schema } from "effect"
import { createSigner, createVerifier } from "fast-jwt"
import { createHash, createHmac } from "node:crypto"
import { UserId } from "../domain/Ids.ts"
import { sharedSecret } from "../Secret.ts"
import * as Settings from "../Settings.ts"

/** Who a request is from. The admin role is not in it: admin requests ask the database. */
export interface Session {
  readonly userId: UserId
  readonly email: string
  /**
   * The identity provider's word on the admin role, when its tokens carry the role's claim;
   * undefined for the node's own tokens and for a provider whose role lives in the database.
   */
  readonly adminClaim: boolean | undefined
  /**
   * When the account was created (epoch milliseconds), for the sales that admit only older
   * accounts; undefined when the token does not say (a token issued without it), and then
   * the purchase route asks PurchaseRules, which reads it once per account.
   */
  readonly accountCreatedAt: number | undefined
}

/** A signed access token and when it stops being accepted. */
export interface Issued {
  readonly token: string
  readonly expiresAt: number
}

// `exp` and `iat` are required (the verifier refuses a token without them); anything else in
// the token, an `admin` claim included, is ignored. `created` is the account's creation time,
// signed into the token so the account rule costs a purchase no database read.
const Claims = Schema.Struct({ sub: UserId, email: Schema.String, created: Schema.optional(Schema.Finite) })
const decodeClaims = Schema.decodeUnknownOption(Claims)
const RefreshClaims = Schema.Struct({ sub: UserId, typ: Schema.Literal("refresh") })
const decodeRefresh = Schema.decodeUnknownOption(RefreshClaims)

/** Verified provider tokens kept at most; the oldest go first. */
const providerCacheSize = 20_000

/**
 * Signs and checks the node's session tokens (HS256 JWTs with `exp` and `iat`): short-lived
 * access tokens, and refresh tokens under a key of their own (derived from the same secret), so
 * neither passes for the other. Verification is synchronous, so a purchase costs no database
 * round trip and no thread-pool hop to authenticate.
 *
 * An identity provider's tokens are verified once, asynchronously (IdentityProvider), and the
 * session found is remembered here by the token's hash until the token's `exp`: from then on
 * they are as cheap to check as the node's own, on the purchase fast route too.
 */
export class Tokens extends Context.Service<
  Tokens,
  {
    readonly issue: (userId: UserId, email: string, accountCreatedAt?: number) => Effect.Effect<Issued>
    /**
     * The session a token carries, or undefined when it is malformed, tampered with, expired
     * or unknown. Synchronous, so the purchase fast route needs no fiber to authenticate.
     */
    readonly verify: (token: string) => Session | undefined
    /** A refresh token for the account, valid for the refresh lifetime. */
    readonly issueRefresh: (userId: UserId) => Issued
    /** The account a refresh token is for, or undefined. */
    readonly verifyRefresh: (token: string) => UserId | undefined
    /** A provider token verified elsewhere: accepted by `verify` until `expiresAt`. */
    readonly remember: (token: string, session: Session, expiresAt: number) => void
  }
>()("mincommerce/http/Tokens") {
  static readonly make = (options: {
    readonly secret: Uint8Array
    readonly ttlSeconds: number
    readonly refreshTtlSeconds?: number | undefined
  }) => {
    const key = Buffer.from(options.secret)
    const refreshKey = createHmac("sha256", key).update("mincommerce refresh token").digest()
    const ttlMillis = options.ttlSeconds * 1_000
    const refreshTtlMillis = (options.refreshTtlSeconds ?? 7 * 86_400) * 1_000
    const sign = createSigner({ key, algorithm: "HS256", expiresIn: ttlMillis })
    const signRefresh = createSigner({ key: refreshKey, algorithm: "HS256", expiresIn: refreshTtlMillis })
    // No verification cache: in a flash sale nearly every token is seen once or twice, so a cache
    // costs a hash of the token and an LRU update per request and saves almost nothing.
    const check = createVerifier({ key, algorithms: ["HS256"], requiredClaims: ["exp", "iat"] })
    const checkRefresh = createVerifier({
      key: refreshKey,
      algorithms: ["HS256"],
      requiredClaims: ["exp", "iat"]
    })

    const provided = new Map<string, { readonly session: Session; readonly expiresAt: number }>()
    const providedKey = (token: string) => createHash("sha256").update(token).digest("base64url")

    const fromProvider = (token: string): Session | undefined => {
      if (provided.size === 0) return undefined
      const key = providedKey(token)
      const known = provided.get(key)
      if (known === undefined) return undefined
      if (known.expiresAt <= Date.now()) {
        provided.delete(key)
        return undefined
      }
      return known.session
    }

    const verify = (token: string): Session | undefined => {
      try {
        const claims = decodeClaims(check(token))
        if (Option.isSome(claims))
          return {
            userId: claims.value.sub,
            email: claims.value.email,
            adminClaim: undefined,
            accountCreatedAt: claims.value.created
          }
      } catch {
        // Not one of this node's tokens: perhaps one of the provider's.
      }
      return fromProvider(token)
    }

    return Tokens.of({
      issue: (userId, email, accountCreatedAt) =>
        Effect.sync(() => ({
          token: sign(
            accountCreatedAt === undefined
              ? { sub: userId, email }
              : { sub: userId, email, created: accountCreatedAt }
          ),
          expiresAt: Date.now() + ttlMillis
        })),
      verify,
      issueRefresh: (userId) => ({
        token: signRefresh({ sub: userId, typ: "refresh" }),
        expiresAt: Date.now() + refreshTtlMillis
      }),
      verifyRefresh: (token) => {
        try {
          return Option.getOrUndefined(Option.map(decodeRefresh(checkRefresh(token)), (claims) => claims.sub))
        } catch {
          return undefined
        }
      },
      remember: (token, session, expiresAt) => {
        const key = providedKey(token)
        provided.delete(key)
        provided.set(key, { session, expiresAt })
        // A Map iterates in insertion order: the first key is the least recently remembered.
        if (provided.size > providerCacheSize) {
          const oldest = provided.keys().next()
          if (oldest.done !== true) provided.delete(oldest.value)
        }
      }
    })
  }

  static readonly layer = Layer.effect(
    Tokens,
    Effect.gen(function* () {
      const auth = yield* Settings.authSettings
      const secret = yield* sharedSecret
      return Tokens.make({
        secret,
        ttlSeconds: auth.tokenTtlSeconds,
        refreshTtlSeconds: auth.refreshTtlSeconds
      })
    })
  )
}

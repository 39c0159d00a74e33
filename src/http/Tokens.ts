import { Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { jwtVerify, SignJWT } from "jose"
import { createSecretKey, randomBytes } from "node:crypto"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { UserId } from "../domain/Ids.ts"
import * as Settings from "../Settings.ts"

export interface Session {
  readonly userId: UserId
  readonly email: string
  readonly admin: boolean
}

const Claims = Schema.Struct({ sub: UserId, email: Schema.String, admin: Schema.Boolean })
const decodeClaims = Schema.decodeUnknownOption(Claims)

/** Signs and checks session tokens (HS256 JWTs): no database round trip per request. */
export class Tokens extends Context.Service<
  Tokens,
  {
    readonly issue: (userId: UserId, email: string) => Effect.Effect<{ token: string; admin: boolean }>
    /** The session a token carries, or None when it is malformed, tampered with or expired. */
    readonly verify: (token: string) => Effect.Effect<Option.Option<Session>>
  }
>()("mincommerce/http/Tokens") {
  static readonly make = (options: {
    readonly secret: Uint8Array
    readonly admins: ReadonlySet<string>
    readonly ttlSeconds: number
  }) => {
    // Imported once: handing jose raw bytes would import the key again on every request.
    const key = createSecretKey(options.secret)
    return Tokens.of({
      issue: (userId, email) =>
        Effect.promise(async () => {
          const admin = options.admins.has(email.toLowerCase())
          const token = await new SignJWT({ email, admin })
            .setProtectedHeader({ alg: "HS256" })
            .setSubject(userId)
            .setIssuedAt()
            .setExpirationTime(`${options.ttlSeconds}s`)
            .sign(key)
          return { token, admin }
        }),
      verify: (token) =>
        Effect.promise(() =>
          jwtVerify(token, key, { algorithms: ["HS256"] }).then(
            ({ payload }) =>
              Option.map(decodeClaims(payload), (claims) => ({
                userId: claims.sub,
                email: claims.email,
                admin: claims.admin
              })),
            () => Option.none<Session>()
          )
        )
    })
  }

  static readonly layer = Layer.effect(
    Tokens,
    Effect.gen(function* () {
      const auth = yield* Settings.authSettings
      const dataDir = yield* Settings.dataDir
      const secret = Option.isSome(auth.jwtSecret)
        ? new TextEncoder().encode(Redacted.value(auth.jwtSecret.value))
        : persistedSecret(dataDir)
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

/** A secret made once per data folder, so tokens survive restarts without configuration. */
const persistedSecret = (dataDir: string): Uint8Array => {
  const file = join(dataDir, "jwt-secret")
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true })
    writeFileSync(file, randomBytes(32).toString("hex"), { mode: 0o600 })
  }
  return new TextEncoder().encode(readFileSync(file, "utf8").trim())
}

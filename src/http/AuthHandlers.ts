import { Effect, Layer } from "effect"
import { HttpServerRequest } from "effect/http"
import { HttpApiBuilder, HttpApiSecurity } from "effect/http-api"
import type { UserId } from "../domain/Ids.ts"
import * as Settings from "../Settings.ts"
import { Accounts } from "../storage/Accounts.ts"
import { AdminRole } from "./AdminRole.ts"
import { Api, CurrentUser } from "./Api.ts"
import { EmailInUse, InvalidCredentials, invalidRequest, NotSignedIn, SignUpClosed } from "./ApiErrors.ts"
import { AuthLimits } from "./AuthLimits.ts"
import { addressOf } from "./Limits.ts"
import { Passwords } from "./Passwords.ts"
import { Tokens } from "./Tokens.ts"

/**
 * The refresh token's cookie: httpOnly (no script reads it), sent only to /api/auth and only
 * from this site's own pages (SameSite=Strict), Secure except on a loopback address, where
 * browsers serve plain HTTP for development.
 */
const refreshCookie = HttpApiSecurity.apiKey({ in: "cookie", key: "mincommerce_refresh" })
const refreshPath = "/api/auth"

const loopbackHost = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/

const invalidCredentials = new InvalidCredentials({
  error: { code: "invalid_credentials", message: "Wrong email or password" }
})
const noSession = new NotSignedIn({
  error: { code: "unauthorized", message: "No session to refresh: sign in again" }
})
const signUpClosed = new SignUpClosed({
  error: { code: "sign_up_closed", message: "Sign-up is closed: sign in with the shop's account" }
})
const emailInUse = new EmailInUse({
  error: { code: "email_taken", message: "An account with this email exists: sign in instead" }
})
const passwordMessages = {
  too_short: "The password is too short: 10 characters at least",
  too_long: "The password is too long: 128 characters at most"
} as const

export const AuthHandlers = HttpApiBuilder.group(Api, "auth", (handlers) =>
  Effect.gen(function* () {
    const accounts = yield* Accounts
    const passwords = yield* Passwords
    const tokens = yield* Tokens
    const limits = yield* AuthLimits
    const signUpOpen = yield* Settings.signUpOpen
    const { refreshTtlSeconds } = yield* Settings.authSettings

    const setRefresh = (request: HttpServerRequest.HttpServerRequest, value: string, maxAgeSeconds: number) =>
      HttpApiBuilder.securitySetCookie(refreshCookie, value, {
        path: refreshPath,
        sameSite: "strict",
        secure: !loopbackHost.test(request.headers.host ?? ""),
        maxAge: `${maxAgeSeconds} seconds`
      })

    // A session for the account: its access token in the body, its refresh token in the cookie.
    const signedIn = Effect.fnUntraced(function* (account: {
      readonly userId: UserId
      readonly email: string
      readonly admin: boolean
      readonly createdAt: Date
    }) {
      const request = yield* HttpServerRequest.HttpServerRequest
      const access = yield* tokens.issue(account.userId, account.email, account.createdAt.getTime())
      yield* setRefresh(request, tokens.issueRefresh(account.userId).token, refreshTtlSeconds)
      return {
        token: access.token,
        expiresInSeconds: Math.round((access.expiresAt - Date.now()) / 1_000),
        userId: account.userId,
        email: account.email,
        admin: account.admin
      }
    })

    return handlers
      .handle("signup", ({ payload }) =>
        Effect.gen(function* () {
          const address = addressOf(yield* HttpServerRequest.HttpServerRequest)
          const limited = limits.signUp(address, payload.email)
          if (limited !== undefined) return yield* limited
          if (!signUpOpen) return yield* signUpClosed
          const hash = yield* passwords
            .hash(payload.password)
            .pipe(
              Effect.catchTag("PasswordRefused", (refused) =>
                Effect.fail(
                  invalidRequest(passwordMessages[refused.reason], { in: "payload", path: ["password"] })
                )
              )
            )
          const account = yield* accounts.create(payload.email, hash).pipe(
            Effect.catchTag("EmailTaken", () => Effect.fail(emailInUse)),
            Effect.catchTag("SqlError", Effect.die)
          )
          return yield* signedIn(account)
        })
      )
      .handle("login", ({ payload }) =>
        Effect.gen(function* () {
          const address = addressOf(yield* HttpServerRequest.HttpServerRequest)
          const limited = limits.signIn(address, payload.email)
          if (limited !== undefined) return yield* limited
          const account = yield* accounts.byEmail(payload.email).pipe(Effect.orDie)
          // Unknown email or wrong password: one answer, after one hash's time either way.
          const matches = yield* passwords.verify(account?.passwordHash, payload.password)
          if (account === undefined || !matches) {
            limits.failed(address, payload.email)
            return yield* invalidCredentials
          }
          return yield* signedIn(account)
        })
      )
      .handle("refresh", () =>
        Effect.gen(function* () {
          const request = yield* HttpServerRequest.HttpServerRequest
          const presented = request.cookies[refreshCookie.key]
          const userId = presented === undefined ? undefined : tokens.verifyRefresh(presented)
          if (userId === undefined) return yield* noSession
          // The account must still exist; its role is read afresh for the storefront.
          const account = yield* accounts.byId(userId).pipe(Effect.orDie)
          if (account === undefined) return yield* noSession
          return yield* signedIn(account)
        })
      )
      .handle("logout", () =>
        Effect.gen(function* () {
          yield* setRefresh(yield* HttpServerRequest.HttpServerRequest, "", 0)
        })
      )
  })
)

export const AccountHandlers = HttpApiBuilder.group(Api, "account", (handlers) =>
  Effect.gen(function* () {
    const role = yield* AdminRole
    return handlers.handle("me", () =>
      Effect.gen(function* () {
        const user = yield* CurrentUser
        return { userId: user.userId, email: user.email, admin: yield* role.isAdmin(user) }
      })
    )
  })
)

export const IdentityHandlers = Layer.mergeAll(AuthHandlers, AccountHandlers)

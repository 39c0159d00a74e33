import { Context, Effect, Layer } from "effect"
import type { UserId } from "../domain/Ids.ts"
import { Accounts } from "../storage/Accounts.ts"
import type { Session } from "./Tokens.ts"

/** How long an answer of the database on the role is reused: a revoke holds within this. */
export const adminCheckMillis = 2_000

/**
 * Whether a signed-in user is an admin, asked on every admin request: the provider's claim
 * when its tokens carry the role, else the `admin` column, read at most every
 * `adminCheckMillis` per user, so `npm run admin -- revoke` holds within seconds whatever
 * tokens are out.
 */
export class AdminRole extends Context.Service<
  AdminRole,
  { readonly isAdmin: (session: Session) => Effect.Effect<boolean> }
>()("mincommerce/http/AdminRole") {
  static readonly make = (options: { readonly ttlMillis: number }) =>
    Layer.effect(
      AdminRole,
      Effect.gen(function* () {
        const accounts = yield* Accounts
        const known = new Map<UserId, { readonly admin: boolean; readonly until: number }>()
        const fromDatabase = (userId: UserId) =>
          Effect.suspend(() => {
            const cached = known.get(userId)
            if (cached !== undefined && cached.until > Date.now()) return Effect.succeed(cached.admin)
            return accounts.isAdmin(userId).pipe(
              Effect.tap((admin) =>
                Effect.sync(() => {
                  // Only admins and the buyers probing the admin API land here: a few entries.
                  if (known.size > 10_000) known.clear()
                  known.set(userId, { admin, until: Date.now() + options.ttlMillis })
                })
              ),
              // No answer from the database is no admin role: the request is refused.
              Effect.orElseSucceed(() => false)
            )
          })
        return AdminRole.of({
          isAdmin: (session) =>
            session.adminClaim === undefined
              ? fromDatabase(session.userId)
              : Effect.succeed(session.adminClaim)
        })
      })
    )

  static readonly layer = AdminRole.make({ ttlMillis: adminCheckMillis })
}

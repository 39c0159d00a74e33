import { Context, Effect, Layer } from "effect"
import { SqlClient, type SqlError } from "effect/sql"
import type { UserId } from "../domain/Ids.ts"

/** Buyers and admins, known by email. */
export class Users extends Context.Service<
  Users,
  {
    /** The user with this email, created on first sight. */
    readonly byEmail: (email: string) => Effect.Effect<UserId, SqlError.SqlError>
    /** Creates one user per email (existing ones are kept) and returns all their ids, in order. */
    readonly byEmails: (
      emails: ReadonlyArray<string>
    ) => Effect.Effect<ReadonlyArray<UserId>, SqlError.SqlError>
  }
>()("mincommerce/storage/Users") {
  static readonly layer = Layer.effect(
    Users,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient

      const byEmails = Effect.fn("Users.byEmails")(function* (emails: ReadonlyArray<string>) {
        const rows = yield* sql<{ id: UserId }>`
          WITH input AS (
            SELECT email, ordinality FROM unnest(${emails}::text[]) WITH ORDINALITY AS e (email, ordinality)
          ), inserted AS (
            INSERT INTO users (email) SELECT email FROM input ON CONFLICT (email) DO NOTHING RETURNING id, email
          )
          SELECT coalesce(i.id, u.id) AS id
          FROM input
          LEFT JOIN inserted i ON i.email = input.email
          LEFT JOIN users u ON u.email = input.email
          ORDER BY input.ordinality`
        return rows.map((row) => row.id)
      })

      const byEmail = Effect.fn("Users.byEmail")(function* (email: string) {
        const [id] = yield* byEmails([email])
        if (id === undefined) return yield* Effect.die(new Error("user upsert returned no row"))
        return id
      })

      return Users.of({ byEmail, byEmails })
    })
  )
}

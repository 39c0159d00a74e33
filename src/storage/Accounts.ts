import { Context, Effect, Layer, Schema } from "effect"
import { createHash } from "node:crypto"
import { SqlClient, type SqlError } from "effect/sql"
import type { UserId } from "../domain/Ids.ts"
import { sqlState } from "./Database.ts"

/** An account as sign-in needs it. */
export interface Account {
  readonly userId: UserId
  readonly email: string
  /** Argon2id PHC string; undefined for an account of the identity provider. */
  readonly passwordHash: string | undefined
  readonly admin: boolean
  readonly createdAt: Date
}

/** Sign-up with an email that already has an account. */
export class EmailTaken extends Schema.TaggedError<EmailTaken>()("EmailTaken", {
  email: Schema.String
}) {}

/** No account has this email. */
export class AccountNotFound extends Schema.TaggedError<AccountNotFound>()("AccountNotFound", {
  email: Schema.String
}) {}

interface Row {
  readonly userId: UserId
  readonly email: string
  readonly passwordHash: string | null
  readonly admin: boolean
  readonly createdAt: Date
}

const account = (row: Row): Account => ({ ...row, passwordHash: row.passwordHash ?? undefined })

// SQLSTATE 23505: unique_violation.
const isUniqueViolation = (error: SqlError.SqlError) => sqlState(error) === "23505"

/**
 * Who may sign in, how, and who is an admin. Emails are stored lower-cased; the role is a
 * column, so granting or revoking it takes effect on the next check, not at token expiry.
 */
export class Accounts extends Context.Service<
  Accounts,
  {
    readonly create: (
      email: string,
      passwordHash: string
    ) => Effect.Effect<Account, EmailTaken | SqlError.SqlError>
    readonly byEmail: (email: string) => Effect.Effect<Account | undefined, SqlError.SqlError>
    readonly byId: (userId: UserId) => Effect.Effect<Account | undefined, SqlError.SqlError>
    /**
     * The account of an identity provider's subject, made on first sight. The provider's word
     * on the email is taken only when the address is free (and given).
     */
    readonly ofSubject: (
      subject: string,
      email: string | undefined
    ) => Effect.Effect<Account, SqlError.SqlError>
    readonly isAdmin: (userId: UserId) => Effect.Effect<boolean, SqlError.SqlError>
    readonly setAdmin: (
      email: string,
      admin: boolean
    ) => Effect.Effect<Account, AccountNotFound | SqlError.SqlError>
  }
>()("mincommerce/storage/Accounts") {
  static readonly layer = Layer.effect(
    Accounts,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const columns = sql`id AS "userId", email, password_hash AS "passwordHash", admin, created_at AS "createdAt"`

      const create = Effect.fn("Accounts.create")(function* (email: string, passwordHash: string) {
        const normalised = email.toLowerCase()
        const rows = yield* sql<Row>`
          INSERT INTO users (email, password_hash) VALUES (${normalised}, ${passwordHash})
          RETURNING ${columns}`.pipe(
          Effect.catchIf(isUniqueViolation, () => Effect.fail(new EmailTaken({ email: normalised })))
        )
        const [row] = rows
        return row === undefined ? yield* new EmailTaken({ email: normalised }) : account(row)
      })

      const byEmail = Effect.fn("Accounts.byEmail")(function* (email: string) {
        const [row] = yield* sql<Row>`SELECT ${columns} FROM users WHERE email = ${email.toLowerCase()}`
        return row === undefined ? undefined : account(row)
      })

      const byId = Effect.fn("Accounts.byId")(function* (userId: UserId) {
        const [row] = yield* sql<Row>`SELECT ${columns} FROM users WHERE id = ${userId}`
        return row === undefined ? undefined : account(row)
      })

      const ofSubject = Effect.fn("Accounts.ofSubject")(function* (
        subject: string,
        email: string | undefined
      ) {
        const [known] = yield* sql<Row>`SELECT ${columns} FROM users WHERE subject = ${subject}`
        if (known !== undefined) return account(known)
        // The address may belong to a built-in account: then the subject gets a placeholder
        // address of its own rather than someone else's account.
        const free = email !== undefined && (yield* byEmail(email)) === undefined
        const address = free
          ? email.toLowerCase()
          : `${createHash("sha256").update(subject).digest("hex").slice(0, 32)}@subject.invalid`
        const [row] = yield* sql<Row>`
          INSERT INTO users (email, subject) VALUES (${address}, ${subject})
          ON CONFLICT (subject) DO UPDATE SET subject = EXCLUDED.subject
          RETURNING ${columns}`
        return row === undefined
          ? yield* Effect.die(new Error(`no account for subject ${subject}`))
          : account(row)
      })

      const isAdmin = Effect.fn("Accounts.isAdmin")(function* (userId: UserId) {
        const [row] = yield* sql<{ admin: boolean }>`SELECT admin FROM users WHERE id = ${userId}`
        return row?.admin === true
      })

      const setAdmin = Effect.fn("Accounts.setAdmin")(function* (email: string, admin: boolean) {
        const [row] = yield* sql<Row>`
          UPDATE users SET admin = ${admin} WHERE email = ${email.toLowerCase()} RETURNING ${columns}`
        return row === undefined ? yield* new AccountNotFound({ email: email.toLowerCase() }) : account(row)
      })

      return Accounts.of({ create, byEmail, byId, ofSubject, isAdmin, setAdmin })
    })
  )
}

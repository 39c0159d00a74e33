/**
 * `npm run admin -- grant <email>` / `npm run admin -- revoke <email>`: gives an existing
 * account the admin role, or takes it away, in the database the node uses (DATABASE_URL, else
 * the embedded one in DATA_DIR; stop the node first when it is embedded: PGlite has one
 * owner). Nodes read the role on admin requests, so the change holds within seconds, whatever
 * tokens are out.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Logger, References } from "effect"
import { Accounts } from "./storage/Accounts.ts"
import { Database } from "./storage/Database.ts"

const usage = "usage: npm run admin -- grant <email> | revoke <email>"

export const adminCommand = (argv: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const [verb, email] = argv
    if ((verb !== "grant" && verb !== "revoke") || email === undefined || argv.length !== 2) {
      return { code: 2, message: usage }
    }
    const accounts = yield* Accounts
    return yield* accounts.setAdmin(email, verb === "grant").pipe(
      Effect.map((account) => ({
        code: 0,
        message: `${account.email} ${account.admin ? "is now an admin" : "is no longer an admin"}`
      })),
      Effect.catchTag("AccountNotFound", () =>
        Effect.succeed({ code: 1, message: `no account has the email ${email}: it must sign up first` })
      )
    )
  })

if (import.meta.main) {
  const program = adminCommand(process.argv.slice(2)).pipe(
    Effect.tap(({ code, message }) =>
      Effect.sync(() => {
        ;(code === 0 ? console.log : console.error)(message)
        process.exitCode = code
      })
    ),
    Effect.provide(Accounts.layer),
    Effect.provide(Database.fromEnv),
    // The command's own answer is its output; the database's start-up lines are not.
    Effect.provideService(References.MinimumLogLevel, "Warn"),
    Effect.provide(Logger.layer([Logger.consolePretty()]))
  )
  NodeRuntime.runMain(program, { disableErrorReporting: false })
}

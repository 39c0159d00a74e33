import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import { PgClient } from "@effect/sql-pg"
import { Context, Effect, Layer, Option, Predicate, Redacted } from "effect"
import type { SqlError } from "effect/sql"
import { mkdirSync } from "node:fs"
import { resolve } from "node:path"
import * as Settings from "../Settings.ts"
import { Migrations } from "./Migrations.ts"

/**
 * The SQLSTATE PostgreSQL failed a statement with: the driver's error is the reason's cause
 * (the SqlError's own message says only that the query failed).
 */
export const sqlState = (error: SqlError.SqlError): string | undefined =>
  Predicate.hasProperty(error.reason.cause, "code") && typeof error.reason.cause.code === "string"
    ? error.reason.cause.code
    : undefined

/**
 * Which PostgreSQL this node talks to. Both layers provide the same `PgClient` /
 * `SqlClient` with the schema migrated, so nothing above storage can tell them apart.
 */
export class Database extends Context.Service<
  Database,
  {
    readonly mode: "server" | "embedded"
    /** Where the data lives, without credentials: for logs and health. */
    readonly location: string
  }
>()("mincommerce/storage/Database") {
  /** A PostgreSQL server at `url`. */
  static readonly server = (url: Redacted.Redacted, options: { readonly maxConnections?: number } = {}) =>
    Layer.succeed(Database, Database.of({ mode: "server", location: describeUrl(Redacted.value(url)) })).pipe(
      Layer.merge(
        Migrations.layer.pipe(
          Layer.provideMerge(
            PgClient.layer({
              url,
              maxConnections: options.maxConnections ?? 10,
              // A node paused inside a commit (SIGSTOP, a stalled VM) would hold its sale's stock
              // row, and with it the next owner's takeover, for as long as it sleeps. Our
              // transactions never wait on their client for long: the server ends such a one.
              startupParameters: { idle_in_transaction_session_timeout: "5000" }
            })
          )
        )
      )
    )

  /**
   * PGlite in `dataDir`, served on a loopback port by pglite-socket and reached through
   * the same client as a server. PGlite runs one session, so the pool holds one connection.
   */
  static readonly embedded = (dataDir: string) =>
    Layer.unwrap(
      Effect.gen(function* () {
        const folder = resolve(dataDir, "pglite")
        const port = yield* startEmbedded(folder)
        return Layer.succeed(Database, Database.of({ mode: "embedded", location: folder })).pipe(
          Layer.merge(
            Migrations.layer.pipe(
              Layer.provideMerge(
                PgClient.layer({
                  host: "127.0.0.1",
                  port,
                  username: "postgres",
                  database: "postgres",
                  maxConnections: 1
                })
              )
            )
          )
        )
      })
    )

  /** DATABASE_URL when set, else the embedded database in DATA_DIR. The log says which. */
  static readonly fromEnv = Layer.unwrap(
    Effect.gen(function* () {
      const url = yield* Settings.databaseUrl
      if (Option.isSome(url)) {
        yield* Effect.logInfo("database: PostgreSQL server", { at: describeUrl(Redacted.value(url.value)) })
        return Database.server(url.value)
      }
      const dataDir = yield* Settings.dataDir
      yield* Effect.logInfo("database: embedded PostgreSQL (PGlite), no DATABASE_URL set", {
        at: resolve(dataDir, "pglite")
      })
      return Database.embedded(dataDir)
    })
  )
}

const startEmbedded = (folder: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      mkdirSync(folder, { recursive: true })
      const db = await PGlite.create(folder)
      const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 8 })
      await server.start()
      const port = Number(server.getServerConn().split(":").pop())
      return { db, server, port }
    }),
    ({ db, server }) => Effect.promise(() => server.stop().then(() => db.close()))
  ).pipe(Effect.map(({ port }) => port))

const describeUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    return `${parsed.hostname}:${parsed.port || "5432"}${parsed.pathname}`
  } catch {
    return "(unparseable DATABASE_URL)"
  }
}

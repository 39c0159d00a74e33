import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { Reactivity } from "effect/reactivity"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { randomBytes } from "node:crypto"
import { Audit } from "../../src/storage/Audit.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { Database } from "../../src/storage/Database.ts"

/**
 * The PostgreSQL a test file runs against: a fresh database on the machine's server
 * (TEST_DATABASE_URL, default the local `test` database's server), or, with
 * MINCOMMERCE_TEST_DB=embedded, a fresh PGlite in a temporary folder.
 */
export const testDatabaseMode: "server" | "embedded" =
  process.env.MINCOMMERCE_TEST_DB === "embedded" ? "embedded" : "server"

export const adminUrl = process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test"

/** Creates an empty database on the server and drops it when the scope closes. */
export const freshServerDatabase = Effect.acquireRelease(
  Effect.gen(function* () {
    const name = `mincommerce_${randomBytes(6).toString("hex")}`
    yield* withAdmin((sql) => sql.unsafe(`CREATE DATABASE ${name}`))
    const url = new URL(adminUrl)
    url.pathname = `/${name}`
    return { name, url: url.toString() }
  }),
  ({ name }) =>
    withAdmin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).pipe(Effect.orDie)
)

/**
 * A fresh, migrated server database with the catalog and the invariant audit on it: where a
 * test or benchmark that starts real node processes sets up sales and reads its results back.
 */
export const freshServerStorage = (options: { readonly maxConnections?: number } = {}) =>
  Effect.gen(function* () {
    const database = yield* freshServerDatabase
    const storage = yield* Layer.build(
      Layer.mergeAll(Catalog.layer, Audit.layer).pipe(
        Layer.provideMerge(Database.server(Redacted.make(database.url), options))
      )
    )
    return { ...database, storage }
  })

const withAdmin = <A, E>(f: (sql: PgClient.PgClient) => Effect.Effect<A, E>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const sql = yield* PgClient.make({ url: Redacted.make(adminUrl), maxConnections: 1 })
      return yield* f(sql)
    })
  ).pipe(Effect.provide(Reactivity.layer), Effect.orDie)

export const TestDatabase = {
  /** A migrated, empty database of the configured mode. */
  layer: Layer.unwrap(
    Effect.gen(function* () {
      if (testDatabaseMode === "embedded") {
        const folder = yield* Effect.acquireRelease(
          Effect.sync(() => mkdtempSync(join(tmpdir(), "mincommerce-pglite-"))),
          (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
        )
        return Database.embedded(folder)
      }
      const { url } = yield* freshServerDatabase
      return Database.server(Redacted.make(url), { maxConnections: 8 })
    })
  )
}

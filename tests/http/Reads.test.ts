import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { SqlClient } from "effect/sql"
import pg from "pg"
import { SaleRouter } from "../../src/cluster/SaleRouter.ts"
import { ApiNode, baseUrl } from "../support/ApiNode.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"
import { adminUrl } from "../support/TestDatabase.ts"

/** Committed transactions of `database` as PostgreSQL counts them, read over another database. */
const committed = (database: string) =>
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: adminUrl })
    await client.connect()
    try {
      // Backends report their counters when idle for a second; this asks for the latest.
      const { rows } = await client.query<{ xact_commit: string }>(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = $1",
        [database]
      )
      return Number(rows[0]?.xact_commit ?? 0)
    } finally {
      await client.end()
    }
  })

/**
 * A backend reports its transaction counts at its next transaction a second after the last
 * report, or after 10 s idle (PostgreSQL 15's PGSTAT_IDLE_INTERVAL): waiting that long first
 * makes the count include everything before and nothing after.
 */
const statsFlushMillis = 11_000

const settled = (database: string) =>
  Effect.andThen(Effect.sleep(`${statsFlushMillis} millis`), committed(database))

const get = (path: string, headers: Record<string, string> = {}) =>
  Effect.flatMap(baseUrl, (url) =>
    Effect.promise(async () => {
      const response = await fetch(`${url}${path}`, { headers })
      const text = await response.text()
      return { status: response.status, headers: response.headers, text }
    })
  )

layer(ApiNode, { timeout: 120_000, excludeTestServices: true })("public reads from memory", (it) => {
  it.effect("a burst of status, stats and sale reads costs PostgreSQL no transaction once warm", () =>
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const [{ name }] = (yield* sql<{ name: string }>`SELECT current_database() AS name`) as [
        { name: string }
      ]
      // PostgreSQL's own autovacuum would count as transactions of this database.
      const tables = yield* sql<{
        name: string
      }>`SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'`
      for (const table of tables)
        yield* sql.unsafe(`ALTER TABLE "${table.name}" SET (autovacuum_enabled = false)`)
      const saleId = yield* makeSale(100, { startsAt: Date.now() - 86_400_000 })
      const router = yield* SaleRouter
      const [buyer] = yield* makeUsers(1)
      yield* router.purchase(saleId, buyer!)
      // Warm: each read once.
      const paths = ["/api/flash-sale/status", "/api/flash-sale/stats", `/api/sales/${saleId}`, "/api/sales"]
      for (const path of paths) assert.strictEqual((yield* get(path)).status, 200)
      const before = yield* settled(name)
      const url = yield* baseUrl
      const answers = yield* Effect.promise(() =>
        Promise.all(
          Array.from({ length: 40 }, async (_, worker) => {
            const statuses: Array<number> = []
            for (let i = 0; i < 50; i++) {
              const response = await fetch(`${url}${paths[(worker + i) % paths.length]}`)
              await response.arrayBuffer()
              statuses.push(response.status)
            }
            return statuses
          })
        )
      )
      assert.isTrue(answers.flat().every((status) => status === 200))
      const after = yield* settled(name)
      assert.strictEqual(after - before, 0, "PostgreSQL transactions during 2,000 reads")
      const status = JSON.parse((yield* get("/api/flash-sale/status")).text) as {
        saleId: string
        remaining: number
      }
      assert.deepStrictEqual([status.saleId, status.remaining], [saleId, 99])
    })
  )

  it.effect(
    "ETag and If-None-Match: 304 while the sale is unchanged, 200 with a new tag after a purchase",
    () =>
      Effect.gen(function* () {
        const saleId = yield* makeSale(5, { startsAt: Date.now() - 2 * 86_400_000 })
        const router = yield* SaleRouter
        const users = yield* makeUsers(1)
        for (const path of [
          "/api/flash-sale/status",
          "/api/flash-sale/stats",
          `/api/sales/${saleId}`,
          "/api/sales"
        ]) {
          const first = yield* get(path)
          assert.strictEqual(first.status, 200, path)
          const etag = first.headers.get("etag")
          assert.isString(etag, path)
          assert.match(
            first.headers.get("cache-control") ?? "",
            /public, max-age=1, stale-while-revalidate=\d+/
          )
          const again = yield* get(path, { "if-none-match": etag! })
          assert.strictEqual(again.status, 304, path)
          assert.strictEqual(again.text, "")
          assert.strictEqual(again.headers.get("etag"), etag)
        }
        const sale = yield* get(`/api/sales/${saleId}`)
        const etag = sale.headers.get("etag")!
        assert.strictEqual(JSON.parse(sale.text).remaining, 5)
        yield* router.purchase(saleId, users[0]!)
        const changed = yield* get(`/api/sales/${saleId}`, { "if-none-match": etag })
        assert.strictEqual(changed.status, 200)
        assert.notStrictEqual(changed.headers.get("etag"), etag)
        assert.strictEqual(JSON.parse(changed.text).remaining, 4)
      })
  )

  it.effect("an unknown sale is still a 404 in the API's error shape", () =>
    Effect.gen(function* () {
      const unknown = "0b8a7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
      const answer = yield* get(`/api/sales/${unknown}`)
      assert.strictEqual(answer.status, 404)
      assert.strictEqual(JSON.parse(answer.text).error.code, "sale_not_found")
    })
  )
})

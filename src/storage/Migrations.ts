import { NodeServices } from "@effect/platform-node"
import * as PgMigrator from "@effect/sql-pg/PgMigrator"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"

const schema = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE users (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      email text NOT NULL UNIQUE CHECK (length(email) BETWEEN 3 AND 254),
      created_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`
    CREATE TABLE products (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
      description text NOT NULL DEFAULT '',
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`
  yield* sql`
    CREATE TABLE flash_sales (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      product_id uuid NOT NULL REFERENCES products (id),
      price_cents integer NOT NULL CHECK (price_cents >= 0),
      starts_at timestamptz NOT NULL,
      ends_at timestamptz NOT NULL,
      status text NOT NULL DEFAULT 'scheduled' CHECK (status IN ('scheduled', 'cancelled')),
      sold_out_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK (ends_at > starts_at)
    )`
  yield* sql`CREATE INDEX flash_sales_window ON flash_sales (starts_at, ends_at)`
  yield* sql`CREATE INDEX flash_sales_product ON flash_sales (product_id)`
  // One stock row per sale. It also carries the owner epoch: every batch commit checks the
  // epoch and takes the units in the same UPDATE, so a fenced owner can take nothing (I4).
  yield* sql`
    CREATE TABLE stocks (
      sale_id uuid PRIMARY KEY REFERENCES flash_sales (id),
      total integer NOT NULL CHECK (total >= 0),
      available integer NOT NULL CHECK (available >= 0),
      owner_epoch integer NOT NULL DEFAULT 0,
      updated_at timestamptz NOT NULL DEFAULT now(),
      CHECK (available <= total)
    )`
  yield* sql`
    CREATE TABLE orders (
      id uuid PRIMARY KEY,
      sale_id uuid NOT NULL REFERENCES flash_sales (id),
      user_id uuid NOT NULL REFERENCES users (id),
      price_cents integer NOT NULL,
      owner_epoch integer NOT NULL,
      created_at timestamptz NOT NULL,
      UNIQUE (sale_id, user_id)
    )`
  yield* sql`CREATE INDEX orders_user ON orders (user_id)`
  // The audit log of every decision, written by the sale's owner in its batches. No foreign
  // keys here: PostgreSQL checks them with a trigger per row, which would more than double the
  // cost of every batch, and only the owner of an existing sale ever appends.
  yield* sql`
    CREATE TABLE purchase_attempts (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      sale_id uuid NOT NULL,
      user_id uuid NOT NULL,
      outcome text NOT NULL,
      attempted_at timestamptz NOT NULL
    )`
  yield* sql`CREATE INDEX purchase_attempts_sale ON purchase_attempts (sale_id, outcome)`
})

// Each batch commit stamps its id on the stock row, so an owner whose commit lost its reply
// can tell exactly whether that transaction went through, even a batch with no orders.
const batchStamp = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE stocks ADD COLUMN last_batch uuid`
})

// Orders are written only by the sale's owner, in fenced batches: the sale exists (the same
// transaction takes the units from its stock row, which references it) and the buyer exists
// (the id comes from a token signed when the user row was made; users are never deleted).
// PostgreSQL checks a foreign key with a trigger per row, which costs as much as the rest of
// the insert together (measured: 20 µs against 12 µs per order row), so orders carry none.
//
// Each committed batch also leaves its id in commit_batches, so an owner whose commit lost its
// reply can tell whether it went through, even with two of its batches in flight at once.
const pipelinedCommits = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE orders DROP CONSTRAINT orders_sale_id_fkey, DROP CONSTRAINT orders_user_id_fkey`
  yield* sql`
    CREATE TABLE commit_batches (
      batch_id uuid PRIMARY KEY,
      sale_id uuid NOT NULL REFERENCES flash_sales (id),
      owner_epoch integer NOT NULL,
      orders integer NOT NULL,
      committed_at timestamptz NOT NULL DEFAULT now()
    )`
})

// The audit log is appended to in batches and read only by sale and outcome: a surrogate key
// would cost a sequence step and an index entry per decision and serve no query.
const auditWithoutSurrogateKey = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE purchase_attempts DROP COLUMN id`
})

// How long each batch's transaction ran on the server, from BEGIN to just before COMMIT: the
// sale's commit latency percentiles, whichever node committed.
const batchDurations = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE commit_batches ADD COLUMN millis real`
  yield* sql`CREATE INDEX commit_batches_sale ON commit_batches (sale_id, committed_at)`
})

/** Brings the schema up to date; a node serves nothing before this has run. */
export const Migrations = {
  layer: PgMigrator.layer({
    loader: PgMigrator.fromRecord({
      "0001_schema": schema,
      "0002_batch_stamp": batchStamp,
      "0003_pipelined_commits": pipelinedCommits,
      "0004_audit_without_surrogate_key": auditWithoutSurrogateKey,
      "0005_batch_durations": batchDurations
    })
  }).pipe(Layer.provide(NodeServices.layer))
}

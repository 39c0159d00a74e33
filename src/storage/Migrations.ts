import { NodeServices } from "@effect/platform-node"
import * as PgMigrator from "@effect/sql-pg/PgMigrator"
import { Effect, Layer } from "effect"
import { SqlClient } from "effect/sql"
import { checkoutMigration } from "./Checkout.ts"
import { paymentEventsMigration } from "./PaymentEvents.ts"

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

// A batch's whole transaction in one statement, so a commit costs one round trip to the server
// instead of seven: with one commit in flight at a time, each round trip waits for the node's
// event loop, busy answering HTTP, and those waits were most of a commit's latency. The order
// of work is the same as before: the epoch is read first, unlocked, to turn a stale owner away
// before it writes anything; the inserts run next, so batches in flight insert side by side;
// the stock row is taken last, and its fenced UPDATE is what decides. A stale owner gets
// SQLSTATE MCSTL, a batch larger than the stock MCOVR; either rolls everything back.
const commitFunction = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE FUNCTION commit_batch(
      p_batch uuid, p_sale uuid, p_epoch integer,
      p_order_ids uuid[], p_order_users uuid[], p_order_at float8[],
      p_attempt_users uuid[], p_attempt_outcomes text[], p_attempt_at float8[]
    ) RETURNS integer LANGUAGE plpgsql AS $$
    DECLARE
      taken integer := coalesce(cardinality(p_order_ids), 0);
      left_over integer;
      current_epoch integer;
    BEGIN
      SELECT owner_epoch INTO current_epoch FROM stocks WHERE sale_id = p_sale;
      IF current_epoch IS DISTINCT FROM p_epoch THEN
        RAISE EXCEPTION 'sale %: epoch % is stale', p_sale, p_epoch USING ERRCODE = 'MCSTL';
      END IF;
      IF taken > 0 THEN
        INSERT INTO orders (id, sale_id, user_id, price_cents, owner_epoch, created_at)
        SELECT o.id, f.id, o.user_id, f.price_cents, p_epoch, to_timestamp(o.at / 1000.0)
        FROM unnest(p_order_ids, p_order_users, p_order_at) AS o (id, user_id, at)
        CROSS JOIN flash_sales f WHERE f.id = p_sale;
      END IF;
      IF coalesce(cardinality(p_attempt_users), 0) > 0 THEN
        INSERT INTO purchase_attempts (sale_id, user_id, outcome, attempted_at)
        SELECT p_sale, a.user_id, a.outcome, to_timestamp(a.at / 1000.0)
        FROM unnest(p_attempt_users, p_attempt_outcomes, p_attempt_at) AS a (user_id, outcome, at);
      END IF;
      UPDATE stocks SET available = available - taken, updated_at = now()
      WHERE sale_id = p_sale AND owner_epoch = p_epoch AND available >= taken
      RETURNING available INTO left_over;
      IF NOT FOUND THEN
        SELECT owner_epoch INTO current_epoch FROM stocks WHERE sale_id = p_sale;
        IF current_epoch = p_epoch THEN
          RAISE EXCEPTION 'sale %: batch of % exceeds the stock', p_sale, taken USING ERRCODE = 'MCOVR';
        END IF;
        RAISE EXCEPTION 'sale %: epoch % is stale', p_sale, p_epoch USING ERRCODE = 'MCSTL';
      END IF;
      INSERT INTO commit_batches (batch_id, sale_id, owner_epoch, orders, millis)
      VALUES (p_batch, p_sale, p_epoch, taken, extract(epoch FROM clock_timestamp() - now()) * 1000);
      IF taken > 0 AND left_over = 0 THEN
        UPDATE flash_sales SET sold_out_at = now() WHERE id = p_sale AND sold_out_at IS NULL;
      END IF;
      RETURN left_over;
    END
    $$`
})

// Accounts: a password hash for built-in sign-in (null for a buyer known only through the
// shop's identity provider, by its subject), and the admin role as data, granted and revoked
// by command and read on every admin request.
const accounts = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    ALTER TABLE users
      ADD COLUMN password_hash text CHECK (password_hash IS NULL OR password_hash LIKE '$argon2id$%'),
      ADD COLUMN subject text UNIQUE CHECK (subject IS NULL OR length(subject) BETWEEN 1 AND 255),
      ADD COLUMN admin boolean NOT NULL DEFAULT false`
})

// Refusals that no buyer's history needs (sold out, not started, ended, cancelled) are counted
// per batch and outcome instead of written one row each: a flood refuses far more buyers than
// it sells to, and a row per refusal was most of what a batch wrote. Accepted, commit_failed
// and already_purchased stay in purchase_attempts, one row per buyer. Audit totals are the
// attempts' rows plus these counts. This commit_batch calls migration 0006's, so the fence and
// the order of work are that function's; the counts join the same transaction.
const refusalCounts = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    CREATE TABLE purchase_refusals (
      sale_id uuid NOT NULL,
      batch_id uuid NOT NULL,
      outcome text NOT NULL,
      count integer NOT NULL CHECK (count > 0),
      first_at timestamptz NOT NULL,
      last_at timestamptz NOT NULL
    )`
  yield* sql`CREATE INDEX purchase_refusals_sale ON purchase_refusals (sale_id, outcome)`
  yield* sql`
    CREATE FUNCTION commit_batch(
      p_batch uuid, p_sale uuid, p_epoch integer,
      p_order_ids uuid[], p_order_users uuid[], p_order_at float8[],
      p_attempt_users uuid[], p_attempt_outcomes text[], p_attempt_at float8[],
      p_refusal_outcomes text[], p_refusal_counts integer[],
      p_refusal_first float8[], p_refusal_last float8[]
    ) RETURNS integer LANGUAGE plpgsql AS $$
    DECLARE
      left_over integer;
    BEGIN
      left_over := commit_batch(
        p_batch, p_sale, p_epoch, p_order_ids, p_order_users, p_order_at,
        p_attempt_users, p_attempt_outcomes, p_attempt_at);
      IF coalesce(cardinality(p_refusal_outcomes), 0) > 0 THEN
        INSERT INTO purchase_refusals (sale_id, batch_id, outcome, count, first_at, last_at)
        SELECT p_sale, p_batch, r.outcome, r.n, to_timestamp(r.first_at / 1000.0), to_timestamp(r.last_at / 1000.0)
        FROM unnest(p_refusal_outcomes, p_refusal_counts, p_refusal_first, p_refusal_last)
          AS r (outcome, n, first_at, last_at);
      END IF;
      RETURN left_over;
    END
    $$`
})

// Per-sale rules checked before a purchase reaches the owner (see domain/PurchaseRules.ts):
// a proof-of-work difficulty, and whether only accounts older than the sale may buy. Both are
// set at creation and never change, so nodes cache them without invalidation.
const purchaseRules = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    ALTER TABLE flash_sales
      ADD COLUMN pow_difficulty integer CHECK (pow_difficulty IS NULL OR pow_difficulty BETWEEN 1 AND 1000000),
      ADD COLUMN older_accounts_only boolean NOT NULL DEFAULT false`
})

// Draw mode (issue 16). A sale's allocation is first come or a draw; a draw sale has one row
// in sale_draws from its creation: the entry window's length, the secret seed and its
// commitment (published), and, once drawn, when, by which epoch, over how many units and
// entries and the entries' hash. The row is the draw's one-time switch: drawn_at is set once.
// Entries are one per buyer (the primary key), written by the owner in its fenced batches:
// this commit_batch calls migration 0008's, whose fenced UPDATE leaves the stock row locked,
// so a draw committed before that lock was taken is seen here and the late entries are
// refused whole (SQLSTATE MCDRN) rather than slipping in after the draw read the entries.
// An entry's id is also its order id if it wins; its place is its position in draw order.
const draws = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`
    ALTER TABLE flash_sales ADD COLUMN allocation text NOT NULL DEFAULT 'first_come'
      CHECK (allocation IN ('first_come', 'draw'))`
  yield* sql`
    CREATE TABLE sale_draws (
      sale_id uuid PRIMARY KEY REFERENCES flash_sales (id),
      entry_window_ms bigint NOT NULL CHECK (entry_window_ms > 0),
      seed text NOT NULL CHECK (seed ~ '^[0-9a-f]{64}$'),
      commitment text NOT NULL CHECK (commitment ~ '^[0-9a-f]{64}$'),
      drawn_at timestamptz,
      drawn_epoch integer,
      units integer CHECK (units >= 0),
      entries integer CHECK (entries >= 0),
      entries_hash text,
      CHECK ((drawn_at IS NULL) = (entries_hash IS NULL))
    )`
  yield* sql`
    CREATE TABLE sale_entries (
      sale_id uuid NOT NULL,
      user_id uuid NOT NULL,
      entry_id uuid NOT NULL UNIQUE,
      entered_at float8 NOT NULL,
      owner_epoch integer NOT NULL,
      place integer CHECK (place >= 1),
      PRIMARY KEY (sale_id, user_id)
    )`
  yield* sql`
    CREATE FUNCTION commit_batch(
      p_batch uuid, p_sale uuid, p_epoch integer,
      p_order_ids uuid[], p_order_users uuid[], p_order_at float8[],
      p_attempt_users uuid[], p_attempt_outcomes text[], p_attempt_at float8[],
      p_refusal_outcomes text[], p_refusal_counts integer[],
      p_refusal_first float8[], p_refusal_last float8[],
      p_entry_ids uuid[], p_entry_users uuid[], p_entry_at float8[]
    ) RETURNS integer LANGUAGE plpgsql AS $$
    DECLARE
      left_over integer;
    BEGIN
      left_over := commit_batch(
        p_batch, p_sale, p_epoch, p_order_ids, p_order_users, p_order_at,
        p_attempt_users, p_attempt_outcomes, p_attempt_at,
        p_refusal_outcomes, p_refusal_counts, p_refusal_first, p_refusal_last);
      IF coalesce(cardinality(p_entry_ids), 0) > 0 THEN
        IF EXISTS (SELECT 1 FROM sale_draws WHERE sale_id = p_sale AND drawn_at IS NOT NULL) THEN
          RAISE EXCEPTION 'sale %: drawn already; entries refused', p_sale USING ERRCODE = 'MCDRN';
        END IF;
        INSERT INTO sale_entries (sale_id, user_id, entry_id, entered_at, owner_epoch)
        SELECT p_sale, e.user_id, e.id, e.at, p_epoch
        FROM unnest(p_entry_ids, p_entry_users, p_entry_at) AS e (id, user_id, at);
      END IF;
      RETURN left_over;
    END
    $$`
})

// The order lifecycle (issue 17). A sale may hold each accepted unit for its buyer for
// hold_seconds (0: a purchase is final, as every order before this migration was, so existing
// rows and hold-0 orders are 'paid'). A held order is 'reserved' until pay_by, then 'paid', or
// 'expired' at pay_by, or 'cancelled' by its buyer; a late payment is 'refunded'. Pending holds
// are what a new owner loads to resume their deadlines, hence the partial index.
//
// This commit_batch overload is the hold sale's batch: its ended holds (expired, cancelled)
// give their units back on the stock row before the inner commit_batch takes units, so a unit
// expired and sold again in one batch fits; that early lock on the stock row is checked against
// the epoch, so a fenced owner's expiries raise MCSTL and change nothing. Only a hold row still
// 'reserved' moves, so an order ends (and its unit comes back) at most once, and a paid order
// never expires. The inner call is 0009's, untouched: hold-0 batches never come here.
const orderLifecycle = Effect.gen(function* () {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE flash_sales ADD COLUMN hold_seconds integer NOT NULL DEFAULT 0 CHECK (hold_seconds >= 0)`
  yield* sql`
    ALTER TABLE orders
      ADD COLUMN status text NOT NULL DEFAULT 'paid'
        CHECK (status IN ('reserved', 'paid', 'expired', 'cancelled', 'refunded')),
      ADD COLUMN pay_by timestamptz,
      ADD COLUMN paid_at timestamptz,
      ADD CONSTRAINT orders_reserved_until CHECK (status <> 'reserved' OR pay_by IS NOT NULL)`
  yield* sql`CREATE INDEX orders_pending_holds ON orders (sale_id, pay_by) WHERE status = 'reserved'`
  yield* sql`
    CREATE FUNCTION commit_batch(
      p_batch uuid, p_sale uuid, p_epoch integer,
      p_order_ids uuid[], p_order_users uuid[], p_order_at float8[],
      p_attempt_users uuid[], p_attempt_outcomes text[], p_attempt_at float8[],
      p_refusal_outcomes text[], p_refusal_counts integer[],
      p_refusal_first float8[], p_refusal_last float8[],
      p_entry_ids uuid[], p_entry_users uuid[], p_entry_at float8[],
      p_order_pay_by float8[],
      p_paid_ids uuid[], p_paid_at float8[],
      p_ended_ids uuid[], p_ended_status text[]
    ) RETURNS integer LANGUAGE plpgsql AS $$
    DECLARE
      left_over integer;
      current_epoch integer;
      freed integer := 0;
    BEGIN
      IF coalesce(cardinality(p_ended_ids), 0) > 0 THEN
        SELECT owner_epoch INTO current_epoch FROM stocks WHERE sale_id = p_sale FOR UPDATE;
        IF current_epoch IS DISTINCT FROM p_epoch THEN
          RAISE EXCEPTION 'sale %: epoch % is stale', p_sale, p_epoch USING ERRCODE = 'MCSTL';
        END IF;
        WITH ended AS (
          UPDATE orders o SET status = e.status
          FROM unnest(p_ended_ids, p_ended_status) AS e (id, status)
          WHERE o.id = e.id AND o.sale_id = p_sale AND o.status = 'reserved'
            AND e.status IN ('expired', 'cancelled')
          RETURNING o.id)
        SELECT count(*) INTO freed FROM ended;
        IF freed > 0 THEN
          UPDATE stocks SET available = available + freed, updated_at = now() WHERE sale_id = p_sale;
        END IF;
      END IF;
      left_over := commit_batch(
        p_batch, p_sale, p_epoch, p_order_ids, p_order_users, p_order_at,
        p_attempt_users, p_attempt_outcomes, p_attempt_at,
        p_refusal_outcomes, p_refusal_counts, p_refusal_first, p_refusal_last,
        p_entry_ids, p_entry_users, p_entry_at);
      -- Fenced from here on: the inner call's UPDATE holds the stock row under our epoch.
      IF coalesce(cardinality(p_order_pay_by), 0) > 0 THEN
        UPDATE orders o SET status = 'reserved', pay_by = to_timestamp(h.pay_by / 1000.0)
        FROM unnest(p_order_ids, p_order_pay_by) AS h (id, pay_by)
        WHERE o.id = h.id AND h.pay_by IS NOT NULL;
      END IF;
      IF coalesce(cardinality(p_paid_ids), 0) > 0 THEN
        UPDATE orders o SET status = 'paid', paid_at = to_timestamp(p.at / 1000.0)
        FROM unnest(p_paid_ids, p_paid_at) AS p (id, at)
        WHERE o.id = p.id AND o.sale_id = p_sale AND o.status = 'reserved';
      END IF;
      RETURN left_over;
    END
    $$`
})

/** Brings the schema up to date; a node serves nothing before this has run. */
export const Migrations = {
  layer: PgMigrator.layer({
    loader: PgMigrator.fromRecord({
      "0001_schema": schema,
      "0002_batch_stamp": batchStamp,
      "0003_pipelined_commits": pipelinedCommits,
      "0004_audit_without_surrogate_key": auditWithoutSurrogateKey,
      "0005_batch_durations": batchDurations,
      "0006_commit_function": commitFunction,
      "0007_accounts": accounts,
      "0008_refusal_counts": refusalCounts,
      "0009_draw": draws,
      "0010_purchase_rules": purchaseRules,
      "0011_order_lifecycle": orderLifecycle,
      "0012_payments": paymentEventsMigration,
      "0013_checkout": checkoutMigration
    })
  }).pipe(Layer.provide(NodeServices.layer))
}

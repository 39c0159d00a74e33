import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Exit, Latch, Layer, Queue, Tracer } from "effect"
import { SqlClient } from "effect/sql"
import { randomUUID } from "node:crypto"
import * as GroupCommitter from "../../src/actors/GroupCommitter.ts"
import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import type { Outcome } from "../../src/domain/Outcome.ts"
import type { Refusal } from "../../src/domain/Reply.ts"
import { Audit } from "../../src/storage/Audit.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { OrderStore } from "../../src/storage/OrderStore.ts"
import * as Tracing from "../../src/Tracing.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"
import { TestDatabase, testDatabaseMode } from "../support/TestDatabase.ts"
import { faultyStore, type Fault } from "./Faults.ts"

const Storage = Layer.mergeAll(Catalog.layer, OrderStore.layer, Audit.layer).pipe(
  Layer.provideMerge(TestDatabase.layer)
)

type Answer = Outcome | Refusal

/**
 * A committer on a freshly claimed sale, over the real store whose commits pass through a
 * plan: each commit announces its size on `started`, waits for `gate`, then takes its fault.
 */
const harness = (options: {
  maxBatchSize: number
  commitsInFlight: number
  faults?: ReadonlyArray<Fault>
  startSpan?: Tracing.StartSpan
}) =>
  Effect.gen(function* () {
    const users = yield* makeUsers(200)
    const saleId = yield* makeSale(200)
    const { epoch } = yield* (yield* OrderStore).claim(saleId)
    const started = yield* Queue.unbounded<number>()
    const gate = yield* Latch.make(false)
    const sizes: Array<number> = []
    let inFlight = 0
    let most = 0
    const plan = (batch: { readonly orders: ReadonlyArray<unknown> }) =>
      Effect.gen(function* () {
        const fault = options.faults?.[sizes.length] ?? "none"
        sizes.push(batch.orders.length)
        most = Math.max(most, ++inFlight)
        yield* Queue.offer(started, batch.orders.length)
        yield* gate.await
        inFlight--
        return fault
      })
    const reports: Array<GroupCommitter.CommitterReport> = []
    const reported = yield* Queue.unbounded<GroupCommitter.CommitterReport>()
    const drained = yield* Deferred.make<void>()
    const answers = new Map<UserId, Answer>()
    const committer = yield* GroupCommitter.make({
      saleId,
      epoch,
      maxBatchSize: options.maxBatchSize,
      commitsInFlight: options.commitsInFlight,
      retryAfterSeconds: 1,
      startSpan: options.startSpan,
      report: (report) => {
        reports.push(report)
        Queue.offerUnsafe(reported, report)
        if (report._tag === "Drained") Deferred.doneUnsafe(drained, Exit.void)
      }
    }).pipe(Effect.provide(faultyStore(plan)))
    // A purchase whose span is kept: its batch's commit links to it.
    const traced = (userId: UserId, trace: Tracing.TraceContext | undefined): GroupCommitter.Staged => ({
      attempt: { userId, outcome: "accepted", at: Date.now() },
      refusals: undefined,
      order: { orderId: randomUUID() as OrderId, userId, at: Date.now() },
      entry: undefined,
      reply: (answer) => answers.set(userId, answer),
      trace
    })
    const accepted = (userId: UserId) => traced(userId, undefined)
    // A refusal no buyer's history needs is staged as a count, without the buyer.
    const rejected = (_userId: UserId): GroupCommitter.Staged => ({
      attempt: undefined,
      refusals: { outcome: "sold_out", count: 1, firstAt: Date.now(), lastAt: Date.now() },
      order: undefined,
      entry: undefined,
      reply: undefined,
      trace: undefined
    })
    return {
      users,
      saleId,
      committer,
      started,
      gate,
      sizes,
      reports,
      answers,
      accepted,
      traced,
      rejected,
      most: () => most,
      reported,
      drained: Deferred.await(drained)
    }
  })

const storedFor = (saleId: SaleId) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const orders = yield* sql<{
      userId: UserId
    }>`SELECT user_id AS "userId" FROM orders WHERE sale_id = ${saleId}`
    const attempts = yield* sql<{ userId: UserId; outcome: string }>`
      SELECT user_id AS "userId", outcome FROM purchase_attempts WHERE sale_id = ${saleId}`
    const refusals = yield* sql<{ outcome: string; n: number }>`
      SELECT outcome, sum(count)::int AS n FROM purchase_refusals WHERE sale_id = ${saleId} GROUP BY outcome`
    return {
      orders: orders.map((o) => o.userId),
      attempts: [
        ...attempts.map((a) => `${a.outcome} ${a.userId}`),
        ...refusals.map((r) => `${r.outcome} x${r.n}`)
      ].sort()
    }
  })

const tags = (reports: ReadonlyArray<GroupCommitter.CommitterReport>) => reports.map((r) => r._tag)

layer(Storage, { timeout: 60_000, excludeTestServices: true })(
  `group committer on ${testDatabaseMode} PostgreSQL`,
  (it) => {
    it.effect(
      "commits what is staged as soon as the previous commit returns, one commit while no full batch waits",
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const h = yield* harness({ maxBatchSize: 100, commitsInFlight: 3 })
            yield* h.committer.stage([h.accepted(h.users[0]!)])
            assert.strictEqual(yield* Queue.take(h.started), 1)
            // Staged while the first commit is in flight: fewer than a full batch, so they wait for it.
            for (let i = 0; i < 5; i++)
              yield* h.committer.stage(h.users.slice(1 + i * 10, 11 + i * 10).map(h.accepted))
            yield* h.gate.open
            yield* h.committer.end
            yield* h.drained
            assert.deepStrictEqual(h.sizes, [1, 50], "the waiting orders went as one batch")
            assert.strictEqual(h.most(), 1)
            assert.deepStrictEqual(tags(h.reports), ["Committed", "Committed", "Drained"])
            assert.strictEqual(h.answers.size, 51)
            for (const answer of h.answers.values()) assert.strictEqual(answer._tag, "Accepted")
            assert.strictEqual((yield* storedFor(h.saleId)).orders.length, 51)
          })
        )
    )

    it.effect("starts commits beside one in flight while full batches wait, up to commitsInFlight", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const h = yield* harness({ maxBatchSize: 10, commitsInFlight: 3 })
          yield* h.committer.stage([h.accepted(h.users[0]!)])
          yield* Queue.take(h.started)
          yield* h.committer.stage(h.users.slice(1, 46).map(h.accepted))
          // Two more full batches start beside the first; the third slot is the last.
          assert.strictEqual(yield* Queue.take(h.started), 10)
          assert.strictEqual(yield* Queue.take(h.started), 10)
          assert.strictEqual(h.most(), 3)
          yield* h.gate.open
          yield* h.committer.end
          yield* h.drained
          assert.strictEqual(h.most(), 3, "never more than three in flight")
          assert.strictEqual(
            h.sizes.reduce((a, b) => a + b, 0),
            46
          )
          for (const size of h.sizes) assert.isAtMost(size, 10)
          assert.strictEqual((yield* storedFor(h.saleId)).orders.length, 46)
        })
      )
    )

    it.effect(
      "releases a batch that failed before it was sent; its audit records go with the next commit",
      () =>
        Effect.scoped(
          Effect.gen(function* () {
            const h = yield* harness({ maxBatchSize: 100, commitsInFlight: 1, faults: ["failBeforeSending"] })
            const [first, second, third] = [h.users[0]!, h.users[1]!, h.users[2]!]
            yield* h.gate.open
            yield* h.committer.stage([h.accepted(first), h.rejected(second)])
            assert.strictEqual((yield* Queue.take(h.reported))._tag, "NotCommitted")
            const failed = h.answers.get(first)
            assert.isTrue(failed?._tag === "PurchaseUnavailable" && failed.reason === "commit_failed")
            yield* h.committer.stage([h.accepted(third)])
            yield* h.committer.end
            yield* h.drained
            assert.deepStrictEqual(tags(h.reports), ["NotCommitted", "Committed", "Drained"])
            assert.strictEqual(h.answers.get(third)?._tag, "Accepted")
            const stored = yield* storedFor(h.saleId)
            assert.deepStrictEqual(stored.orders, [third])
            assert.deepStrictEqual(stored.attempts, [
              `accepted ${third}`,
              `commit_failed ${first}`,
              "sold_out x1"
            ])
          })
        )
    )

    it.effect("flushes the audit records of a failed batch in a commit of their own when it ends", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const h = yield* harness({ maxBatchSize: 100, commitsInFlight: 3, faults: ["failBeforeSending"] })
          yield* h.gate.open
          yield* h.committer.stage([h.accepted(h.users[0]!)])
          yield* h.committer.end
          yield* h.drained
          assert.deepStrictEqual(h.sizes, [1, 0])
          const stored = yield* storedFor(h.saleId)
          assert.deepStrictEqual(stored.orders, [])
          assert.deepStrictEqual(stored.attempts, [`commit_failed ${h.users[0]!}`])
        })
      )
    )

    it.effect("settles a commit whose answer was lost against PostgreSQL: committed, so accepted", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const h = yield* harness({ maxBatchSize: 100, commitsInFlight: 3, faults: ["loseAnswer"] })
          yield* h.gate.open
          yield* h.committer.stage([h.accepted(h.users[0]!)])
          yield* h.committer.end
          yield* h.drained
          assert.strictEqual(h.answers.get(h.users[0]!)?._tag, "Accepted")
          assert.deepStrictEqual(tags(h.reports), ["Committed", "Drained"])
          const stored = yield* storedFor(h.saleId)
          assert.deepStrictEqual(stored.orders, [h.users[0]!])
          assert.deepStrictEqual(stored.attempts, [`accepted ${h.users[0]!}`])
        })
      )
    )

    it.effect("links a batch's commit span to the traced purchases it carried, at most maxCommitLinks", () =>
      Effect.scoped(
        Effect.gen(function* () {
          // Tracing on, no root kept by the ratio: only a commit that carries traced purchases is.
          const kept: Array<Tracing.FiberlessSpan> = []
          const startSpan = Tracing.fiberless(Tracing.sampledBy(0)(Tracer.nativeTracer))!
          const h = yield* harness({
            maxBatchSize: 200,
            commitsInFlight: 1,
            startSpan: (name, options) => {
              const span = startSpan(name, options)
              if (span !== undefined) kept.push(span)
              return span
            }
          })
          yield* h.committer.stage([h.accepted(h.users[0]!)])
          yield* Queue.take(h.started)
          const traceOf = (i: number): Tracing.TraceContext => [
            i.toString(16).padStart(32, "0"),
            i.toString(16).padStart(16, "0")
          ]
          const traced = GroupCommitter.maxCommitLinks + 2
          yield* h.committer.stage(
            h.users
              .slice(1, 151)
              .map((userId, i) => h.traced(userId, i < traced ? traceOf(i + 1) : undefined))
          )
          yield* h.gate.open
          yield* h.committer.end
          yield* h.drained
          assert.deepStrictEqual(h.sizes, [1, 150])
          assert.deepStrictEqual(
            kept.map((k) => k.span.name),
            ["GroupCommitter.commit"],
            "the untraced batch made no span"
          )
          const commit = kept[0]!.span
          assert.isTrue(commit.sampled)
          assert.strictEqual(commit.parent._tag, "None", "a root of its own trace")
          assert.deepStrictEqual(
            commit.links.map((link): Tracing.TraceContext => [link.span.traceId, link.span.spanId]),
            Array.from({ length: GroupCommitter.maxCommitLinks }, (_, i) => traceOf(i + 1))
          )
          assert.strictEqual(commit.attributes.get("batch.orders"), 150)
          assert.strictEqual(commit.attributes.get("batch.traced_orders"), traced)
          assert.strictEqual(commit.attributes.get("commit.outcome"), "committed")
          assert.strictEqual(commit.status._tag, "Ended")
        })
      )
    )

    it.effect("halts on a stale epoch: the batch and every later one are refused as fenced, unsent", () =>
      Effect.scoped(
        Effect.gen(function* () {
          const h = yield* harness({ maxBatchSize: 100, commitsInFlight: 3 })
          yield* (yield* OrderStore).claim(h.saleId) // a newer owner
          yield* h.gate.open
          yield* h.committer.stage([h.accepted(h.users[0]!)])
          yield* Queue.take(h.started)
          yield* h.committer.stage([h.accepted(h.users[1]!)])
          yield* h.committer.end
          yield* h.drained
          assert.deepStrictEqual(tags(h.reports), ["Halted", "NotCommitted", "NotCommitted", "Drained"])
          assert.deepStrictEqual(h.sizes, [1], "nothing was sent after the fence")
          for (const answer of h.answers.values())
            assert.isTrue(answer._tag === "PurchaseUnavailable" && answer.reason === "fenced")
          assert.deepStrictEqual(yield* storedFor(h.saleId), { orders: [], attempts: [] })
        })
      )
    )
  }
)

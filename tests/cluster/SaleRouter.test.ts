import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { SaleRegistry } from "../../src/actors/SaleRegistry.ts"
import { Ownership } from "../../src/cluster/Ownership.ts"
import { SaleRouter } from "../../src/cluster/SaleRouter.ts"
import type { SaleId, UserId } from "../../src/domain/Ids.ts"
import type { RoutedReply } from "../../src/domain/Reply.ts"
import { Audit, checkInvariants, violations } from "../../src/storage/Audit.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { OrderStore } from "../../src/storage/OrderStore.ts"
import { makeSale, makeUsers } from "../support/Fixtures.ts"
import { TestDatabase } from "../support/TestDatabase.ts"
import { sharedRedisUrl } from "./Harness.ts"

const clusterSecret = new TextEncoder().encode("router test secret")

/** Two nodes in one process: each its own registry, ownership and router, one database and Redis. */
const twoNodes = Effect.gen(function* () {
  const storage = yield* Layer.build(
    Layer.mergeAll(Catalog.layer, OrderStore.layer, Audit.layer).pipe(Layer.provideMerge(TestDatabase.layer))
  )
  const prefix = `mincommerce-test-${randomBytes(4).toString("hex")}:`
  const node = (nodeId: string) =>
    Effect.map(
      Layer.build(
        SaleRouter.make({
          forward: { host: "127.0.0.1", port: 0, timeoutMillis: 2_000, sharedSecret: clusterSecret }
        }).pipe(
          Layer.provideMerge(
            SaleRegistry.make({ mailboxCapacity: 10_000, maxBatchSize: 2_000, idleMillis: 60_000 })
          ),
          Layer.provideMerge(
            Ownership.redis({ url: Redacted.make(sharedRedisUrl), prefix, nodeId, leaseTtlMillis: 2_000 })
          ),
          Layer.provide(Layer.succeedContext(storage))
        )
      ),
      (context) => Context.get(context, SaleRouter)
    )
  const a = yield* node("node-a")
  const b = yield* node("node-b")
  return { a, b, storage }
})

/** The primitive as the HTTP fast path calls it, from outside any fiber. */
const offered = (router: SaleRouter["Service"], saleId: SaleId, userId: UserId) =>
  Effect.callback<RoutedReply>((resume) =>
    router.offer(saleId, userId, (answer) => resume(Effect.succeed(answer)))
  )

describe("SaleRouter across two nodes", () => {
  it.live(
    "the first node asked owns the sale; the other forwards, through the Effect form or the callback primitive",
    () =>
      Effect.gen(function* () {
        const { a, b, storage } = yield* twoNodes
        const saleId = yield* makeSale(3).pipe(Effect.provideContext(storage))
        const users = yield* makeUsers(5).pipe(Effect.provideContext(storage))

        // Nobody owns it: node A takes it over on its first purchase.
        assert.strictEqual((yield* a.purchase(saleId, users[0]!))._tag, "Accepted")
        assert.isDefined(a.localActor(saleId))
        assert.isUndefined(b.localActor(saleId))
        // B has no route yet: it looks the owner up, then forwards.
        assert.strictEqual((yield* b.purchase(saleId, users[1]!))._tag, "Accepted")
        // Now the route is known: the primitive forwards without a lookup.
        assert.strictEqual((yield* offered(b, saleId, users[2]!))._tag, "Accepted")
        assert.strictEqual((yield* offered(b, saleId, users[3]!))._tag, "SoldOut")
        const again = yield* b.purchase(saleId, users[0]!)
        assert.strictEqual(again._tag, "AlreadyPurchased")
        // The owner's own sale is decided here.
        assert.strictEqual((yield* offered(a, saleId, users[4]!))._tag, "SoldOut")
        assert.isUndefined(b.localActor(saleId))

        const record = yield* Effect.flatMap(Audit, (audit) => audit.read(saleId)).pipe(
          Effect.provideContext(storage)
        )
        const report = checkInvariants(record, new Map())
        assert.strictEqual(report.committed, 3)
        assert.strictEqual(violations(report), 0)
      }).pipe(Effect.scoped)
  )
})

import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Exit, Layer, Logger, Option, References } from "effect"
import { randomUUID } from "node:crypto"
import { SaleRegistry } from "./actors/SaleRegistry.ts"
import { Ownership } from "./cluster/Ownership.ts"
import { SaleRouter } from "./cluster/SaleRouter.ts"
import { DemoAdmin, DemoSale } from "./Demo.ts"
import { sharedSecret } from "./Secret.ts"
import { recordCommit } from "./http/Metrics.ts"
import { Identity } from "./http/Identity.ts"
import { HttpServerLive } from "./http/Server.ts"
import * as Settings from "./Settings.ts"
import * as Tracing from "./Tracing.ts"
import { Catalog } from "./storage/Catalog.ts"
import { Database } from "./storage/Database.ts"
import { OrderQueries } from "./storage/OrderQueries.ts"
import { OrderStore } from "./storage/OrderStore.ts"

// The whole wiring of a node, read top to bottom: storage, the sale actors on it, HTTP on top.
const Storage = Layer.mergeAll(OrderStore.layer, OrderQueries.layer, Catalog.layer).pipe(
  Layer.provideMerge(Database.fromEnv)
)

const Actors = Layer.unwrap(
  Effect.gen(function* () {
    const settings = yield* Settings.actorSettings
    return SaleRegistry.make({
      ...settings,
      idleMillis: settings.idleSeconds * 1_000,
      onCommit: recordCommit
    })
  })
)

// Without REDIS_URL this node owns every sale; with it, sales are leased in Redis and
// purchases for a sale owned elsewhere are forwarded to the owner over the forward link,
// which waits for an answer at most one lease TTL.
const Cluster = Layer.unwrap(
  Effect.gen(function* () {
    const settings = yield* Settings.clusterSettings
    const nodeId = Option.getOrElse(settings.nodeId, () => randomUUID().slice(0, 8))
    if (Option.isNone(settings.redisUrl))
      return SaleRouter.make().pipe(Layer.provideMerge(Ownership.local(nodeId)))
    yield* Effect.logInfo("cluster node", { nodeId, leaseTtlMillis: settings.leaseTtlMillis })
    const forward = {
      host: settings.forwardHost,
      port: settings.forwardPort,
      timeoutMillis: settings.leaseTtlMillis,
      sharedSecret: yield* sharedSecret
    }
    const ownership = Ownership.redis({
      url: settings.redisUrl.value,
      prefix: settings.redisPrefix,
      nodeId,
      leaseTtlMillis: settings.leaseTtlMillis
    })
    return SaleRouter.make({ forward }).pipe(Layer.provideMerge(ownership))
  })
)

// SIGTERM or SIGINT hands every owned sale over at once (drained, leases given back), before
// the HTTP server closes and waits for its connections: another node takes over meanwhile.
const HandoffOnSignal = Layer.effectDiscard(
  Effect.gen(function* () {
    const router = yield* SaleRouter
    const runFork = Effect.runForkWith(yield* Effect.context<never>())
    const onSignal = () => void runFork(router.handoff)
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        process.once("SIGTERM", onSignal)
        process.once("SIGINT", onSignal)
      }),
      () =>
        Effect.sync(() => {
          process.off("SIGTERM", onSignal)
          process.off("SIGINT", onSignal)
        })
    )
  })
)

const Node = Layer.merge(HttpServerLive, HandoffOnSignal).pipe(
  Layer.provideMerge(Cluster),
  Layer.provideMerge(Layer.mergeAll(Actors, DemoSale, DemoAdmin)),
  Layer.provideMerge(Identity),
  Layer.provideMerge(Storage)
)

// Structured JSON lines by default (with the trace id when tracing is on); LOG_FORMAT=pretty
// for reading by eye. Traces go out only with OTEL_EXPORTER_OTLP_ENDPOINT.
const Observability = Layer.unwrap(
  Effect.gen(function* () {
    const { level, format } = yield* Settings.logSettings
    return Layer.mergeAll(
      Logger.layer([format === "json" ? Tracing.consoleJson : Logger.consolePretty()]),
      Layer.succeed(References.MinimumLogLevel, level),
      Tracing.layer
    )
  })
)

// Settings are checked before anything starts: a bad one stops the node with one clear message.
let refused = false
const program = Settings.check.pipe(
  Effect.andThen(Layer.launch(Node.pipe(Layer.provide(Observability)))),
  Effect.catchTag("InvalidSettings", (error) =>
    Effect.sync(() => {
      refused = true
      console.error(`MinCommerce cannot start: ${error.message}`)
    })
  )
)

// runMain interrupts on SIGINT/SIGTERM; closing the layers drains every actor and flushes
// every staged batch before the database connection goes. A shutdown asked for by a signal
// that drained cleanly exits 0.
NodeRuntime.runMain(program, {
  teardown: (exit, onExit) =>
    onExit(!refused && (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) ? 0 : 1)
})

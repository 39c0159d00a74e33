import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { SaleRegistry } from "./actors/SaleRegistry.ts"
import { DemoSale } from "./Demo.ts"
import { HttpServerLive } from "./http/Server.ts"
import * as Settings from "./Settings.ts"
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
    return SaleRegistry.make({ ...settings, idleMillis: settings.idleSeconds * 1_000 })
  })
)

const Node = HttpServerLive.pipe(
  Layer.provideMerge(Layer.mergeAll(Actors, DemoSale)),
  Layer.provideMerge(Storage)
)

// runMain interrupts on SIGINT/SIGTERM; closing the layers drains every actor and flushes
// every staged batch before the database connection goes.
NodeRuntime.runMain(Layer.launch(Node))

import { ByteSize, Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import { SaleRegistry } from "../../src/actors/SaleRegistry.ts"
import { Ownership } from "../../src/cluster/Ownership.ts"
import { SaleRouter } from "../../src/cluster/SaleRouter.ts"
import { Limits } from "../../src/http/Limits.ts"
import { recordCommit } from "../../src/http/Metrics.ts"
import * as NodeServer from "../../src/http/NodeServer.ts"
import { PurchaseEndpoint } from "../../src/http/PurchaseEndpoint.ts"
import { serveApi } from "../../src/http/Server.ts"
import { Tokens } from "../../src/http/Tokens.ts"
import { Audit } from "../../src/storage/Audit.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { OrderQueries } from "../../src/storage/OrderQueries.ts"
import { OrderStore } from "../../src/storage/OrderStore.ts"
import { TestDatabase } from "./TestDatabase.ts"

/**
 * One whole node on loopback over a fresh database, as the HTTP tests drive it: the HttpApi
 * behind the node:http purchase fast path, local ownership, a real sale registry.
 */

export const secret = new TextEncoder().encode("a test secret, long enough for HS256 use")
/** The one admin email of the node. */
export const admin = "admin@example.test"
/** Browsers from this origin may call the node; such requests always take the HttpApi route. */
export const corsOrigin = "https://shop.example"
/** Purchases a user may make per window (10 seconds). */
export const purchasesPerUser = 5

// How many purchases the node:http fast path served (the rest went through the HttpApi).
export const fastServed = { count: 0 }

const Served = Layer.unwrap(
  Effect.map(PurchaseEndpoint, (endpoint) => {
    const counted: NodeServer.RawRoute = (request, response) => {
      const served = endpoint.route(request, response)
      if (served) fastServed.count++
      return served
    }
    return serveApi({ maxBodyBytes: ByteSize.kibibytes(16), corsOrigins: [corsOrigin] }).pipe(
      Layer.provideMerge(NodeServer.layer({ route: counted, listen: { port: 0, host: "127.0.0.1" } }))
    )
  })
)

export const ApiNode = Served.pipe(
  Layer.provide(PurchaseEndpoint.layerWith({ maxBodyBytes: 16 * 1024, corsEnabled: true })),
  Layer.provide(Layer.succeed(Tokens, Tokens.make({ secret, admins: new Set([admin]), ttlSeconds: 600 }))),
  // Per user only: every test buyer shares one loopback address.
  Layer.provide(Limits.make({ perUser: purchasesPerUser, perAddress: 0, window: "10 seconds" })),
  Layer.provideMerge(SaleRouter.make().pipe(Layer.provide(Ownership.local("api-test")))),
  Layer.provideMerge(
    SaleRegistry.make({
      mailboxCapacity: 10_000,
      maxBatchSize: 2_000,
      idleMillis: 60_000,
      onCommit: recordCommit
    })
  ),
  Layer.provideMerge(Layer.mergeAll(Catalog.layer, OrderStore.layer, OrderQueries.layer, Audit.layer)),
  Layer.provideMerge(TestDatabase.layer)
)

/** Where the node listens, e.g. `http://127.0.0.1:41234`. */
export const baseUrl = Effect.map(HttpServer.HttpServer, (server) =>
  server.address._tag === "InetAddressV4" || server.address._tag === "InetAddressV6"
    ? `http://127.0.0.1:${server.address.port}`
    : ""
)

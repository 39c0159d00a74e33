import { ByteSize, Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import { SaleRegistry } from "../../src/actors/SaleRegistry.ts"
import { Ownership } from "../../src/cluster/Ownership.ts"
import { SaleRouter } from "../../src/cluster/SaleRouter.ts"
import { Limits } from "../../src/http/Limits.ts"
import { recordCommit } from "../../src/http/Metrics.ts"
import * as NodeServer from "../../src/http/NodeServer.ts"
import { ProofOfWork } from "../../src/http/ProofOfWork.ts"
import { PurchaseEndpoint } from "../../src/http/PurchaseEndpoint.ts"
import { SaleRules } from "../../src/http/SaleRules.ts"
import { serveApi } from "../../src/http/Server.ts"
import { AdminRole } from "../../src/http/AdminRole.ts"
import { AuthLimits } from "../../src/http/AuthLimits.ts"
import { IdentityProvider, type ProviderOptions } from "../../src/http/IdentityProvider.ts"
import { Passwords } from "../../src/http/Passwords.ts"
import { Tokens } from "../../src/http/Tokens.ts"
import { Accounts } from "../../src/storage/Accounts.ts"
import { Audit } from "../../src/storage/Audit.ts"
import { Catalog } from "../../src/storage/Catalog.ts"
import { OrderQueries } from "../../src/storage/OrderQueries.ts"
import { OrderStore } from "../../src/storage/OrderStore.ts"
import { Users } from "../../src/storage/Users.ts"
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

/** Sign-in limits of the test node: every test buyer shares one loopback address. */
export const testAuthLimits = {
  perAddress: 0,
  perAccount: 20,
  signUpsPerAddress: 0,
  failuresPerAccount: 5,
  window: "1 minute"
} as const

/**
 * Identity as a node has it (accounts, Argon2id passwords, tokens, sign-in limits, the admin
 * role), with the shop's identity provider when `provider` is given.
 */
export const testIdentity = (
  options: {
    readonly provider?: ProviderOptions
    readonly authLimits?: Parameters<typeof AuthLimits.make>[0]
  } = {}
) =>
  Layer.mergeAll(
    Layer.succeed(AuthLimits, AuthLimits.make(options.authLimits ?? testAuthLimits)),
    AdminRole.layer,
    options.provider === undefined ? IdentityProvider.none : IdentityProvider.make(options.provider)
  ).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        Accounts.layer,
        Passwords.layer,
        Layer.succeed(Tokens, Tokens.make({ secret, ttlSeconds: 600 }))
      )
    )
  )

/** A node as `ApiNode`, with its identity services chosen by the test. */
export const apiNodeWith = (identity: ReturnType<typeof testIdentity>) =>
  Served.pipe(
    Layer.provide(PurchaseEndpoint.layerWith({ maxBodyBytes: 16 * 1024, corsEnabled: true })),
    Layer.provideMerge(Layer.merge(SaleRules.layer, Layer.succeed(ProofOfWork, ProofOfWork.make(secret)))),
    Layer.provideMerge(identity),
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

export const ApiNode = apiNodeWith(testIdentity())

/** Where the node listens, e.g. `http://127.0.0.1:41234`. */
export const baseUrl = Effect.map(HttpServer.HttpServer, (server) =>
  server.address._tag === "InetAddressV4" || server.address._tag === "InetAddressV6"
    ? `http://127.0.0.1:${server.address.port}`
    : ""
)

/** The password of every test account (the policy wants 10 characters at least). */
export const testPassword = "correct horse battery staple"

/** Makes an existing account an admin, as `npm run admin -- grant` does. */
export const grantAdmin = (email: string) =>
  Effect.flatMap(Accounts, (accounts) => accounts.setAdmin(email, true)).pipe(Effect.orDie)

/**
 * Signed-in buyers by the thousand, without an Argon2id hash each: accounts made in one
 * statement and tokens issued by the node's Tokens, as sign-in would issue them.
 */
export const signedInBuyers = (emails: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const users = yield* Users
    const tokens = yield* Tokens
    const ids = yield* users.byEmails(emails).pipe(Effect.orDie)
    return yield* Effect.forEach(ids, (userId, i) =>
      Effect.map(tokens.issue(userId, emails[i]!), ({ token }) => ({ token, userId, admin: false }))
    )
  })

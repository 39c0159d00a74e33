import { Effect, Layer } from "effect"
import { randomBytes } from "node:crypto"
import { Passwords } from "./http/Passwords.ts"
import { Accounts } from "./storage/Accounts.ts"
import { Database } from "./storage/Database.ts"
import { Products } from "./storage/Products.ts"
import { Sales } from "./storage/Sales.ts"

/** How long the embedded demo's sale holds a unit for its buyer to pay. */
export const demoHoldSeconds = 300

/**
 * A fresh node has something to sell: when no sale is upcoming or running, a demo product
 * goes on sale shortly after start. In the embedded demo, a purchase is held for payment at
 * the development provider that runs in the node's process, so checkout can be tried end to end.
 */
export const DemoSale = Layer.effectDiscard(
  Effect.gen(function* () {
    const products = yield* Products
    const sales = yield* Sales
    const database = yield* Database
    if ((yield* sales.current) !== undefined) return
    const productId = yield* products.create(
      "MinCommerce demo sneaker",
      "A limited run, to try a flash sale end to end."
    )
    const startsAt = Date.now() + 30_000
    const saleId = yield* sales
      .create({
        productId,
        priceCents: 9_900,
        stock: 1_000,
        startsAt,
        endsAt: startsAt + 3_600_000,
        holdSeconds: database.mode === "embedded" ? demoHoldSeconds : 0
      })
      .pipe(
        // The product was created just above.
        Effect.catchTag("ProductNotFound", Effect.die)
      )
    yield* Effect.logInfo("demo sale created", {
      saleId,
      startsAt: new Date(startsAt).toISOString(),
      stock: 1_000
    })
  })
)

/** The embedded demo's admin account. */
export const demoAdminEmail = "admin@mincommerce.local"

/**
 * The embedded demo (`npm start` with no DATABASE_URL) has one admin: made on the first
 * start with a random password, which is printed that once and stored only as its hash.
 * A node on a configured database makes nobody an admin: that is `npm run admin -- grant`.
 */
export const DemoAdmin = Layer.effectDiscard(
  Effect.gen(function* () {
    const database = yield* Database
    if (database.mode !== "embedded") return
    const accounts = yield* Accounts
    if ((yield* accounts.byEmail(demoAdminEmail)) !== undefined) return
    const password = randomBytes(12).toString("base64url")
    // 16 random characters meet the password policy.
    const hash = yield* (yield* Passwords).hash(password).pipe(Effect.catchTag("PasswordRefused", Effect.die))
    yield* accounts.create(demoAdminEmail, hash).pipe(
      Effect.andThen(accounts.setAdmin(demoAdminEmail, true)),
      // Another start made it meanwhile: its password is the one printed.
      Effect.catchTags({ EmailTaken: () => Effect.void, AccountNotFound: Effect.die })
    )
    console.log(
      [
        "",
        "  The demo's admin account was created (this is shown once, on the first start):",
        `    email:    ${demoAdminEmail}`,
        `    password: ${password}`,
        "  Sign in at /admin. Lost it? Delete the data folder to start afresh.",
        ""
      ].join("\n")
    )
  })
)

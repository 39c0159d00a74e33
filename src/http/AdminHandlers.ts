import { Effect } from "effect"
import { HttpApiBuilder } from "effect/http-api"
import { SaleRegistry } from "../actors/SaleRegistry.ts"
import { SaleWatch } from "../cluster/SaleWatch.ts"
import type { Allocation } from "../domain/Allocation.ts"
import { newSeed } from "../domain/Draw.ts"
import type { SaleId } from "../domain/Ids.ts"
import { Checkout } from "../storage/Checkout.ts"
import { Products } from "../storage/Products.ts"
import { Sales, type NewSale, type SaleChanges } from "../storage/Sales.ts"
import { SaleStats } from "../storage/SaleStats.ts"
import { Api, CurrentUser } from "./Api.ts"
import {
  InvalidRequest,
  invalidRequest,
  NotAdmin,
  productNotFound,
  SaleCancelled,
  saleNotFound,
  SaleStarted,
  StockBelowSold
} from "./ApiErrors.ts"
import { AdminRole } from "./AdminRole.ts"
import { presentSale } from "./SaleView.ts"

const notAdmin = new NotAdmin({ error: { code: "forbidden", message: "Admins only" } })

/** An ISO instant as epoch milliseconds, or a 400 naming the field. */
const instant = (field: string, value: string) => {
  const millis = Date.parse(value)
  return Number.isFinite(millis)
    ? Effect.succeed(millis)
    : Effect.fail(
        invalidRequest(`Invalid payload: ${field} is not an ISO-8601 instant`, {
          in: "payload",
          path: [field]
        })
      )
}

const optionalInstant = (field: string, value: string | undefined) =>
  value === undefined ? Effect.succeed(undefined) : instant(field, value)

const badWindow = invalidRequest("Invalid payload: endsAt must be after startsAt", {
  in: "payload",
  path: ["endsAt"]
})

const windowPastEnd = invalidRequest(
  "Invalid payload: the entry window must close by the sale's end (startsAt + entryWindowSeconds <= endsAt)",
  { in: "payload", path: ["entryWindowSeconds"] }
)

const windowWithoutDraw = invalidRequest(
  'Invalid payload: entryWindowSeconds is only for allocation "draw"',
  {
    in: "payload",
    path: ["entryWindowSeconds"]
  }
)

const drawWithoutWindow = invalidRequest('Invalid payload: allocation "draw" needs entryWindowSeconds', {
  in: "payload",
  path: ["entryWindowSeconds"]
})

// A hold is paid for: a free unit has nothing to collect.
const holdNeedsPrice = new InvalidRequest({
  error: {
    code: "hold_needs_price",
    message: "Invalid payload: a sale that holds units for payment (holdSeconds > 0) needs priceCents > 0",
    details: { in: "payload", path: ["holdSeconds"] }
  }
})

interface AllocationPayload {
  readonly allocation?: "first_come" | "draw" | undefined
  readonly entryWindowSeconds?: number | undefined
}

/**
 * The draw a new sale gets, if any: its window checked against the schedule, and a fresh
 * secret seed made here (only its commitment is shown until the draw).
 */
const newDraw = (payload: AllocationPayload, startsAt: number, endsAt: number) => {
  if (payload.allocation !== "draw")
    return payload.entryWindowSeconds === undefined
      ? Effect.succeed(undefined)
      : Effect.fail(windowWithoutDraw)
  if (payload.entryWindowSeconds === undefined) return Effect.fail(drawWithoutWindow)
  const entryWindowMillis = payload.entryWindowSeconds * 1_000
  if (startsAt + entryWindowMillis > endsAt) return Effect.fail(windowPastEnd)
  return Effect.succeed({ entryWindowMillis, seed: newSeed() })
}

/** A schedule change must keep a draw's window inside the sale. */
const keepsWindow = (allocation: Allocation, startsAt: number, endsAt: number) =>
  allocation.mode === "first_come" || startsAt + allocation.entryWindowMillis <= endsAt

// What the store says about a refused change, as the API tells it.
const saleNotChanged = {
  SaleNotFound: (error: { readonly saleId: string }) => Effect.fail(saleNotFound(error.saleId)),
  SaleCancelled: () =>
    Effect.fail(
      new SaleCancelled({ error: { code: "sale_cancelled", message: "A cancelled sale cannot be changed" } })
    ),
  SaleStarted: () =>
    Effect.fail(
      new SaleStarted({
        error: { code: "sale_started", message: "Only a sale that has not started can be changed" }
      })
    ),
  StockBelowSold: (error: { readonly stock: number }) =>
    Effect.fail(
      new StockBelowSold({
        error: {
          code: "stock_below_sold",
          message: "The stock cannot go below the units already taken",
          details: { stock: error.stock }
        }
      })
    )
} as const

interface Stores {
  readonly products: Products["Service"]
  readonly sales: Sales["Service"]
  readonly stats: SaleStats["Service"]
  readonly registry: SaleRegistry["Service"]
  readonly checkout: Checkout["Service"]
}

type SalePayload = Omit<SaleChanges, "startsAt" | "endsAt"> & {
  readonly startsAt?: string | undefined
  readonly endsAt?: string | undefined
}

const saleView = (stores: Stores, saleId: SaleId) =>
  Effect.gen(function* () {
    const row = yield* stores.sales.find(saleId).pipe(Effect.orDie)
    if (row === undefined) return yield* saleNotFound(saleId)
    return presentSale(stores.registry, row)
  })

const createSale = (
  stores: Stores,
  payload: Omit<NewSale, "startsAt" | "endsAt" | "draw"> & {
    readonly startsAt: string
    readonly endsAt: string
  } & AllocationPayload
) =>
  Effect.gen(function* () {
    const startsAt = yield* instant("startsAt", payload.startsAt)
    const endsAt = yield* instant("endsAt", payload.endsAt)
    if (endsAt <= startsAt) return yield* badWindow
    const draw = yield* newDraw(payload, startsAt, endsAt)
    const { productId, priceCents, stock, powDifficulty, olderAccountsOnly } = payload
    const { holdSeconds, repurchaseAfterLapse } = payload
    if ((holdSeconds ?? 0) > 0 && priceCents === 0) return yield* holdNeedsPrice
    const saleId = yield* stores.sales
      .create({
        productId,
        priceCents,
        stock,
        startsAt,
        endsAt,
        draw,
        powDifficulty,
        olderAccountsOnly,
        holdSeconds,
        repurchaseAfterLapse
      })
      .pipe(
        Effect.catchTag("ProductNotFound", () => Effect.fail(productNotFound())),
        Effect.catchTag("SqlError", Effect.die)
      )
    // Created in this request's transaction: finding it gone is a defect.
    return yield* saleView(stores, saleId).pipe(Effect.catchTag("SaleNotFound", Effect.die))
  })

const updateSale = (stores: Stores, saleId: SaleId, payload: SalePayload) =>
  Effect.gen(function* () {
    const startsAt = yield* optionalInstant("startsAt", payload.startsAt)
    const endsAt = yield* optionalInstant("endsAt", payload.endsAt)
    const current = yield* stores.sales.find(saleId).pipe(Effect.orDie)
    if (current === undefined) return yield* saleNotFound(saleId)
    if ((endsAt ?? current.endsAt) <= (startsAt ?? current.startsAt)) return yield* badWindow
    if (!keepsWindow(current.allocation, startsAt ?? current.startsAt, endsAt ?? current.endsAt))
      return yield* windowPastEnd
    if (current.holdSeconds > 0 && payload.priceCents === 0) return yield* holdNeedsPrice
    // An actor of this node holds the old schedule and stock: it drains and flushes its
    // audit records first. The update then fences any owner elsewhere (Sales.update).
    yield* stores.registry.stop(saleId)
    yield* stores.sales
      .update(saleId, { priceCents: payload.priceCents, stock: payload.stock, startsAt, endsAt })
      .pipe(Effect.catchTags(saleNotChanged), Effect.catchTag("SqlError", Effect.die))
    return yield* saleView(stores, saleId)
  })

const cancelSale = (stores: Stores, saleId: SaleId) =>
  Effect.gen(function* () {
    const row = yield* stores.sales.find(saleId).pipe(Effect.orDie)
    if (row === undefined) return yield* saleNotFound(saleId)
    // Refused here at once, and what this node's actor decided is flushed; the cancel then
    // fences any owner elsewhere, whose next commit fails and whose successor reloads.
    const running = stores.registry.running(saleId)
    if (running !== undefined) {
      yield* running.cancel
      yield* stores.registry.stop(saleId)
    }
    yield* stores.sales.cancel(saleId).pipe(Effect.orDie)
    return yield* saleView(stores, saleId)
  })

const saleStats = (stores: Stores, saleId: SaleId) =>
  Effect.gen(function* () {
    const sale = yield* saleView(stores, saleId)
    const figures = yield* stores.stats.of(saleId).pipe(Effect.orDie)
    const orders = yield* stores.checkout.counts(saleId).pipe(Effect.orDie)
    const ended = orders.paid + orders.expired + orders.cancelled + orders.refunded
    return {
      saleId: sale.saleId,
      status: sale.status,
      total: sale.total,
      remaining: sale.remaining,
      attempts: figures.attempts,
      byOutcome: figures.byOutcome,
      committed: figures.committed,
      soldOutAt: figures.soldOutAt === null ? null : new Date(figures.soldOutAt).toISOString(),
      recentPurchasesPerSecond: figures.recentPerSecond,
      commitLatencyMillis: figures.commitMillis,
      orders,
      paidConversion: ended === 0 ? null : orders.paid / ended
    }
  })

export const AdminHandlers = HttpApiBuilder.group(Api, "admin", (handlers) =>
  Effect.gen(function* () {
    const role = yield* AdminRole
    // On every admin request: the role as the database (or the provider's claim) says now.
    const requireAdmin = Effect.flatMap(CurrentUser, (user) =>
      Effect.flatMap(role.isAdmin(user), (admin) => (admin ? Effect.void : Effect.fail(notAdmin)))
    )
    // Every node's catalog and views hear of a change, so lists and status show it at once.
    const watch = yield* SaleWatch
    const announced = <A extends { readonly saleId: SaleId }, E, R>(change: Effect.Effect<A, E, R>) =>
      Effect.tap(change, (sale) => watch.catalogChanged(sale.saleId))
    const stores: Stores = {
      products: yield* Products,
      sales: yield* Sales,
      stats: yield* SaleStats,
      registry: yield* SaleRegistry,
      checkout: yield* Checkout
    }
    return handlers
      .handle("createProduct", ({ payload }) =>
        Effect.andThen(requireAdmin, stores.products.create(payload.name, payload.description ?? "")).pipe(
          Effect.map((productId) => ({ productId })),
          Effect.catchTag("SqlError", Effect.die)
        )
      )
      .handle("updateProduct", ({ params, payload }) =>
        Effect.andThen(requireAdmin, stores.products.update(params.productId, payload)).pipe(
          Effect.andThen(watch.catalogChanged()),
          Effect.as({ productId: params.productId }),
          Effect.catchTag("ProductNotFound", () => Effect.fail(productNotFound())),
          Effect.catchTag("SqlError", Effect.die)
        )
      )
      .handle("createSale", ({ payload }) =>
        Effect.andThen(requireAdmin, announced(createSale(stores, payload)))
      )
      .handle("updateSale", ({ params, payload }) =>
        Effect.andThen(requireAdmin, announced(updateSale(stores, params.saleId, payload)))
      )
      .handle("cancelSale", ({ params }) =>
        Effect.andThen(requireAdmin, announced(cancelSale(stores, params.saleId)))
      )
      .handle("saleStats", ({ params }) => Effect.andThen(requireAdmin, saleStats(stores, params.saleId)))
  })
)

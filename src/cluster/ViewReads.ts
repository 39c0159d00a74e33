// The reads of the views, and their fallback: a view this node has no fresh copy of is read
// from PostgreSQL (`Sales`), once at a time, and the last one known is served while
// PostgreSQL is away.
import { Deferred, Effect, Option } from "effect"
import { SaleNotFound } from "../domain/Errors.ts"
import type { SaleId } from "../domain/Ids.ts"
import type { Sales } from "../storage/Sales.ts"
import {
  fresh,
  fromRow,
  listingOf,
  rowMillis,
  viewOf,
  type SaleListing,
  type SaleViews,
  type View
} from "./SaleViews.ts"
import type { PushedFigures } from "./ViewWire.ts"

type SalesStore = Sales["Service"]

/** How long the current sale's choice is kept (see `SaleViews.chosen`). */
const currentMillis = 250

// One read per sale at a time, shared by every reader that finds the view stale meanwhile.
const load = (state: SaleViews, sales: SalesStore, saleId: SaleId, view: View): Effect.Effect<void> => {
  if (view.loading !== undefined) return Deferred.await(view.loading)
  const done = Deferred.makeUnsafe<void>()
  view.loading = done
  return sales.find(saleId).pipe(
    Effect.tap((row) =>
      Effect.sync(() => {
        if (row !== undefined) {
          fromRow(state, row, Date.now())
          // A sale the catalog does not know yet was created meanwhile: the list is read again.
          if (state.catalog !== undefined && !state.catalog.rows.includes(saleId)) state.catalog.valid = false
        } else if (view.figures === undefined) state.views.delete(saleId)
      })
    ),
    // PostgreSQL away: the last view known is served rather than nothing.
    Effect.catchTag("SqlError", (error) =>
      view.figures === undefined
        ? Effect.die(error)
        : Effect.logWarning("sale view not refreshed", { saleId })
    ),
    Effect.ensuring(Effect.suspend(() => ((view.loading = undefined), Deferred.succeed(done, undefined))))
  )
}

/** The sale's latest figures; PostgreSQL is read only when this node has no fresh view. */
export const figuresOf = (
  state: SaleViews,
  sales: SalesStore,
  saleId: SaleId
): Effect.Effect<PushedFigures, SaleNotFound> =>
  Effect.suspend(() => {
    const view = viewOf(state, saleId)
    // An actor just started here is followed now, not at the next look for new owners.
    if (view.source === "row") state.followActor(saleId)
    if (view.figures !== undefined && fresh(view, Date.now())) return Effect.succeed(view.figures)
    return Effect.flatMap(load(state, sales, saleId, view), () =>
      view.figures === undefined ? Effect.fail(new SaleNotFound({ saleId })) : Effect.succeed(view.figures)
    )
  })

export const saleOf = (state: SaleViews, sales: SalesStore, saleId: SaleId) =>
  Effect.map(figuresOf(state, sales, saleId), (f) =>
    listingOf(state.views.get(saleId) ?? viewOf(state, saleId), f)
  )

const loadCatalog = (state: SaleViews, sales: SalesStore): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (state.catalogLoading !== undefined) return Deferred.await(state.catalogLoading)
    const done = Deferred.makeUnsafe<void>()
    state.catalogLoading = done
    return sales.list.pipe(
      Effect.tap((rows) =>
        Effect.sync(() => {
          const now = Date.now()
          for (const row of rows) fromRow(state, row, now)
          state.catalog = { rows: rows.map((row) => row.saleId), at: now, valid: true }
        })
      ),
      Effect.catchTag("SqlError", (error) =>
        state.catalog === undefined ? Effect.die(error) : Effect.logWarning("sale catalog not refreshed")
      ),
      Effect.ensuring(
        Effect.suspend(() => ((state.catalogLoading = undefined), Deferred.succeed(done, undefined)))
      )
    )
  })

const catalogRows = (state: SaleViews, sales: SalesStore): Effect.Effect<ReadonlyArray<SaleId>> => {
  const reload = Effect.map(loadCatalog(state, sales), () => state.catalog?.rows ?? [])
  return Effect.suspend(() => {
    const catalog = state.catalog
    if (catalog !== undefined && catalog.valid && Date.now() - catalog.at < rowMillis)
      return Effect.succeed(catalog.rows)
    return reload
  })
}

// Each listed sale's figures as this node knows them; those gone stale are read again first.
const listings = (state: SaleViews, sales: SalesStore, ids: ReadonlyArray<SaleId>) =>
  Effect.suspend(() => {
    const now = Date.now()
    const stale = ids.filter((saleId) => {
      const view = state.views.get(saleId)
      return view === undefined || !fresh(view, now)
    })
    const reload = Effect.forEach(stale, (saleId) => Effect.ignore(figuresOf(state, sales, saleId)), {
      concurrency: 8,
      discard: true
    })
    return Effect.map(reload, () =>
      ids.flatMap((saleId) => {
        const view = state.views.get(saleId)
        return view?.figures === undefined ? [] : [listingOf(view, view.figures)]
      })
    )
  })

/** Every sale in the catalog kept in memory, with its figures. Built once per layer. */
export const listOf = (state: SaleViews, sales: SalesStore): Effect.Effect<ReadonlyArray<SaleListing>> =>
  Effect.flatMap(catalogRows(state, sales), (ids) => listings(state, sales, ids))

// The seed's rule: not cancelled, not over; running ones first, then the soonest to start.
const pickCurrent = (all: ReadonlyArray<SaleListing>, now: number) => {
  let best: SaleListing | undefined
  for (const listing of all) {
    const f = listing.figures
    if (f.cancelled || f.endsAt <= now) continue
    if (best === undefined) {
      best = listing
      continue
    }
    const running = f.startsAt <= now
    const bestRunning = best.figures.startsAt <= now
    if ((running && !bestRunning) || (running === bestRunning && f.startsAt < best.figures.startsAt))
      best = listing
  }
  return best
}

/** The sale running now, else the next to start, over `list`. Built once per layer. */
export const currentOf = (
  state: SaleViews,
  sales: SalesStore,
  list: Effect.Effect<ReadonlyArray<SaleListing>>
): Effect.Effect<SaleListing | undefined> =>
  Effect.suspend(() => {
    const now = Date.now()
    const memo = state.chosen
    if (memo !== undefined && now < memo.until && state.catalog?.valid === true) {
      if (memo.saleId === undefined) return Effect.succeed(undefined)
      return Effect.map(Effect.option(saleOf(state, sales, memo.saleId)), Option.getOrUndefined)
    }
    return Effect.map(list, (all) => {
      const best = pickCurrent(all, now)
      state.chosen = { saleId: best?.figures.saleId, until: now + currentMillis }
      return best
    })
  })

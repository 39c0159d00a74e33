import type { Deferred } from "effect"
import { firstCome, type Allocation } from "../domain/Allocation.ts"
import type { SaleId } from "../domain/Ids.ts"
import { noRules, type PurchaseRules } from "../domain/PurchaseRules.ts"
import { rulesOf, type SaleRow } from "../storage/Sales.ts"
import type { PushedFigures } from "./ViewWire.ts"

/**
 * How fresh a view is kept (the staleness bound):
 * - the owner pushes each change of its actor's figures on the next turn of its event loop,
 *   and every owned sale's latest figures again every `republishMillis`, so a push lost to a
 *   Redis hiccup is repaired within that;
 * - a view fed by an owner that has been silent for `ownerSilenceMillis` is read again from
 *   PostgreSQL before it is served (the owner is gone or cut off);
 * - a view read from PostgreSQL (no owner runs the sale: nothing but an admin or a new owner
 *   can change it, and both announce themselves) is read again after `rowMillis` at most.
 * After a reconnection of the subscription every view and the catalog count as stale.
 */
export const republishMillis = 1_000
export const ownerSilenceMillis = 3_000
export const rowMillis = 60_000
/** Views kept; the least recently loaded ones without watchers go first. */
const maxViews = 10_000

/** A sale as the API lists it: the catalog's fields and the latest figures. */
export interface SaleListing {
  readonly productName: string
  readonly priceCents: number
  readonly rules: PurchaseRules
  readonly allocation: Allocation
  readonly holdSeconds: number
  readonly figures: PushedFigures
}

export interface View {
  figures: PushedFigures | undefined
  productName: string
  priceCents: number
  /** Fixed at the sale's creation: read with the row, never pushed. */
  rules: PurchaseRules
  /** As the row last said: a draw's seed appears in it once the draw is done. */
  allocation: Allocation
  /** Seconds a purchase is held for payment; 0: final. Fixed at creation, like the rules. */
  holdSeconds: number
  /**
   * Whether the sale's row was read: its catalog fields (name, price, rules, allocation) come
   * only from it, so a view the owner's push reached first is not served before.
   */
  rowRead: boolean
  /** "owner": pushed (or this node's actor); "row": read from PostgreSQL. */
  source: "owner" | "row"
  heardAt: number
  /**
   * Owners up to this epoch were fenced by an admin change (it mints a new epoch in
   * PostgreSQL): what they still push is ignored, and the stock row replaces their figures.
   */
  fencedUpTo: number
  loading: Deferred.Deferred<void> | undefined
  readonly listeners: Set<(figures: PushedFigures) => void>
}

/** The listed sales (the newest 500 by start), when they were read, and whether a change made them stale. */
export interface CatalogIds {
  readonly rows: ReadonlyArray<SaleId>
  readonly at: number
  valid: boolean
}

/**
 * What this node knows of the sales it was asked about: the views, the catalog and the
 * current sale's choice. Changed only on the event loop, by the functions of this module and
 * of ViewReads.ts (the PostgreSQL fallback), with no suspension between a read and its write.
 */
export interface SaleViews {
  readonly views: Map<SaleId, View>
  catalog: CatalogIds | undefined
  catalogLoading: Deferred.Deferred<void> | undefined
  /**
   * Which sale is current changes only with the clock, a cancel or the catalog: the choice
   * is kept for a short while, so a status read costs one map lookup, not a scan.
   */
  chosen: { readonly saleId: SaleId | undefined; readonly until: number } | undefined
  /** Follows the sale's actor when it runs on this node and is not followed yet. */
  readonly followActor: (saleId: SaleId) => void
}

export const makeSaleViews = (followActor: (saleId: SaleId) => void): SaleViews => ({
  views: new Map(),
  catalog: undefined,
  catalogLoading: undefined,
  chosen: undefined,
  followActor
})

/** (epoch, version) order: true when `a` is newer than `b`. */
const newer = (a: PushedFigures, b: PushedFigures) =>
  a.epoch > b.epoch || (a.epoch === b.epoch && a.version > b.version)

/** A read from the stock row: ranked below any owner's figures (epoch 0), which carry reservations too. */
const rowFigures = (row: SaleRow): PushedFigures => ({
  saleId: row.saleId,
  epoch: 0,
  version: 0,
  total: row.total,
  remaining: row.available,
  startsAt: row.startsAt,
  endsAt: row.endsAt,
  cancelled: row.cancelled,
  drawAt: row.allocation.mode === "draw" ? row.allocation.drawAt : undefined,
  drawn: row.allocation.mode === "draw" && row.allocation.drawnAt !== null
})

/** Drops views, oldest loaded first, until there is room for one more; watched or loading ones stay. */
const makeRoom = (views: Map<SaleId, View>) => {
  for (const [id, old] of views) {
    if (old.listeners.size > 0 || old.loading !== undefined) continue
    views.delete(id)
    if (views.size < maxViews) break
  }
}

/** The sale's view, made (empty, stale) when this node had none. */
export const viewOf = (state: SaleViews, saleId: SaleId): View => {
  let view = state.views.get(saleId)
  if (view !== undefined) return view
  if (state.views.size >= maxViews) makeRoom(state.views)
  view = {
    figures: undefined,
    productName: "",
    priceCents: 0,
    rules: noRules,
    allocation: firstCome,
    holdSeconds: 0,
    rowRead: false,
    source: "row",
    heardAt: 0,
    fencedUpTo: 0,
    loading: undefined,
    listeners: new Set()
  }
  state.views.set(saleId, view)
  state.followActor(saleId)
  return view
}

const tell = (view: View, figures: PushedFigures) => {
  for (const listener of view.listeners) listener(figures)
}

/** An owner's figures, from this node's actor or a push: kept only when newer. */
export const heard = (state: SaleViews, figures: PushedFigures, now: number) => {
  const view = state.views.get(figures.saleId)
  // Only sales this node was asked about are kept.
  if (view === undefined) return
  if (figures.epoch <= view.fencedUpTo) return
  const previous = view.figures
  if (previous !== undefined && !newer(figures, previous)) {
    if (figures.epoch === previous.epoch && figures.version === previous.version) view.heardAt = now
    return
  }
  view.figures = figures
  view.source = "owner"
  view.heardAt = now
  tell(view, figures)
}

/** A sale's row, read from PostgreSQL. */
export const fromRow = (state: SaleViews, row: SaleRow, now: number) => {
  const view = viewOf(state, row.saleId)
  view.productName = row.productName
  view.priceCents = row.priceCents
  view.rules = rulesOf(row)
  view.holdSeconds = row.holdSeconds
  view.rowRead = true
  view.allocation = row.allocation
  const figures = rowFigures(row)
  const previous = view.figures
  view.heardAt = now
  view.source = "row"
  // A later row read is newer than an earlier one (both epoch 0) and than a fenced owner's
  // figures; a running owner's rank above it (they hold its reservations too).
  if (previous !== undefined && previous.epoch > view.fencedUpTo) return
  view.figures = figures
  tell(view, figures)
}

// An owner announced its draw, but the row read before it has no seed yet: read it again.
const seedDue = (view: View) =>
  view.figures?.drawn === true && view.allocation.mode === "draw" && view.allocation.seed === null

export const fresh = (view: View, now: number) =>
  view.rowRead &&
  view.figures !== undefined &&
  now - view.heardAt < (view.source === "owner" ? ownerSilenceMillis : rowMillis) &&
  !seedDue(view)

export const listingOf = (view: View, figures: PushedFigures): SaleListing => ({
  productName: view.productName,
  priceCents: view.priceCents,
  rules: view.rules,
  allocation: view.allocation,
  holdSeconds: view.holdSeconds,
  figures
})

/** An admin changed the sale (or a product: no sale id): the catalog and that view are stale, its owners fenced. */
export const changedHere = (state: SaleViews, saleId: SaleId | undefined, fencedUpTo: number) => {
  if (state.catalog !== undefined) state.catalog.valid = false
  const view = saleId === undefined ? undefined : state.views.get(saleId)
  if (view === undefined) return
  view.fencedUpTo = Math.max(view.fencedUpTo, fencedUpTo, view.figures?.epoch ?? 0)
  view.heardAt = 0
}

/** Messages may have been missed: every view and the catalog are read again before they are served. */
export const allStale = (state: SaleViews) => {
  for (const view of state.views.values()) view.heardAt = 0
  if (state.catalog !== undefined) state.catalog.valid = false
}

export const follow = (state: SaleViews, saleId: SaleId, listener: (figures: PushedFigures) => void) => {
  const view = viewOf(state, saleId)
  view.listeners.add(listener)
  return () => void view.listeners.delete(listener)
}

/** The sale's listing when this node has a fresh view of it, else undefined. */
export const peek = (state: SaleViews, saleId: SaleId): SaleListing | undefined => {
  const view = state.views.get(saleId)
  if (view === undefined) return undefined
  if (view.source === "row") state.followActor(saleId)
  if (view.figures === undefined || !fresh(view, Date.now())) return undefined
  return listingOf(view, view.figures)
}

/** The current sale's listing when the choice and its view are fresh, else undefined. */
export const peekCurrent = (state: SaleViews): SaleListing | undefined => {
  const memo = state.chosen
  if (
    memo === undefined ||
    memo.saleId === undefined ||
    Date.now() >= memo.until ||
    state.catalog?.valid !== true
  )
    return undefined
  return peek(state, memo.saleId)
}

/**
 * Draw sales among the views whose draw time has passed and that, as far as this node heard,
 * are not drawn nor cancelled. A view read from a row or pushed by an owner says so alike.
 */
export const dueDraws = (state: SaleViews, now: number): ReadonlyArray<SaleId> => {
  const due: Array<SaleId> = []
  for (const [saleId, view] of state.views) {
    const f = view.figures
    if (f?.drawAt !== undefined && !f.drawn && !f.cancelled && f.drawAt <= now) due.push(saleId)
  }
  return due
}

import { Context, Deferred, Effect, Layer, Option, Queue, Schedule, Stream, SubscriptionRef } from "effect"
import { SaleRegistry } from "../actors/SaleRegistry.ts"
import { statusAt, type SaleStatus } from "../actors/SaleState.ts"
import { SaleNotFound } from "../domain/Errors.ts"
import type { SaleId } from "../domain/Ids.ts"
import * as Settings from "../Settings.ts"
import { Sales, type SaleRow } from "../storage/Sales.ts"
import { Leases } from "./Leases.ts"
import { OwnedSales } from "./OwnedSales.ts"
import { RedisConnection } from "./RedisConnection.ts"
import { packCatalogChange, packFigures, unpackMessage, type PushedFigures } from "./ViewWire.ts"

export type { PushedFigures } from "./ViewWire.ts"

/** A sale's public state, as watchers (SSE, sale views) see it. */
export interface SaleSnapshot {
  readonly saleId: SaleId
  readonly status: SaleStatus
  readonly total: number
  readonly remaining: number
}

/** A sale as the API lists it: the catalog's fields and the latest figures. */
export interface SaleListing {
  readonly productName: string
  readonly priceCents: number
  readonly figures: PushedFigures
}

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
/** How often the owner looks for actors it has not followed yet (a new owner's first push). */
const followMillis = 50
/** Views kept; the least recently loaded ones without watchers go first. */
const maxViews = 10_000

interface View {
  figures: PushedFigures | undefined
  productName: string
  priceCents: number
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
  cancelled: row.cancelled
})

export const snapshotOf = (figures: PushedFigures, now: number): SaleSnapshot => ({
  saleId: figures.saleId,
  status: statusAt(figures, now),
  total: figures.total,
  remaining: figures.remaining
})

/** The figures' snapshot now, then again at each instant the clock alone changes its status. */
const overTime = (figures: PushedFigures): Stream.Stream<SaleSnapshot> =>
  Stream.suspend(() => {
    const now = Date.now()
    const next = [figures.startsAt, figures.endsAt].find((at) => at > now)
    const first = Stream.succeed(snapshotOf(figures, now))
    if (next === undefined || figures.cancelled) return first
    return first.pipe(
      Stream.concat(Stream.fromEffectDrain(Effect.sleep(next - now))),
      Stream.concat(Stream.suspend(() => overTime(figures)))
    )
  })

/**
 * Every sale's latest public state in this node's memory, pushed by its owner: the owner
 * publishes its actor's figures as they change (in-process, and on Redis to the other nodes,
 * msgpack-packed); each node keeps the latest by (epoch, version) of each sale it is asked
 * about, and reads PostgreSQL only for a sale it has no fresh view of. Status is computed at
 * read time from the figures and the clock, so a sale starting or ending needs no push.
 */
export class SaleWatch extends Context.Service<
  SaleWatch,
  {
    /** The sale's latest figures; PostgreSQL is read only when this node has no fresh view. */
    readonly figures: (saleId: SaleId) => Effect.Effect<PushedFigures, SaleNotFound>
    readonly sale: (saleId: SaleId) => Effect.Effect<SaleListing, SaleNotFound>
    /** Every sale (the newest 500 by start), from the catalog kept in memory. */
    readonly list: Effect.Effect<ReadonlyArray<SaleListing>>
    /** The sale running now, else the next to start (the seed's "current" sale). */
    readonly current: Effect.Effect<SaleListing | undefined>
    /** `listener` hears each newer figures of the sale until the returned function is called. */
    readonly follow: (saleId: SaleId, listener: (figures: PushedFigures) => void) => () => void
    /**
     * An admin created or changed the sale (or a product: no sale id): every node reads the
     * catalog, and that sale, again.
     */
    readonly catalogChanged: (saleId?: SaleId) => Effect.Effect<void>
    readonly snapshot: (saleId: SaleId) => Effect.Effect<SaleSnapshot, SaleNotFound>
    /**
     * Without an effect, for node:http routes: the sale's listing when this node has a fresh
     * view of it, else undefined (the caller takes the effectful path, which reads it).
     */
    readonly peek: (saleId: SaleId) => SaleListing | undefined
    /** The current sale's listing when the choice and its view are fresh, else undefined. */
    readonly peekCurrent: () => SaleListing | undefined
    /** The current snapshot, then one per change of the figures. */
    readonly changes: (saleId: SaleId) => Stream.Stream<SaleSnapshot, SaleNotFound>
  }
>()("mincommerce/cluster/SaleWatch") {
  static readonly layer = Layer.effect(
    SaleWatch,
    Effect.gen(function* () {
      const sales = yield* Sales
      const owned = yield* OwnedSales
      const registry = yield* SaleRegistry
      const leases = yield* Leases
      const redis = yield* Effect.serviceOption(RedisConnection)
      const { redisPrefix } = yield* Settings.clusterSettings
      const channel = `${redisPrefix}views`
      const runFork = Effect.runForkWith(yield* Effect.context<never>())
      const views = new Map<SaleId, View>()
      let catalog: { rows: ReadonlyArray<SaleId>; at: number; valid: boolean } | undefined
      let catalogLoading: Deferred.Deferred<void> | undefined

      const viewOf = (saleId: SaleId): View => {
        let view = views.get(saleId)
        if (view !== undefined) return view
        if (views.size >= maxViews) {
          for (const [id, old] of views) {
            if (old.listeners.size > 0 || old.loading !== undefined) continue
            views.delete(id)
            if (views.size < maxViews) break
          }
        }
        view = {
          figures: undefined,
          productName: "",
          priceCents: 0,
          source: "row",
          heardAt: 0,
          fencedUpTo: 0,
          loading: undefined,
          listeners: new Set()
        }
        views.set(saleId, view)
        followActor(saleId)
        return view
      }

      const tell = (view: View, figures: PushedFigures) => {
        for (const listener of view.listeners) listener(figures)
      }

      /** An owner's figures, from this node's actor or a push: kept only when newer. */
      const heard = (figures: PushedFigures, now: number) => {
        const view = views.get(figures.saleId)
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

      const fromRow = (row: SaleRow, now: number) => {
        const view = viewOf(row.saleId)
        view.productName = row.productName
        view.priceCents = row.priceCents
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

      const fresh = (view: View, now: number) =>
        view.figures !== undefined &&
        now - view.heardAt < (view.source === "owner" ? ownerSilenceMillis : rowMillis)

      // One read per sale at a time, shared by every reader that finds the view stale meanwhile.
      const load = (saleId: SaleId, view: View): Effect.Effect<void> => {
        if (view.loading !== undefined) return Deferred.await(view.loading)
        const done = Deferred.makeUnsafe<void>()
        view.loading = done
        return sales.find(saleId).pipe(
          Effect.tap((row) =>
            Effect.sync(() => {
              if (row !== undefined) {
                fromRow(row, Date.now())
                // A sale the catalog does not know yet was created meanwhile: the list is read again.
                if (catalog !== undefined && !catalog.rows.includes(saleId)) catalog.valid = false
              } else if (view.figures === undefined) views.delete(saleId)
            })
          ),
          // PostgreSQL away: the last view known is served rather than nothing.
          Effect.catchTag("SqlError", (error) =>
            view.figures === undefined
              ? Effect.die(error)
              : Effect.logWarning("sale view not refreshed", { saleId })
          ),
          Effect.ensuring(
            Effect.suspend(() => ((view.loading = undefined), Deferred.succeed(done, undefined)))
          )
        )
      }

      const figures = (saleId: SaleId): Effect.Effect<PushedFigures, SaleNotFound> =>
        Effect.suspend(() => {
          const view = viewOf(saleId)
          // An actor just started here is followed now, not at the next look for new owners.
          if (view.source === "row") followActor(saleId)
          if (fresh(view, Date.now())) return Effect.succeed(view.figures as PushedFigures)
          return Effect.flatMap(load(saleId, view), () =>
            view.figures === undefined
              ? Effect.fail(new SaleNotFound({ saleId }))
              : Effect.succeed(view.figures)
          )
        })

      const listingOf = (view: View, figures: PushedFigures): SaleListing => ({
        productName: view.productName,
        priceCents: view.priceCents,
        figures
      })

      const sale = (saleId: SaleId) =>
        Effect.map(figures(saleId), (f) => listingOf(views.get(saleId) ?? viewOf(saleId), f))

      const loadCatalog: Effect.Effect<void> = Effect.suspend(() => {
        if (catalogLoading !== undefined) return Deferred.await(catalogLoading)
        const done = Deferred.makeUnsafe<void>()
        catalogLoading = done
        return sales.list.pipe(
          Effect.tap((rows) =>
            Effect.sync(() => {
              const now = Date.now()
              for (const row of rows) fromRow(row, now)
              catalog = { rows: rows.map((row) => row.saleId), at: now, valid: true }
            })
          ),
          Effect.catchTag("SqlError", (error) =>
            catalog === undefined ? Effect.die(error) : Effect.logWarning("sale catalog not refreshed")
          ),
          Effect.ensuring(
            Effect.suspend(() => ((catalogLoading = undefined), Deferred.succeed(done, undefined)))
          )
        )
      })

      const catalogRows: Effect.Effect<ReadonlyArray<SaleId>> = Effect.suspend(() => {
        const now = Date.now()
        if (catalog !== undefined && catalog.valid && now - catalog.at < rowMillis)
          return Effect.succeed(catalog.rows)
        return Effect.map(loadCatalog, () => catalog?.rows ?? [])
      })

      // Each listed sale's figures as this node knows them; those gone stale are read again first.
      const listings = (ids: ReadonlyArray<SaleId>) =>
        Effect.suspend(() => {
          const now = Date.now()
          const stale = ids.filter((saleId) => {
            const view = views.get(saleId)
            return view === undefined || !fresh(view, now)
          })
          const reload = Effect.forEach(stale, (saleId) => Effect.ignore(figures(saleId)), {
            concurrency: 8,
            discard: true
          })
          return Effect.map(reload, () =>
            ids.flatMap((saleId) => {
              const view = views.get(saleId)
              return view?.figures === undefined ? [] : [listingOf(view, view.figures)]
            })
          )
        })

      const list = Effect.flatMap(catalogRows, listings)

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

      // Which sale is current changes only with the clock, a cancel or the catalog: the choice
      // is kept for a short while, so a status read costs one map lookup, not a scan.
      let chosen: { readonly saleId: SaleId | undefined; readonly until: number } | undefined
      const currentMillis = 250
      const current: Effect.Effect<SaleListing | undefined> = Effect.suspend(() => {
        const now = Date.now()
        const memo = chosen
        if (memo !== undefined && now < memo.until && catalog?.valid === true) {
          if (memo.saleId === undefined) return Effect.succeed(undefined)
          const id = memo.saleId
          return Effect.map(Effect.option(sale(id)), (found) => Option.getOrUndefined(found))
        }
        return Effect.map(list, (all) => {
          const best = pickCurrent(all, now)
          chosen = { saleId: best?.figures.saleId, until: now + currentMillis }
          return best
        })
      })

      const changedHere = (saleId: SaleId | undefined, fencedUpTo: number) => {
        if (catalog !== undefined) catalog.valid = false
        const view = saleId === undefined ? undefined : views.get(saleId)
        if (view === undefined) return
        view.fencedUpTo = Math.max(view.fencedUpTo, fencedUpTo, view.figures?.epoch ?? 0)
        view.heardAt = 0
      }

      const follow = (saleId: SaleId, listener: (figures: PushedFigures) => void) => {
        const view = viewOf(saleId)
        view.listeners.add(listener)
        return () => void view.listeners.delete(listener)
      }

      // The owner's side: each actor this node runs is followed, its figures heard here at
      // once and published to the other nodes on the next turn of the event loop.
      const followed = new Map<SaleId, PushedFigures>()
      let unpublished = new Map<SaleId, PushedFigures>()
      let flushing = false
      const publish = (messages: Buffer) =>
        Option.isSome(redis) ? void redis.value.client.publish(channel, messages).catch(() => {}) : undefined
      const flush = () => {
        flushing = false
        const batch = [...unpublished.values()]
        unpublished = new Map()
        if (batch.length > 0) publish(packFigures(batch))
      }
      const published = (figures: PushedFigures) => {
        followed.set(figures.saleId, figures)
        heard(figures, Date.now())
        if (Option.isNone(redis)) return
        unpublished.set(figures.saleId, figures)
        if (!flushing) {
          flushing = true
          setImmediate(flush)
        }
      }
      const followActor = (saleId: SaleId) => {
        const actor = owned.actor(saleId) ?? registry.running(saleId)
        if (actor === undefined || followed.has(saleId)) return
        published(SubscriptionRef.getUnsafe(actor.figures))
        runFork(
          SubscriptionRef.changes(actor.figures).pipe(
            Stream.runForEach((figures) => Effect.sync(() => published(figures))),
            Effect.raceFirst(actor.stopped),
            Effect.ensuring(Effect.sync(() => followed.delete(saleId)))
          )
        )
      }
      yield* Effect.forkScoped(
        Effect.sync(() => {
          for (const saleId of leases.held()) followActor(saleId)
        }).pipe(Effect.repeat(Schedule.spaced(followMillis)))
      )
      // Every followed sale again, so a node that missed a push (or joined late) has it within this.
      yield* Effect.forkScoped(
        Effect.sync(() => {
          if (followed.size > 0) publish(packFigures([...followed.values()]))
        }).pipe(Effect.repeat(Schedule.spaced(republishMillis)))
      )

      if (Option.isSome(redis)) {
        const subscriber = redis.value.subscriber
        const onMessage = (from: Buffer, bytes: Buffer) => {
          if (from.toString() !== channel) return
          const message = unpackMessage(bytes)
          if (message === undefined) return
          if (message._tag === "CatalogChanged") return changedHere(message.saleId, message.fencedUpTo)
          const now = Date.now()
          for (const figures of message.views) heard(figures, now)
        }
        // Messages may have been missed while the subscription was down.
        const onReady = () => {
          for (const view of views.values()) view.heardAt = 0
          if (catalog !== undefined) catalog.valid = false
        }
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            subscriber.on("messageBuffer", onMessage)
            subscriber.on("ready", onReady)
          }),
          () =>
            Effect.sync(() => {
              subscriber.off("messageBuffer", onMessage)
              subscriber.off("ready", onReady)
            })
        )
        // Not awaited: with Redis away the subscription waits for it, and the node must not.
        subscriber.subscribe(channel).catch(() => 0)
      }

      const snapshot = (saleId: SaleId) => Effect.map(figures(saleId), (f) => snapshotOf(f, Date.now()))

      const peek = (saleId: SaleId): SaleListing | undefined => {
        const view = views.get(saleId)
        if (view === undefined) return undefined
        if (view.source === "row") followActor(saleId)
        if (!fresh(view, Date.now())) return undefined
        return listingOf(view, view.figures as PushedFigures)
      }
      const peekCurrent = (): SaleListing | undefined => {
        const memo = chosen
        if (
          memo === undefined ||
          memo.saleId === undefined ||
          Date.now() >= memo.until ||
          catalog?.valid !== true
        )
          return undefined
        return peek(memo.saleId)
      }

      return SaleWatch.of({
        peek,
        peekCurrent,
        figures,
        sale,
        list,
        current,
        follow,
        catalogChanged: (saleId) =>
          Effect.sync(() => {
            const known = saleId === undefined ? undefined : views.get(saleId)?.figures
            const fencedUpTo = known?.epoch ?? 0
            changedHere(saleId, fencedUpTo)
            publish(packCatalogChange(saleId, fencedUpTo))
          }),
        snapshot,
        changes: (saleId) =>
          Stream.unwrap(
            Effect.map(figures(saleId), (first) =>
              Stream.callback<PushedFigures>((queue) =>
                Effect.acquireRelease(
                  Effect.sync(() => follow(saleId, (f) => void Queue.offerUnsafe(queue, f))),
                  (stop) => Effect.sync(stop)
                )
              ).pipe(
                (later) => Stream.concat(Stream.succeed(first), later),
                Stream.switchMap(overTime),
                Stream.changesWith(
                  (a, b) => a.status === b.status && a.remaining === b.remaining && a.total === b.total
                )
              )
            )
          )
      })
    })
  )
}

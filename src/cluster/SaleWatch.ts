import { Context, Effect, Layer, Queue, Stream } from "effect"
import { SaleRegistry } from "../actors/SaleRegistry.ts"
import { statusAt, type SaleStatus } from "../actors/SaleState.ts"
import type { SaleNotFound } from "../domain/Errors.ts"
import type { OrderId, SaleId } from "../domain/Ids.ts"
import * as Settings from "../Settings.ts"
import { Sales } from "../storage/Sales.ts"
import { Leases } from "./Leases.ts"
import { OwnedSales } from "./OwnedSales.ts"
import { RedisConnection } from "./RedisConnection.ts"
import { dueDraws, follow, makeSaleViews, peek, peekCurrent, type SaleListing } from "./SaleViews.ts"
import { currentOf, figuresOf, listOf, saleOf } from "./ViewReads.ts"
import {
  announceCatalogChange,
  announceSettled,
  followActor,
  hearOthers,
  makeViewPush,
  overdueHolds,
  pushOwned
} from "./ViewPush.ts"
import type { PushedFigures } from "./ViewWire.ts"

export type { PushedFigures } from "./ViewWire.ts"
export type { SaleListing } from "./SaleViews.ts"
export { ownerSilenceMillis, republishMillis, rowMillis } from "./SaleViews.ts"

/** A sale's public state, as watchers (SSE, sale views) see it. */
export interface SaleSnapshot {
  readonly saleId: SaleId
  readonly status: SaleStatus
  readonly total: number
  readonly remaining: number
  /** A draw sale's draw time (epoch ms) and whether it is drawn; undefined for first come. */
  readonly draw: { readonly drawAt: number; readonly drawn: boolean } | undefined
}

export const snapshotOf = (figures: PushedFigures, now: number): SaleSnapshot => ({
  saleId: figures.saleId,
  status: statusAt(figures, now, figures.drawAt),
  total: figures.total,
  remaining: figures.remaining,
  draw: figures.drawAt === undefined ? undefined : { drawAt: figures.drawAt, drawn: figures.drawn }
})

/** The figures' snapshot now, then again at each instant the clock alone changes its status. */
const overTime = (figures: PushedFigures): Stream.Stream<SaleSnapshot> =>
  Stream.suspend(() => {
    const now = Date.now()
    const next = [figures.startsAt, figures.drawAt ?? figures.endsAt, figures.endsAt].find((at) => at > now)
    const first = Stream.succeed(snapshotOf(figures, now))
    if (next === undefined || figures.cancelled) return first
    return first.pipe(
      Stream.concat(Stream.fromEffectDrain(Effect.sleep(next - now))),
      Stream.concat(Stream.suspend(() => overTime(figures)))
    )
  })

/** The current snapshot of `first`, then one per change that a watcher can see. */
const changesFrom = (
  first: PushedFigures,
  follow: (listener: (figures: PushedFigures) => void) => () => void
): Stream.Stream<SaleSnapshot> =>
  Stream.callback<PushedFigures>((queue) =>
    Effect.acquireRelease(
      Effect.sync(() => follow((f) => void Queue.offerUnsafe(queue, f))),
      (stop) => Effect.sync(stop)
    )
  ).pipe(
    (later) => Stream.concat(Stream.succeed(first), later),
    Stream.switchMap(overTime),
    Stream.changesWith(
      (a, b) =>
        a.status === b.status &&
        a.remaining === b.remaining &&
        a.total === b.total &&
        a.draw?.drawn === b.draw?.drawn
    )
  )

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
    /**
     * Sales whose owner on another node said it holds orders due `overdueMillis` ago and has
     * said nothing since (it died, or its actor stopped): someone should take them over.
     */
    readonly overdueHolds: (now: number, overdueMillis: number) => ReadonlyArray<SaleId>
    /** A held order's row was paid or cancelled: the sale's owner, on any node, hears of it. */
    readonly settled: (saleId: SaleId, orderId: OrderId, status: "paid" | "cancelled") => void
    readonly snapshot: (saleId: SaleId) => Effect.Effect<SaleSnapshot, SaleNotFound>
    /**
     * Without an effect, for node:http routes: the sale's listing when this node has a fresh
     * view of it, else undefined (the caller takes the effectful path, which reads it).
     */
    readonly peek: (saleId: SaleId) => SaleListing | undefined
    /** The current sale's listing when the choice and its view are fresh, else undefined. */
    readonly peekCurrent: () => SaleListing | undefined
    /** Draw sales this node knows of whose draw is due and, as far as it knows, not done. */
    readonly dueDraws: (now: number) => ReadonlyArray<SaleId>
    /** The current snapshot, then one per change of the figures. */
    readonly changes: (saleId: SaleId) => Stream.Stream<SaleSnapshot, SaleNotFound>
  }
>()("mincommerce/cluster/SaleWatch") {
  static readonly layer = Layer.effect(
    SaleWatch,
    Effect.gen(function* () {
      const sales = yield* Sales
      const { redisPrefix } = yield* Settings.clusterSettings
      // The views follow this node's actors through the push, which hears them into the views.
      const views = makeSaleViews((saleId) => followActor(push, saleId))
      const push = makeViewPush({
        views,
        owned: yield* OwnedSales,
        registry: yield* SaleRegistry,
        redis: yield* Effect.serviceOption(RedisConnection),
        channel: `${redisPrefix}views`,
        runFork: Effect.runForkWith(yield* Effect.context<never>())
      })
      yield* pushOwned(push, yield* Leases)
      yield* hearOthers(push)

      const figures = (saleId: SaleId) => figuresOf(views, sales, saleId)
      const list = listOf(views, sales)
      return SaleWatch.of({
        peek: (saleId) => peek(views, saleId),
        peekCurrent: () => peekCurrent(views),
        dueDraws: (now) => dueDraws(views, now),
        figures,
        sale: (saleId) => saleOf(views, sales, saleId),
        list,
        current: currentOf(views, sales, list),
        follow: (saleId, listener) => follow(views, saleId, listener),
        catalogChanged: (saleId) => Effect.sync(() => announceCatalogChange(push, saleId)),
        settled: (saleId, orderId, status) => announceSettled(push, saleId, orderId, status),
        overdueHolds: (now, overdueMillis) => overdueHolds(push, now, overdueMillis),
        snapshot: (saleId) => Effect.map(figures(saleId), (f) => snapshotOf(f, Date.now())),
        changes: (saleId) =>
          Stream.unwrap(
            Effect.map(figures(saleId), (first) =>
              changesFrom(first, (listener) => follow(views, saleId, listener))
            )
          )
      })
    })
  )
}

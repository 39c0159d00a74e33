import { Effect, Option, Schedule, Stream, SubscriptionRef, type Scope } from "effect"
import type { SaleRegistry } from "../actors/SaleRegistry.ts"
import type { OrderId, SaleId } from "../domain/Ids.ts"
import type { Leases } from "./Leases.ts"
import type { OwnedSales } from "./OwnedSales.ts"
import type { RedisConnection } from "./RedisConnection.ts"
import { allStale, changedHere, heard, republishMillis, type SaleViews } from "./SaleViews.ts"
import {
  packCatalogChange,
  packFigures,
  packHolds,
  packSettled,
  unpackMessage,
  type PushedFigures
} from "./ViewWire.ts"

/** How often the owner looks for actors it has not followed yet (a new owner's first push). */
const followMillis = 50

/**
 * The views' channel on Redis, both ways. The owner's side: each actor this node runs is
 * followed, its figures heard here at once and published to the other nodes on the next turn
 * of the event loop, and all of them again every `republishMillis`. The other side: what the
 * other nodes publish is heard into this node's views.
 */
export interface ViewPush {
  readonly views: SaleViews
  readonly owned: OwnedSales["Service"]
  readonly registry: SaleRegistry["Service"]
  readonly redis: Option.Option<RedisConnection["Service"]>
  readonly channel: string
  readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => unknown
  /** The latest figures of each actor followed, while it runs. */
  readonly followed: Map<SaleId, PushedFigures>
  /** Figures changed since the last publish, sent on the next turn of the event loop. */
  unpublished: Map<SaleId, PushedFigures>
  flushing: boolean
  /** Sales of this node that have held orders, or had: their next deadline is published too. */
  readonly holdSales: Set<SaleId>
  /** Other owners' next hold deadlines, and when each was last heard, by sale. */
  readonly heardHolds: Map<SaleId, { readonly dueAt: number; readonly heardAt: number }>
}

export const makeViewPush = (
  parts: Pick<ViewPush, "views" | "owned" | "registry" | "redis" | "channel" | "runFork">
): ViewPush => ({
  ...parts,
  followed: new Map(),
  unpublished: new Map(),
  flushing: false,
  holdSales: new Set(),
  heardHolds: new Map()
})

const publish = (push: ViewPush, messages: Buffer) =>
  Option.isSome(push.redis)
    ? void push.redis.value.client.publish(push.channel, messages).catch(() => {})
    : undefined

const flush = (push: ViewPush) => {
  push.flushing = false
  const batch = [...push.unpublished.values()]
  push.unpublished = new Map()
  if (batch.length === 0) return
  publish(push, packFigures(batch))
  publishHolds(push, batch)
}

/**
 * With the figures, each hold sale's next deadline (a sale whose actor holds or held orders):
 * the other nodes keep it, so if this node dies they see the holds it leaves behind.
 */
const publishHolds = (push: ViewPush, sales: Iterable<PushedFigures>) => {
  const now = Date.now()
  const holds: Array<readonly [SaleId, number | null]> = []
  for (const { saleId } of sales) {
    const view = (push.owned.actor(saleId) ?? push.registry.running(saleId))?.view(now)
    if (view === undefined) continue
    if (view.heldOrders > 0) push.holdSales.add(saleId)
    else if (!push.holdSales.delete(saleId)) continue
    holds.push([saleId, view.holdsDueAt ?? null])
  }
  if (holds.length > 0) publish(push, packHolds(holds))
}

/** A deadline heard this long ago is dropped: a live owner repeats it every second. */
const heardHoldsMillis = 30_000

/**
 * Sales whose owner elsewhere said it holds orders due `overdueMillis` ago, and has not said
 * otherwise since: what a live owner would have expired. A sale this node owns now is its
 * own actor's to keep, and what was heard long ago is forgotten.
 */
export const overdueHolds = (push: ViewPush, now: number, overdueMillis: number): ReadonlyArray<SaleId> => {
  const overdue: Array<SaleId> = []
  for (const [saleId, { dueAt, heardAt }] of push.heardHolds) {
    if (push.owned.actor(saleId) !== undefined || now - heardAt > heardHoldsMillis)
      push.heardHolds.delete(saleId)
    else if (dueAt + overdueMillis <= now) overdue.push(saleId)
  }
  return overdue
}

const published = (push: ViewPush, figures: PushedFigures) => {
  push.followed.set(figures.saleId, figures)
  heard(push.views, figures, Date.now())
  if (Option.isNone(push.redis)) return
  push.unpublished.set(figures.saleId, figures)
  if (!push.flushing) {
    push.flushing = true
    setImmediate(flush, push)
  }
}

/** Follows the sale's actor while it runs, when it runs on this node and is not followed yet. */
export const followActor = (push: ViewPush, saleId: SaleId) => {
  const actor = push.owned.actor(saleId) ?? push.registry.running(saleId)
  if (actor === undefined || push.followed.has(saleId)) return
  published(push, SubscriptionRef.getUnsafe(actor.figures))
  push.runFork(
    SubscriptionRef.changes(actor.figures).pipe(
      Stream.runForEach((figures) => Effect.sync(() => published(push, figures))),
      Effect.raceFirst(actor.stopped),
      Effect.ensuring(Effect.sync(() => push.followed.delete(saleId)))
    )
  )
}

/** An admin changed the sale (or a product): this node's views, then every other node's. */
export const announceCatalogChange = (push: ViewPush, saleId: SaleId | undefined) => {
  const known = saleId === undefined ? undefined : push.views.views.get(saleId)?.figures
  const fencedUpTo = known?.epoch ?? 0
  changedHere(push.views, saleId, fencedUpTo)
  publish(push, packCatalogChange(saleId, fencedUpTo))
}

/**
 * A held order's row was paid or cancelled: its owner brings its book in line (a cancelled
 * unit back on sale at once). The owner here is told directly, every other node over Redis;
 * a node that does not run the sale ignores it, and an owner that missed it learns the same
 * from PostgreSQL at the hold's deadline.
 */
export const announceSettled = (
  push: ViewPush,
  saleId: SaleId,
  orderId: OrderId,
  status: "paid" | "cancelled"
) => {
  const actor = push.owned.actor(saleId)
  if (actor !== undefined) return actor.settle(orderId, status)
  publish(push, packSettled(saleId, orderId, status))
}

/** The owner's pushes, for the layer's lifetime: new owners' actors followed, all figures republished. */
export const pushOwned = (
  push: ViewPush,
  leases: Leases["Service"]
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function* () {
    yield* Effect.forkScoped(
      Effect.sync(() => {
        for (const saleId of leases.held()) followActor(push, saleId)
      }).pipe(Effect.repeat(Schedule.spaced(followMillis)))
    )
    // Every followed sale again, so a node that missed a push (or joined late) has it within this.
    yield* Effect.forkScoped(
      Effect.sync(() => {
        if (push.followed.size === 0) return
        publish(push, packFigures([...push.followed.values()]))
        publishHolds(push, push.followed.values())
      }).pipe(Effect.repeat(Schedule.spaced(republishMillis)))
    )
  })

/** The other nodes' pushes and catalog changes, heard into this node's views for the layer's lifetime. */
export const hearOthers = (push: ViewPush): Effect.Effect<void, never, Scope.Scope> =>
  Effect.suspend(() => {
    if (Option.isNone(push.redis)) return Effect.void
    const subscriber = push.redis.value.subscriber
    const onMessage = (from: Buffer, bytes: Buffer) => {
      if (from.toString() !== push.channel) return
      const message = unpackMessage(bytes)
      if (message === undefined) return
      if (message._tag === "CatalogChanged")
        return changedHere(push.views, message.saleId, message.fencedUpTo)
      if (message._tag === "Settled")
        return push.owned.actor(message.saleId)?.settle(message.orderId, message.status)
      if (message._tag === "Holds") {
        for (const [saleId, dueAt] of message.holds)
          if (dueAt === null) push.heardHolds.delete(saleId)
          else push.heardHolds.set(saleId, { dueAt, heardAt: Date.now() })
        return
      }
      const now = Date.now()
      for (const figures of message.views) heard(push.views, figures, now)
    }
    // Messages may have been missed while the subscription was down.
    const onReady = () => allStale(push.views)
    return Effect.acquireRelease(
      Effect.sync(() => {
        subscriber.on("messageBuffer", onMessage)
        subscriber.on("ready", onReady)
      }),
      () =>
        Effect.sync(() => {
          subscriber.off("messageBuffer", onMessage)
          subscriber.off("ready", onReady)
        })
    ).pipe(
      // Not awaited: with Redis away the subscription waits for it, and the node must not.
      Effect.tap(() => Effect.sync(() => void subscriber.subscribe(push.channel).catch(() => 0)))
    )
  })

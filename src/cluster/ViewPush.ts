import { Effect, Option, Schedule, Stream, SubscriptionRef, type Scope } from "effect"
import type { SaleRegistry } from "../actors/SaleRegistry.ts"
import type { OrderId, SaleId } from "../domain/Ids.ts"
import type { Leases } from "./Leases.ts"
import type { OwnedSales } from "./OwnedSales.ts"
import type { RedisConnection } from "./RedisConnection.ts"
import { allStale, changedHere, heard, republishMillis, type SaleViews } from "./SaleViews.ts"
import { packCatalogChange, packFigures, packSettled, unpackMessage, type PushedFigures } from "./ViewWire.ts"

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
}

export const makeViewPush = (
  parts: Pick<ViewPush, "views" | "owned" | "registry" | "redis" | "channel" | "runFork">
): ViewPush => ({ ...parts, followed: new Map(), unpublished: new Map(), flushing: false })

const publish = (push: ViewPush, messages: Buffer) =>
  Option.isSome(push.redis)
    ? void push.redis.value.client.publish(push.channel, messages).catch(() => {})
    : undefined

const flush = (push: ViewPush) => {
  push.flushing = false
  const batch = [...push.unpublished.values()]
  push.unpublished = new Map()
  if (batch.length > 0) publish(push, packFigures(batch))
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
        if (push.followed.size > 0) publish(push, packFigures([...push.followed.values()]))
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

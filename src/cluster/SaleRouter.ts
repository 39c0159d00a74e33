import { Context, Effect, Layer } from "effect"
import { PurchaseUnavailable, type SaleNotFound } from "../domain/Errors.ts"
import type { SaleId, UserId } from "../domain/Ids.ts"
import type { Outcome } from "../domain/Outcome.ts"
import { awaitReply, type Refusal, type RoutedReply } from "../domain/Reply.ts"
import type { SaleActor } from "../actors/SaleActor.ts"
import * as Tracing from "../Tracing.ts"
import { Directory } from "./Directory.ts"
import { DrawScheduler } from "./DrawScheduler.ts"
import { answerForwarded } from "./ForwardedPurchases.ts"
import { ForwardLink, type LinkOptions } from "./ForwardLink.ts"
import { OwnedSales } from "./OwnedSales.ts"
import { Ownership } from "./Ownership.ts"
import { SaleWatch } from "./SaleWatch.ts"

export interface RouterOptions {
  /** Seconds a caller is told to wait when the owner is changing or unreachable. */
  readonly retryAfterSeconds?: number
}

/** How well this node can route purchases now. */
export type Readiness =
  /** Every sale can be routed. */
  | "ready"
  /** Redis does not answer: owned sales and sales with a known route are served; others wait. */
  | "degraded"

type Reply = (answer: RoutedReply) => void

interface Routing {
  readonly ownership: Ownership["Service"]
  readonly owned: OwnedSales["Service"]
  readonly link: ForwardLink["Service"]
  readonly runFork: <A, E>(effect: Effect.Effect<A, E>) => unknown
  readonly retryAfterSeconds: number
  /** Spans for traced purchases; undefined while tracing is off. */
  readonly startSpan: Tracing.StartSpan | undefined
}

const unavailable = (r: Routing, saleId: SaleId, reason: PurchaseUnavailable["reason"]) =>
  new PurchaseUnavailable({ saleId, reason, retryAfterSeconds: r.retryAfterSeconds })

// The one retry rule: a purchase no owner can have decided (not the owner, not sent,
// another node won the lease) is routed again, once, from a fresh lookup.
const again = (r: Routing, saleId: SaleId, userId: UserId, reply: Reply, retried: boolean) =>
  retried ? reply(unavailable(r, saleId, "no_owner")) : resolve(r, saleId, userId, reply, true)

// A traced purchase's hop and its time at the actor are spans of the request's trace.
const traced = (r: Routing, name: string, saleId: SaleId, attributes: Record<string, unknown> = {}) => {
  const parent = Tracing.routedPurchase.context
  if (r.startSpan === undefined || parent === undefined) return undefined
  return r.startSpan(name, { parent, kind: "client", attributes: { "sale.id": saleId, ...attributes } })
}

const toActor = (r: Routing, actor: SaleActor, saleId: SaleId, userId: UserId, reply: Reply) => {
  const span = traced(r, "SaleActor.purchase", saleId)
  if (span === undefined) return actor.offer(userId, reply)
  actor.offer(
    userId,
    (answer) => {
      span.end({ "purchase.outcome": answer._tag })
      reply(answer)
    },
    span.context
  )
}

const forward = (
  r: Routing,
  address: string,
  saleId: SaleId,
  userId: UserId,
  reply: Reply,
  retried: boolean
) => {
  const hop = traced(r, "SaleRouter.forward", saleId, { "server.address": address })
  r.link.send(
    address,
    saleId,
    userId,
    (result) => {
      hop?.end({ "forward.result": result._tag })
      switch (result._tag) {
        case "NotOwner":
        case "NotSent":
          r.ownership.forget(saleId)
          return again(r, saleId, userId, reply, retried)
        case "NoAnswer":
          // It may have been decided: the buyer hears the outcome is unknown, not a retry.
          r.ownership.forget(saleId)
          return reply(unavailable(r, saleId, "owner_unreachable"))
        default:
          return reply(result)
      }
    },
    hop?.context
  )
}

const lookedUp = Effect.fnUntraced(function* (
  r: Routing,
  saleId: SaleId,
  userId: UserId,
  reply: Reply,
  retried: boolean,
  trace: Tracing.TraceContext | undefined
) {
  const where = yield* r.ownership.lookup(saleId)
  if (where._tag === "Remote")
    return Tracing.routing(trace, () => forward(r, where.address, saleId, userId, reply, retried))
  if (r.owned.leaving()) return reply(unavailable(r, saleId, "stopping"))
  const actor = yield* r.owned.takeOver(saleId)
  if (actor !== undefined) return Tracing.routing(trace, () => toActor(r, actor, saleId, userId, reply))
  r.ownership.forget(saleId)
  Tracing.routing(trace, () => again(r, saleId, userId, reply, retried))
})

const resolve = (r: Routing, saleId: SaleId, userId: UserId, reply: Reply, retried: boolean): void => {
  const noOwner = () => Effect.sync(() => reply(unavailable(r, saleId, "no_owner")))
  void r.runFork(
    lookedUp(r, saleId, userId, reply, retried, Tracing.routedPurchase.context).pipe(
      Effect.catchTags({
        SaleNotFound: (notFound) => Effect.sync(() => reply(notFound)),
        DirectoryUnavailable: noOwner,
        RedisUnavailable: noOwner,
        SqlError: noOwner
      })
    )
  )
}

/**
 * The purchase primitive: an owned sale goes to its actor and a sale whose owner's lease is
 * known to hold goes over the link, both without a fiber; anything else is looked up.
 */
const offer = (r: Routing, saleId: SaleId, userId: UserId, reply: Reply) => {
  const actor = r.owned.actor(saleId)
  if (actor !== undefined) return toActor(r, actor, saleId, userId, reply)
  const route = r.ownership.cached(saleId, Date.now())
  if (route?._tag === "Remote") return forward(r, route.address, saleId, userId, reply, false)
  resolve(r, saleId, userId, reply, false)
}

const routing =
  (r: Routing) =>
  (saleId: SaleId, userId: UserId, reply: Reply): void =>
    offer(r, saleId, userId, reply)

/**
 * Sends each purchase to its sale's owner: this node's actor when it owns the sale, the
 * owning node over the forward link when another does, and a takeover when nobody does.
 */
export class SaleRouter extends Context.Service<
  SaleRouter,
  {
    /**
     * The purchase primitive: `reply` is called exactly once. An owned sale, or one whose
     * owner's lease is known to hold (or any known owner while Redis is away), goes out
     * without a fiber; anything else is looked up.
     */
    readonly offer: (saleId: SaleId, userId: UserId, reply: Reply) => void
    readonly purchase: (saleId: SaleId, userId: UserId) => Effect.Effect<Outcome, Refusal | SaleNotFound>
    /** The sale's actor, only while this node owns the sale and the actor runs. */
    readonly localActor: (saleId: SaleId) => SaleActor | undefined
    /** host:port this node takes forwarded purchases on, if it does. */
    readonly forwardAddress: string | undefined
    /** Whether this node takes purchases now: true when ready or degraded, false once handing over. */
    readonly ready: Effect.Effect<boolean>
    /** "degraded" while Redis does not answer: the node serves owned sales and known routes. */
    readonly readiness: Effect.Effect<Readiness>
    /** Planned shutdown: every owned sale drained and its lease handed back. */
    readonly handoff: Effect.Effect<void>
  }
>()("mincommerce/cluster/SaleRouter") {
  static readonly layer = (options: RouterOptions = {}) =>
    Layer.effect(
      SaleRouter,
      Effect.gen(function* () {
        const ownership = yield* Ownership
        const owned = yield* OwnedSales
        const link = yield* ForwardLink
        const directory = yield* Directory
        const runFork = Effect.runForkWith(yield* Effect.context<never>())
        const startSpan = yield* Tracing.startSpan
        const offer = routing({
          ownership,
          owned,
          link,
          runFork,
          retryAfterSeconds: options.retryAfterSeconds ?? 1,
          startSpan
        })
        const forwardAddress = yield* link.serve(answerForwarded(owned, startSpan))
        if (forwardAddress !== undefined) yield* directory.advertise(forwardAddress)

        const readiness = Effect.map(ownership.reachable, (up): Readiness => (up ? "ready" : "degraded"))
        return SaleRouter.of({
          offer,
          purchase: (saleId, userId) =>
            startSpan === undefined
              ? awaitReply<Refusal | SaleNotFound>((reply) => offer(saleId, userId, reply))
              : // Traced, the fiber's span (the HttpApi request's) is the routed purchase's parent.
                Effect.flatMap(Tracing.currentContext, (trace) =>
                  awaitReply<Refusal | SaleNotFound>((reply) =>
                    Tracing.routing(trace, () => offer(saleId, userId, reply))
                  )
                ),
          localActor: owned.actor,
          forwardAddress,
          // Degraded still serves; only a node handing its sales over asks for no more traffic.
          ready: Effect.sync(() => !owned.leaving()),
          readiness,
          handoff: owned.handoff
        })
      })
    )

  /**
   * A node's cluster tier over the ownership layer it is given (Ownership.local or
   * Ownership.redis): the router, the sales it owns, the forward link (when `forward` is
   * set), the sale watch, and the look for due draws.
   */
  static readonly make = (options: RouterOptions & { readonly forward?: LinkOptions } = {}) =>
    Layer.mergeAll(
      SaleRouter.layer(options),
      DrawScheduler.layer.pipe(Layer.provideMerge(SaleWatch.layer))
    ).pipe(
      Layer.provideMerge(OwnedSales.layer),
      Layer.provideMerge(
        options.forward === undefined ? ForwardLink.none : ForwardLink.layer(options.forward)
      )
    )
}

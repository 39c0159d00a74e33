import { Cause, Context, Deferred, Effect, Exit, Layer } from "effect"
import type { SqlError } from "effect/sql"
import { isRefusal, type Reply as ActorReply, type SaleActor } from "../actors/SaleActor.ts"
import { statusAt, type SaleStatus } from "../actors/SaleState.ts"
import { SaleRegistry } from "../actors/SaleRegistry.ts"
import { Overloaded, PurchaseUnavailable, SaleNotFound } from "../domain/Errors.ts"
import type { SaleId, UserId } from "../domain/Ids.ts"
import type { Outcome } from "../domain/Outcome.ts"
import { Catalog } from "../storage/Catalog.ts"
import { Peers, type ForwardResult } from "./ForwardClient.ts"
import * as ForwardServer from "./ForwardServer.ts"
import { linkKey, outcomeReply, Reply, replyOutcome } from "./Frames.ts"
import { Ownership } from "./Ownership.ts"

export interface RouterOptions {
  /** Where other nodes send purchases for sales this node owns (undefined: no forwarding, one node). */
  readonly forward?: {
    readonly host: string
    readonly port: number
    readonly timeoutMillis: number
    /** The secret every node of the cluster shares: peers prove a key derived from it. */
    readonly sharedSecret: Uint8Array
  }
  /**
   * Hand every sale over as soon as SIGTERM or SIGINT arrives, before the rest of the node
   * shuts down (the node's entry point sets it; tests building a router in-process do not).
   */
  readonly handoffOnSignal?: boolean
  /** Seconds a caller is told to wait when the owner is changing or unreachable. */
  readonly retryAfterSeconds?: number
}

/** A sale's public state, from its owner's memory here, else from the committed stock row. */
export interface SaleSnapshot {
  readonly saleId: SaleId
  readonly status: SaleStatus
  readonly total: number
  readonly remaining: number
}

type PurchaseError = SaleNotFound | Overloaded | PurchaseUnavailable

/**
 * Sends each purchase to its sale's owner: this node's actor when it owns the sale, else the
 * owning node over a persistent connection. A sale nobody owns is taken over on demand:
 * lease first, then a fresh epoch in PostgreSQL and the committed state (SaleRegistry).
 */
export class SaleRouter extends Context.Service<
  SaleRouter,
  {
    readonly purchase: (saleId: SaleId, userId: UserId) => Effect.Effect<Outcome, PurchaseError>
    /** The sale's actor, only while this node owns the sale and the actor runs. */
    readonly localActor: (saleId: SaleId) => SaleActor | undefined
    /**
     * For a caller outside any fiber (the HTTP fast path): when the sale is owned by another
     * node whose route is cached, a function that forwards one purchase there and calls
     * `reply` exactly once, as `SaleActor.offer` does; undefined otherwise (use `purchase`).
     */
    readonly forwarderFor: (
      saleId: SaleId
    ) => ((userId: UserId, reply: (answer: ActorReply) => void) => void) | undefined
    /** The sale's current state for watchers (SSE): local memory, else the committed row. */
    readonly snapshot: (saleId: SaleId) => Effect.Effect<SaleSnapshot, SaleNotFound>
    /** host:port this node takes forwarded purchases on, if it does. */
    readonly forwardAddress: string | undefined
    /** Whether this node can route purchases now (the ownership directory answers). */
    readonly ready: Effect.Effect<boolean>
  }
>()("mincommerce/cluster/SaleRouter") {
  static readonly make = (options: RouterOptions = {}) =>
    Layer.effect(
      SaleRouter,
      Effect.gen(function* () {
        const ownership = yield* Ownership
        const registry = yield* SaleRegistry
        const catalog = yield* Catalog
        const scope = yield* Effect.scope
        const retryAfterSeconds = options.retryAfterSeconds ?? 1
        // Work started from outside a fiber (a lost lease, a signal) runs with this node's
        // services, its logger included.
        const context = yield* Effect.context<never>()
        const runFork = Effect.runForkWith(context)

        /** Actors of sales this node owns right now. */
        const owned = new Map<SaleId, SaleActor>()
        /** Takeovers under way: lease, then epoch and state. Undefined: another node won. */
        const starting = new Map<
          SaleId,
          Deferred.Deferred<SaleActor | undefined, SaleNotFound | SqlError.SqlError>
        >()
        let shuttingDown = false

        const unavailable = (saleId: SaleId, reason: "no_owner" | "owner_unreachable" | "stopping") =>
          new PurchaseUnavailable({ saleId, reason, retryAfterSeconds })

        /** An owner's reply as this node's caller gets it; undefined for "not the owner". */
        const answerOf = (
          saleId: SaleId,
          code: number,
          value: unknown
        ): ActorReply | SaleNotFound | undefined => {
          const outcome = replyOutcome(code, value)
          if (outcome !== undefined) return outcome
          switch (code) {
            case Reply.SaleNotFound:
              return new SaleNotFound({ saleId })
            case Reply.Overloaded:
              return new Overloaded({ saleId, retryAfterSeconds: Number(value) || 1 })
            case Reply.Unavailable:
              return new PurchaseUnavailable({
                saleId,
                reason: value as PurchaseUnavailable["reason"],
                retryAfterSeconds
              })
          }
          return undefined
        }

        // A lost lease stops the actor at once; anything it commits from now on is checked
        // against the epoch, so a newer owner makes it harmless.
        ownership.onLost((saleId) => {
          const actor = owned.get(saleId)
          if (actor === undefined) return
          owned.delete(saleId)
          runFork(
            Effect.logWarning("lease lost; the sale's actor refuses what is queued and stops", {
              saleId,
              epoch: actor.epoch
            }).pipe(Effect.andThen(actor.relinquish))
          )
        })

        // When the actor ends (idle, fenced, failed, stopped), the lease goes back at once.
        const watch = (saleId: SaleId, actor: SaleActor) =>
          actor.stopped.pipe(
            Effect.andThen(
              Effect.suspend(() => {
                if (owned.get(saleId) === actor) owned.delete(saleId)
                // A newer actor of ours (or its takeover) keeps the lease.
                return owned.has(saleId) || starting.has(saleId) ? Effect.void : ownership.release(saleId)
              })
            )
          )

        const claim = (saleId: SaleId) =>
          Effect.gen(function* () {
            const won = yield* ownership.acquire(saleId).pipe(Effect.orElseSucceed(() => false))
            if (!won) return undefined
            const actor = yield* registry.actor(saleId).pipe(Effect.tapError(() => ownership.release(saleId)))
            owned.set(saleId, actor)
            yield* Effect.forkIn(watch(saleId, actor), scope)
            return actor
          })

        /** Becomes the sale's owner if nobody is; undefined when another node won the lease. */
        const takeOver = (saleId: SaleId) =>
          Effect.suspend(() => {
            const actor = owned.get(saleId)
            if (actor !== undefined) return Effect.succeed(actor)
            const inFlight = starting.get(saleId)
            if (inFlight !== undefined) return Deferred.await(inFlight)
            const done = Deferred.makeUnsafe<SaleActor | undefined, SaleNotFound | SqlError.SqlError>()
            starting.set(saleId, done)
            return Effect.exit(claim(saleId)).pipe(
              Effect.tap((exit) =>
                Effect.suspend(() => {
                  starting.delete(saleId)
                  return Deferred.done(done, exit)
                })
              ),
              Effect.andThen(Deferred.await(done))
            )
          })

        const peers =
          options.forward === undefined
            ? undefined
            : new Peers(options.forward.timeoutMillis, linkKey(options.forward.sharedSecret))

        const forward = (saleId: SaleId, userId: UserId, address: string) =>
          Effect.callback<ForwardResult>((resume) => {
            peers!.to(address).send(saleId, userId, (result) => resume(Effect.succeed(result)))
          })

        const route = (
          saleId: SaleId,
          userId: UserId,
          retried: boolean
        ): Effect.Effect<Outcome, PurchaseError> =>
          Effect.gen(function* () {
            const known = ownership.cached(saleId)
            const where =
              known ??
              (yield* ownership
                .lookup(saleId)
                .pipe(
                  Effect.catchTag("DirectoryUnavailable", () => Effect.fail(unavailable(saleId, "no_owner")))
                ))
            if (where._tag !== "Remote") {
              if (shuttingDown) return yield* unavailable(saleId, "stopping")
              const actor = yield* takeOver(saleId).pipe(
                Effect.catchTag("SqlError", () => Effect.fail(unavailable(saleId, "no_owner")))
              )
              if (actor !== undefined) return yield* actor.purchase(userId)
              // Another node won the lease in the meantime: ask again, once.
              ownership.forget(saleId)
              if (retried) return yield* unavailable(saleId, "no_owner")
              return yield* route(saleId, userId, true)
            }
            if (where.address === undefined || peers === undefined) {
              ownership.forget(saleId)
              return yield* unavailable(saleId, "no_owner")
            }
            const result = yield* forward(saleId, userId, where.address)
            if (result._tag === "Reply") {
              const answer = answerOf(saleId, result.code, result.value)
              if (answer instanceof SaleNotFound || (answer !== undefined && isRefusal(answer)))
                return yield* answer
              if (answer !== undefined) return answer
              // Not the owner (any more): look the owner up again and retry, once.
              ownership.forget(saleId)
              if (retried) return yield* unavailable(saleId, "no_owner")
              return yield* route(saleId, userId, true)
            }
            ownership.forget(saleId)
            // The owner never saw it: safe to look again and retry, once. An unanswered
            // message may have been decided: the caller is told the outcome is unknown.
            if (result._tag === "NotSent" && !retried) return yield* route(saleId, userId, true)
            return yield* unavailable(saleId, "owner_unreachable")
          })

        // The hot path: an owned sale goes straight to its actor, no lookup, no allocation.
        const purchase = (saleId: SaleId, userId: UserId): Effect.Effect<Outcome, PurchaseError> => {
          const actor = owned.get(saleId)
          if (actor !== undefined) return actor.purchase(userId)
          return route(saleId, userId, false)
        }

        // `route` for a caller outside any fiber: its answer, with SaleNotFound (impossible for
        // a sale that had an owner a moment ago) reported as a retryable refusal.
        const routeUnsafe = (saleId: SaleId, userId: UserId, reply: (answer: ActorReply) => void) =>
          Effect.runCallback(route(saleId, userId, true), {
            onExit: (exit) => {
              if (Exit.isSuccess(exit)) return reply(exit.value)
              const failure = Cause.findErrorOption(exit.cause)
              if (failure._tag === "Some" && failure.value._tag !== "SaleNotFound")
                return reply(failure.value)
              reply(unavailable(saleId, "no_owner"))
            }
          })

        // The fast path's remote twin: a sale owned elsewhere whose route is cached is sent in
        // the next frame without a fiber. Anything but a decision or a clean refusal (not the
        // owner any more, not sent) takes the full route, once.
        const forwarderFor = (saleId: SaleId) => {
          if (peers === undefined || shuttingDown) return undefined
          const where = ownership.cached(saleId)
          if (where === undefined || where._tag !== "Remote" || where.address === undefined) return undefined
          const connection = peers.to(where.address)
          return (userId: UserId, reply: (answer: ActorReply) => void) =>
            connection.send(saleId, userId, (result) => {
              if (result._tag === "Reply") {
                const answer = answerOf(saleId, result.code, result.value)
                if (answer instanceof SaleNotFound) return reply(unavailable(saleId, "no_owner"))
                if (answer !== undefined) return reply(answer)
              }
              ownership.forget(saleId)
              // An unanswered message may have been decided: its outcome is unknown, not retried.
              if (result._tag === "NoAnswer") return reply(unavailable(saleId, "owner_unreachable"))
              routeUnsafe(saleId, userId, reply)
            })
        }

        const replyWith = (replies: ForwardServer.Replies, requestId: unknown, answer: ActorReply) => {
          if (!isRefusal(answer)) {
            const [code, value] = outcomeReply(answer)
            return replies.send(requestId, code, value)
          }
          if (answer._tag === "Overloaded")
            return replies.send(requestId, Reply.Overloaded, answer.retryAfterSeconds)
          // An actor stopping (lease lost, handed over, idle) or fenced is no owner any more:
          // the sender looks the owner up again. Nothing was decided, so that is safe.
          if (answer.reason === "stopping" || answer.reason === "fenced")
            return replies.send(requestId, Reply.NotOwner, null)
          return replies.send(requestId, Reply.Unavailable, answer.reason)
        }

        // Forwarded purchases: decided here only while this node owns the sale. An owned sale
        // is offered to its actor without a fiber; the owner's decision rate is the ceiling.
        const answerForwarded: ForwardServer.ForwardHandler = (saleId, userId, requestId, replies) => {
          const sale = saleId as SaleId
          if (shuttingDown) return replies.send(requestId, Reply.NotOwner, null)
          const actor = owned.get(sale)
          if (actor !== undefined)
            return actor.offer(userId as UserId, (answer) => replyWith(replies, requestId, answer))
          const inFlight = starting.get(sale)
          if (inFlight === undefined) return replies.send(requestId, Reply.NotOwner, null)
          Effect.runCallback(Deferred.await(inFlight), {
            onExit: (exit) => {
              if (Exit.isSuccess(exit) && exit.value !== undefined)
                return exit.value.offer(userId as UserId, (answer) => replyWith(replies, requestId, answer))
              const failure = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
              if (failure?._tag === "Some" && failure.value._tag === "SaleNotFound")
                return replies.send(requestId, Reply.SaleNotFound, null)
              replies.send(requestId, Reply.NotOwner, null)
            }
          })
        }

        let forwardAddress: string | undefined
        if (options.forward !== undefined) {
          const { host, port, sharedSecret } = options.forward
          const listener = yield* Effect.acquireRelease(
            Effect.promise(() => ForwardServer.listen(host, port, linkKey(sharedSecret), answerForwarded)),
            (listener) => Effect.promise(() => listener.close())
          )
          forwardAddress = listener.address
          yield* ownership.advertise(listener.address)
          yield* Effect.addFinalizer(() => Effect.sync(() => peers?.closeAll()))
        }

        // Planned shutdown: take no sale and no forwarded purchase any more, drain every owned
        // actor (its buyers answered, its batch committed), then hand the leases back so
        // another node takes over at once. Purchases arriving here meanwhile are forwarded.
        let leaving: Promise<void> | undefined
        const handoff = Effect.promise(() => {
          leaving ??= Effect.runPromiseWith(context)(
            Effect.gen(function* () {
              shuttingDown = true
              const sales = [...owned.entries()]
              owned.clear()
              yield* Effect.forEach(
                sales,
                ([saleId, actor]) => Effect.andThen(actor.stop, ownership.release(saleId)),
                { concurrency: "unbounded", discard: true }
              )
            })
          )
          return leaving
        })
        yield* Effect.addFinalizer(() => handoff)
        if (options.handoffOnSignal === true) {
          // The HTTP server closes first and may wait for its connections; the sales need not.
          const onSignal = () => void runFork(handoff)
          yield* Effect.acquireRelease(
            Effect.sync(() => {
              process.once("SIGTERM", onSignal)
              process.once("SIGINT", onSignal)
            }),
            () =>
              Effect.sync(() => {
                process.off("SIGTERM", onSignal)
                process.off("SIGINT", onSignal)
              })
          )
        }

        // Watchers read the stock row at most this often per sale when the owner is elsewhere.
        const rowCache = new Map<SaleId, { readonly at: number; readonly snapshot: SaleSnapshot }>()
        const snapshot = (saleId: SaleId) =>
          Effect.suspend(() => {
            const now = Date.now()
            const actor = owned.get(saleId) ?? registry.running(saleId)
            if (actor !== undefined) {
              const view = actor.view(now)
              return Effect.succeed({
                saleId,
                status: view.status,
                total: view.total,
                remaining: view.remaining
              })
            }
            const cached = rowCache.get(saleId)
            if (cached !== undefined && now - cached.at < 250) return Effect.succeed(cached.snapshot)
            return catalog.sale(saleId).pipe(
              Effect.orDie,
              Effect.flatMap((row) => {
                if (row === undefined) return Effect.fail(new SaleNotFound({ saleId }))
                const fresh: SaleSnapshot = {
                  saleId,
                  status: statusAt({ ...row, remaining: row.available }, now),
                  total: row.total,
                  remaining: row.available
                }
                rowCache.set(saleId, { at: now, snapshot: fresh })
                return Effect.succeed(fresh)
              })
            )
          })

        return SaleRouter.of({
          purchase,
          localActor: (saleId) => owned.get(saleId),
          forwarderFor,
          snapshot,
          forwardAddress,
          ready: ownership.ready
        })
      })
    )
}

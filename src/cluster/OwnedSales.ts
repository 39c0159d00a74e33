import { Context, Deferred, Effect, Layer } from "effect"
import type { SqlError } from "effect/sql"
import type { SaleActor } from "../actors/SaleActor.ts"
import { SaleRegistry } from "../actors/SaleRegistry.ts"
import type { SaleNotFound } from "../domain/Errors.ts"
import type { SaleId } from "../domain/Ids.ts"
import { Leases } from "./Leases.ts"
import type { RedisUnavailable } from "./RedisConnection.ts"

// Another node took the lease: the actor stops at once; anything it still commits is checked
// against the epoch, so the newer owner makes it harmless.
const relinquish = (saleId: SaleId, actor: SaleActor) =>
  Effect.logWarning("lease lost; the sale's actor refuses what is queued and stops", {
    saleId,
    epoch: actor.epoch
  }).pipe(Effect.andThen(actor.relinquish))

/** Every actor drained (buyers answered, batches committed), then its lease given back. */
const drain = (leases: Leases["Service"], sales: ReadonlyArray<readonly [SaleId, SaleActor]>) =>
  Effect.forEach(sales, ([saleId, actor]) => Effect.andThen(actor.stop, leases.release(saleId)), {
    concurrency: "unbounded",
    discard: true
  })

/** Runs `make()`'s effect once, whoever asks first (a signal, the scope closing); later callers wait for it. */
const runOnce = (context: Context.Context<never>, make: () => Effect.Effect<void>) => {
  let done: Promise<void> | undefined
  return Effect.promise(() => (done ??= Effect.runPromiseWith(context)(Effect.suspend(make))))
}

export type TakeoverError = SaleNotFound | SqlError.SqlError | RedisUnavailable

/**
 * The sales this node owns: taken over on demand (lease first, then a fresh epoch in
 * PostgreSQL and the committed state, through SaleRegistry), given up when the lease is lost
 * or the actor ends, and handed over on a planned shutdown.
 */
export class OwnedSales extends Context.Service<
  OwnedSales,
  {
    /** The sale's actor while this node owns the sale and the actor runs. */
    readonly actor: (saleId: SaleId) => SaleActor | undefined
    /** A takeover under way: its actor, or undefined when another node won the lease. */
    readonly starting: (saleId: SaleId) => Effect.Effect<SaleActor | undefined, TakeoverError> | undefined
    /** Becomes the sale's owner if nobody is; undefined when another node holds the lease. */
    readonly takeOver: (saleId: SaleId) => Effect.Effect<SaleActor | undefined, TakeoverError>
    /** True once a handoff began: this node takes no sale any more. */
    readonly leaving: () => boolean
    /** Drains every owned actor (buyers answered, batches committed), then gives the leases back. */
    readonly handoff: Effect.Effect<void>
  }
>()("mincommerce/cluster/OwnedSales") {
  static readonly layer = Layer.effect(
    OwnedSales,
    Effect.gen(function* () {
      const leases = yield* Leases
      const registry = yield* SaleRegistry
      const scope = yield* Effect.scope
      const context = yield* Effect.context<never>()
      const runFork = Effect.runForkWith(context)
      const owned = new Map<SaleId, SaleActor>()
      const starting = new Map<SaleId, Deferred.Deferred<SaleActor | undefined, TakeoverError>>()
      let leaving = false

      leases.onLost((saleId) => {
        const actor = owned.get(saleId)
        if (actor === undefined) return
        owned.delete(saleId)
        runFork(relinquish(saleId, actor))
      })

      // When the actor ends (idle, fenced, failed, stopped), the lease goes back at once.
      const watch = (saleId: SaleId, actor: SaleActor) =>
        actor.stopped.pipe(
          Effect.andThen(
            Effect.suspend(() => {
              if (owned.get(saleId) === actor) owned.delete(saleId)
              // A newer actor of ours (or its takeover) keeps the lease.
              return owned.has(saleId) || starting.has(saleId) ? Effect.void : leases.release(saleId)
            })
          )
        )

      const claim = Effect.fnUntraced(function* (saleId: SaleId) {
        if (!(yield* leases.acquire(saleId))) return undefined
        const actor = yield* registry.actor(saleId).pipe(Effect.tapError(() => leases.release(saleId)))
        owned.set(saleId, actor)
        yield* Effect.forkIn(watch(saleId, actor), scope)
        return actor
      })

      const takeOver = (saleId: SaleId): Effect.Effect<SaleActor | undefined, TakeoverError> =>
        Effect.suspend(() => {
          const actor = owned.get(saleId)
          if (actor !== undefined) return Effect.succeed(actor)
          const inFlight = starting.get(saleId)
          if (inFlight !== undefined) return Deferred.await(inFlight)
          if (leaving) return Effect.succeed(undefined)
          const done = Deferred.makeUnsafe<SaleActor | undefined, TakeoverError>()
          starting.set(saleId, done)
          return Effect.exit(claim(saleId)).pipe(
            Effect.tap((exit) => Effect.suspend(() => (starting.delete(saleId), Deferred.done(done, exit)))),
            Effect.andThen(Deferred.await(done))
          )
        })

      const handoff = runOnce(context, () => {
        leaving = true
        const sales = [...owned.entries()]
        owned.clear()
        return drain(leases, sales)
      })
      yield* Effect.addFinalizer(() => handoff)

      return OwnedSales.of({
        actor: (saleId) => owned.get(saleId),
        starting: (saleId) => {
          const inFlight = starting.get(saleId)
          return inFlight === undefined ? undefined : Deferred.await(inFlight)
        },
        takeOver,
        leaving: () => leaving,
        handoff
      })
    })
  )
}

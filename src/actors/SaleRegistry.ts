import { Clock, Context, Deferred, Effect, Exit, Layer, Scope } from "effect"
import type { SqlError } from "effect/sql"
import type { SaleNotFound } from "../domain/Errors.ts"
import type { SaleId } from "../domain/Ids.ts"
import { OrderStore } from "../storage/OrderStore.ts"
import * as SaleActor from "./SaleActor.ts"

export interface RegistryOptions extends SaleActor.ActorOptions {
  /** An actor offered no purchase for this long is stopped (it restarts on demand). */
  readonly idleMillis: number
  /** How often idle and ended sales are looked for. */
  readonly sweepMillis?: number
}

interface Entry {
  readonly started: Deferred.Deferred<SaleActor.SaleActor, SaleNotFound | SqlError.SqlError>
  actor: SaleActor.SaleActor | undefined
}

/**
 * The actors of this node, one per sale: started on first use (recovering the sale from
 * PostgreSQL under a fresh epoch), stopped when idle or over, and all drained on shutdown.
 */
export class SaleRegistry extends Context.Service<
  SaleRegistry,
  {
    /** The sale's actor, started if it is not running. */
    readonly actor: (saleId: SaleId) => Effect.Effect<SaleActor.SaleActor, SaleNotFound | SqlError.SqlError>
    /** The actor if it is running here, without starting it. */
    readonly running: (saleId: SaleId) => SaleActor.SaleActor | undefined
    readonly runningSales: () => ReadonlyArray<SaleId>
    /** Drains and stops the sale's actor if it runs; the next use starts a fresh one. */
    readonly stop: (saleId: SaleId) => Effect.Effect<void>
  }
>()("mincommerce/actors/SaleRegistry") {
  static readonly make = (options: RegistryOptions) =>
    Layer.effect(
      SaleRegistry,
      Effect.gen(function* () {
        const store = yield* OrderStore
        const registryScope = yield* Effect.scope
        const entries = new Map<SaleId, Entry>()

        const start = Effect.fnUntraced(function* (saleId: SaleId, entry: Entry) {
          const scope = yield* Scope.fork(registryScope, "sequential")
          const exit = yield* Effect.exit(
            Effect.gen(function* () {
              const claim = yield* store.claim(saleId)
              return yield* SaleActor.make(claim, options)
            }).pipe(Scope.provide(scope), Effect.provideService(OrderStore, store))
          )
          if (Exit.isFailure(exit)) {
            entries.delete(saleId)
            yield* Scope.close(scope, exit)
            yield* Deferred.done(entry.started, exit)
            return
          }
          const actor = exit.value
          entry.actor = actor
          yield* Deferred.succeed(entry.started, actor)
          // When the actor ends for any reason, forget it and release its scope.
          yield* Effect.forkIn(
            actor.stopped.pipe(
              Effect.tap((reason) =>
                reason === "stopped"
                  ? Effect.void
                  : Effect.logWarning("sale actor stopped", { saleId, reason })
              ),
              Effect.andThen(
                Effect.suspend(() => {
                  if (entries.get(saleId) === entry) entries.delete(saleId)
                  return Scope.close(scope, Exit.void)
                })
              )
            ),
            registryScope
          )
        })

        const actor = (saleId: SaleId) =>
          Effect.suspend(() => {
            const existing = entries.get(saleId)
            if (existing?.actor !== undefined) return Effect.succeed(existing.actor)
            if (existing !== undefined) return Deferred.await(existing.started)
            const entry: Entry = { started: Deferred.makeUnsafe(), actor: undefined }
            entries.set(saleId, entry)
            return start(saleId, entry).pipe(Effect.andThen(Deferred.await(entry.started)))
          })

        const stop = (saleId: SaleId) =>
          Effect.suspend(() => {
            const entry = entries.get(saleId)
            return entry?.actor === undefined ? Effect.void : Effect.asVoid(entry.actor.stop)
          })

        // The actor records its own last offer, whichever path offered it; a queued purchase
        // also counts, so a sale whose decider is busy is never idle.
        const sweepMillis = options.sweepMillis ?? 5_000
        const sweep = Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          for (const [saleId, entry] of entries) {
            if (entry.actor === undefined) continue
            const view = entry.actor.view(now)
            const idleFor = view.mailboxDepth === 0 ? now - view.lastActiveAt : 0
            const over = view.status === "ended" || view.status === "cancelled"
            if ((over && idleFor >= sweepMillis) || idleFor >= options.idleMillis) {
              yield* Effect.forkIn(stop(saleId), registryScope)
            }
          }
        })
        yield* Effect.forkIn(sweep.pipe(Effect.delay(sweepMillis), Effect.forever), registryScope)

        // On shutdown every actor drains and flushes before the node lets go of the database.
        yield* Effect.addFinalizer(() =>
          Effect.forEach([...entries.keys()], stop, { concurrency: "unbounded", discard: true })
        )

        return SaleRegistry.of({
          actor,
          running: (saleId) => entries.get(saleId)?.actor,
          runningSales: () =>
            [...entries.entries()].filter(([, e]) => e.actor !== undefined).map(([id]) => id),
          stop
        })
      })
    )
}

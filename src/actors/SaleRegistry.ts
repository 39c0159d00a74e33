import { Clock, Context, Deferred, Effect, Exit, Layer, Scope } from "effect"
import type { SqlError } from "effect/sql"
import type { SaleNotFound } from "../domain/Errors.ts"
import type { SaleId } from "../domain/Ids.ts"
import { OrderStore } from "../storage/OrderStore.ts"
import * as Tracing from "../Tracing.ts"
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

/** What the registry's fibers share. */
interface Registry {
  readonly options: RegistryOptions
  readonly store: OrderStore["Service"]
  readonly scope: Scope.Scope
  readonly entries: Map<SaleId, Entry>
}

/**
 * Whether the sweep stops an actor: nobody offered to it for `idleMillis` (the actor records
 * every offer itself, whichever path offered it; a queued purchase counts as activity), or
 * the sale is over and nobody offered to it since the last sweep.
 */
export const isIdle = (view: SaleActor.SaleView, now: number, options: RegistryOptions): boolean => {
  // An actor keeps the deadlines of the holds it has: it stays until they are settled.
  if (view.heldOrders > 0) return false
  const idleFor = view.mailboxDepth === 0 ? now - view.lastActiveAt : 0
  const over = view.status === "ended" || view.status === "cancelled"
  return (over && idleFor >= (options.sweepMillis ?? 5_000)) || idleFor >= options.idleMillis
}

// When the actor ends for any reason, forget it and release its scope.
const forgetWhenStopped = (
  r: Registry,
  saleId: SaleId,
  entry: Entry,
  actor: SaleActor.SaleActor,
  scope: Scope.Closeable
) =>
  actor.stopped.pipe(
    Effect.tap((reason) =>
      reason === "stopped" ? Effect.void : Effect.logWarning("sale actor stopped", { saleId, reason })
    ),
    Effect.andThen(
      Effect.suspend(() => {
        if (r.entries.get(saleId) === entry) r.entries.delete(saleId)
        return Scope.close(scope, Exit.void)
      })
    )
  )

const start = Effect.fnUntraced(function* (r: Registry, saleId: SaleId, entry: Entry) {
  const scope = yield* Scope.fork(r.scope, "sequential")
  const exit = yield* Effect.exit(
    Effect.gen(function* () {
      const claim = yield* r.store.claim(saleId)
      return yield* SaleActor.make(claim, r.options)
    }).pipe(Scope.provide(scope), Effect.provideService(OrderStore, r.store))
  )
  if (Exit.isFailure(exit)) {
    r.entries.delete(saleId)
    yield* Scope.close(scope, exit)
    yield* Deferred.done(entry.started, exit)
    return
  }
  entry.actor = exit.value
  yield* Deferred.succeed(entry.started, exit.value)
  yield* Effect.forkIn(forgetWhenStopped(r, saleId, entry, exit.value, scope), r.scope)
})

const actorOf = (r: Registry, saleId: SaleId) =>
  Effect.suspend(() => {
    const existing = r.entries.get(saleId)
    if (existing?.actor !== undefined) return Effect.succeed(existing.actor)
    if (existing !== undefined) return Deferred.await(existing.started)
    const entry: Entry = { started: Deferred.makeUnsafe(), actor: undefined }
    r.entries.set(saleId, entry)
    return start(r, saleId, entry).pipe(Effect.andThen(Deferred.await(entry.started)))
  })

const stop = (r: Registry, saleId: SaleId) =>
  Effect.suspend(() => {
    const entry = r.entries.get(saleId)
    return entry?.actor === undefined ? Effect.void : Effect.asVoid(entry.actor.stop)
  })

const sweep = (r: Registry) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    for (const [saleId, entry] of r.entries) {
      if (entry.actor !== undefined && isIdle(entry.actor.view(now), now, r.options))
        yield* Effect.forkIn(stop(r, saleId), r.scope)
    }
  })

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
        const r: Registry = {
          // The tracer is the layer's: an actor started from any fiber traces alike.
          options: { ...options, startSpan: options.startSpan ?? (yield* Tracing.startSpan) },
          store: yield* OrderStore,
          scope: yield* Effect.scope,
          entries: new Map()
        }
        yield* Effect.forkIn(
          sweep(r).pipe(Effect.delay(options.sweepMillis ?? 5_000), Effect.forever),
          r.scope
        )
        // On shutdown every actor drains and flushes before the node lets go of the database.
        yield* Effect.addFinalizer(() =>
          Effect.forEach([...r.entries.keys()], (saleId) => stop(r, saleId), {
            concurrency: "unbounded",
            discard: true
          })
        )
        return SaleRegistry.of({
          actor: (saleId) => actorOf(r, saleId),
          running: (saleId) => r.entries.get(saleId)?.actor,
          runningSales: () =>
            [...r.entries.entries()].filter(([, e]) => e.actor !== undefined).map(([id]) => id),
          stop: (saleId) => stop(r, saleId)
        })
      })
    )
}

import { Context, Effect, Layer, Stream, SubscriptionRef } from "effect"
import type { SaleActor } from "../actors/SaleActor.ts"
import { SaleRegistry } from "../actors/SaleRegistry.ts"
import { statusAt, type SaleStatus } from "../actors/SaleState.ts"
import { SaleNotFound } from "../domain/Errors.ts"
import type { SaleId } from "../domain/Ids.ts"
import { Sales } from "../storage/Sales.ts"
import { OwnedSales } from "./OwnedSales.ts"

/** A sale's public state, as watchers (SSE, sale views) see it. */
export interface SaleSnapshot {
  readonly saleId: SaleId
  readonly status: SaleStatus
  readonly total: number
  readonly remaining: number
}

/** What a snapshot is computed from at a given time. */
interface Figures {
  readonly total: number
  readonly remaining: number
  readonly startsAt: number
  readonly endsAt: number
  readonly cancelled: boolean
}

/** A sale owned elsewhere is read from its committed stock row at most this often. */
const rowMillis = 250
/** Row reads kept for reuse; older ones are dropped once the cache holds this many. */
const rowCacheSize = 256

const snapshotOf = (saleId: SaleId, figures: Figures, now: number): SaleSnapshot => ({
  saleId,
  status: statusAt(figures, now),
  total: figures.total,
  remaining: figures.remaining
})

const sameSnapshot = (a: SaleSnapshot, b: SaleSnapshot) =>
  a.status === b.status && a.remaining === b.remaining && a.total === b.total

/** The figures' snapshot now, then again at each instant the clock alone changes its status. */
const overTime = (saleId: SaleId, figures: Figures): Stream.Stream<SaleSnapshot> =>
  Stream.suspend(() => {
    const now = Date.now()
    const next = [figures.startsAt, figures.endsAt].find((at) => at > now)
    const first = Stream.succeed(snapshotOf(saleId, figures, now))
    if (next === undefined || figures.cancelled) return first
    return first.pipe(
      Stream.concat(Stream.fromEffectDrain(Effect.sleep(next - now))),
      Stream.concat(Stream.suspend(() => overTime(saleId, figures)))
    )
  })

/**
 * Each sale's state for watchers, pushed: from the actor's published figures while this
 * node runs the sale, else from the committed stock row, read at most every 250 ms per sale
 * however many watch it.
 */
export class SaleWatch extends Context.Service<
  SaleWatch,
  {
    readonly snapshot: (saleId: SaleId) => Effect.Effect<SaleSnapshot, SaleNotFound>
    /** The current snapshot, then one per change (the actor's or the clock's). */
    readonly changes: (saleId: SaleId) => Stream.Stream<SaleSnapshot, SaleNotFound>
  }
>()("mincommerce/cluster/SaleWatch") {
  static readonly layer = Layer.effect(
    SaleWatch,
    Effect.gen(function* () {
      const owned = yield* OwnedSales
      const registry = yield* SaleRegistry
      const sales = yield* Sales
      const rows = new Map<SaleId, { readonly at: number; readonly figures: Figures }>()

      const localActor = (saleId: SaleId): SaleActor | undefined => owned.actor(saleId) ?? registry.running(saleId)

      const remember = (saleId: SaleId, at: number, figures: Figures) => {
        if (rows.size >= rowCacheSize)
          for (const [id, row] of rows) if (at - row.at >= rowMillis) rows.delete(id)
        rows.set(saleId, { at, figures })
      }

      const rowFigures = (saleId: SaleId) =>
        Effect.suspend(() => {
          const now = Date.now()
          const cached = rows.get(saleId)
          if (cached !== undefined && now - cached.at < rowMillis) return Effect.succeed(cached.figures)
          return sales.find(saleId).pipe(
            Effect.orDie,
            Effect.flatMap((row) => {
              if (row === undefined) return Effect.fail(new SaleNotFound({ saleId }))
              const figures: Figures = { ...row, remaining: row.available }
              remember(saleId, now, figures)
              return Effect.succeed(figures)
            })
          )
        })

      const figuresOf = (saleId: SaleId): Effect.Effect<Figures, SaleNotFound> => {
        const actor = localActor(saleId)
        return actor === undefined ? rowFigures(saleId) : SubscriptionRef.get(actor.figures)
      }

      // The actor's changes while it runs here, else one row read per period; each round
      // looks again, so a sale that moves to or from this node switches source by itself.
      const figures = (saleId: SaleId): Stream.Stream<Figures, SaleNotFound> =>
        Stream.suspend(() => {
          const actor = localActor(saleId)
          const round =
            actor === undefined
              ? Stream.fromEffect(rowFigures(saleId)).pipe(
                  Stream.concat(Stream.fromEffectDrain(Effect.sleep(rowMillis)))
                )
              : SubscriptionRef.changes(actor.figures).pipe(Stream.interruptWhen(actor.stopped))
          return round.pipe(Stream.concat(Stream.suspend(() => figures(saleId))))
        })

      return SaleWatch.of({
        snapshot: (saleId) => Effect.map(figuresOf(saleId), (f) => snapshotOf(saleId, f, Date.now())),
        changes: (saleId) =>
          figures(saleId).pipe(
            Stream.switchMap((f) => overTime(saleId, f)),
            Stream.changesWith(sameSnapshot)
          )
      })
    })
  )
}

import { Effect, Layer } from "effect"
import { OwnedSales } from "./OwnedSales.ts"
import { SaleWatch } from "./SaleWatch.ts"

/** How often each node looks for draws that are due and not done. */
const checkMillis = 1_000

/**
 * Makes sure every due draw has an owner to do it. A sale's owner draws on its own timer, but
 * a draw sale may have no owner at its draw time: its actor stopped while idle, or its node
 * died and nobody has asked for the sale since. Each node looks through the sales it knows of
 * (its views, in memory: no query) for draws that are due and not done, and offers to take
 * each over: the lease decides which node does (a live owner keeps it), and the owner's draw
 * itself is fenced and happens once. The owner's push of its figures ends the offers.
 */
export const DrawScheduler = {
  layer: Layer.effectDiscard(
    Effect.gen(function* () {
      const watch = yield* SaleWatch
      const owned = yield* OwnedSales
      const nudge = Effect.suspend(() => {
        if (owned.leaving()) return Effect.void
        return Effect.forEach(watch.dueDraws(Date.now()), (saleId) => Effect.ignore(owned.takeOver(saleId)), {
          concurrency: 4,
          discard: true
        })
      })
      yield* Effect.forkScoped(nudge.pipe(Effect.delay(checkMillis), Effect.forever))
    })
  )
}

import { Effect, Layer } from "effect"
import { Sales } from "../storage/Sales.ts"
import { OwnedSales } from "./OwnedSales.ts"

/** How often each node looks for draws that are due and not done. */
const checkMillis = 1_000

/**
 * Makes sure every due draw has an owner to do it. A sale's owner draws on its own timer, but
 * a draw sale may have no owner at its draw time: its actor stopped while idle, or its node
 * died and nobody has asked for the sale since. Each node looks in PostgreSQL for draws that
 * are due and not done and offers to take each over: the lease decides which node does (a
 * live owner keeps it), and the owner's draw itself is fenced and happens once.
 */
export const DrawScheduler = {
  layer: Layer.effectDiscard(
    Effect.gen(function* () {
      const sales = yield* Sales
      const owned = yield* OwnedSales
      const nudge = Effect.gen(function* () {
        if (owned.leaving()) return
        const due = yield* sales.dueDraws
        yield* Effect.forEach(due, (saleId) => Effect.ignore(owned.takeOver(saleId)), {
          concurrency: 4,
          discard: true
        })
      }).pipe(
        Effect.catchTag("SqlError", (error) => Effect.logWarning("looking for due draws failed", { error }))
      )
      yield* Effect.forkScoped(nudge.pipe(Effect.delay(checkMillis), Effect.forever))
    })
  )
}

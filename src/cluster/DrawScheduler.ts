import { Effect, Layer } from "effect"
import type { SaleId } from "../domain/Ids.ts"
import { Checkout } from "../storage/Checkout.ts"
import { OwnedSales } from "./OwnedSales.ts"
import { SaleWatch } from "./SaleWatch.ts"

/** How often each node looks for draws that are due and not done, and for holds left behind. */
const checkMillis = 1_000

/**
 * A hold this long past its deadline and still reserved has no owner expiring it (a live one
 * does within about 100 ms): its sale's owner died, or its actor stopped, and nobody has
 * asked for the sale since.
 */
const overdueMillis = 1_000

/**
 * Makes sure every due draw has an owner to do it. A sale's owner draws on its own timer, but
 * a draw sale may have no owner at its draw time: its actor stopped while idle, or its node
 * died and nobody has asked for the sale since. Each node looks through the sales it knows of
 * (its views, in memory: no query) for draws that are due and not done, and offers to take
 * each over: the lease decides which node does (a live owner keeps it), and the owner's draw
 * itself is fenced and happens once. The owner's push of its figures ends the offers.
 *
 * Holds are the same: a hold sale's owner expires its holds on its own timer, but if the
 * owner died with holds pending, nobody may ask for the sale again (it shows sold out). Each
 * owner says its next hold deadline on the views channel with its figures and every second;
 * a deadline a second overdue and not renewed makes every node that heard it offer to take
 * the sale over, and the new owner loads the pending holds and expires them at once. A node
 * just started (or a node alone, whose holds nobody else hears of) looks in PostgreSQL once,
 * at its start, for holds left overdue: no query while it serves.
 */
export const DrawScheduler = {
  layer: Layer.effectDiscard(
    Effect.gen(function* () {
      const watch = yield* SaleWatch
      const owned = yield* OwnedSales
      const checkout = yield* Checkout
      const takeOver = (saleIds: ReadonlyArray<SaleId>) =>
        Effect.forEach(
          saleIds.filter((saleId) => owned.actor(saleId) === undefined),
          (saleId) => Effect.ignore(owned.takeOver(saleId)),
          { concurrency: 4, discard: true }
        )
      const nudge = Effect.suspend(() => {
        if (owned.leaving()) return Effect.void
        const now = Date.now()
        return takeOver([...watch.dueDraws(now), ...watch.overdueHolds(now, overdueMillis)])
      })
      const leftBehind = checkout.overdue(overdueMillis).pipe(Effect.flatMap(takeOver), Effect.ignore)
      yield* Effect.forkScoped(
        leftBehind.pipe(Effect.andThen(nudge.pipe(Effect.delay(checkMillis), Effect.forever)))
      )
    })
  )
}

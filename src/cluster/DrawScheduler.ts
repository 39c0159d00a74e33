import { Effect, Layer } from "effect"
import type { SaleId } from "../domain/Ids.ts"
import { Sales } from "../storage/Sales.ts"
import { OwnedSales } from "./OwnedSales.ts"
import { SaleWatch } from "./SaleWatch.ts"

/** How often each node looks at the draws it knows of. */
const tickMillis = 1_000
/** While a due draw is not known done, PostgreSQL is asked again at most this often. */
const overdueRecheckMillis = 5_000

/**
 * Makes sure every due draw has an owner to do it. A sale's owner draws on its own timer, but
 * a draw sale may have no owner at its draw time: its actor stopped while idle, or its node
 * died and nobody has asked for the sale since. Each node knows the pending draws (read from
 * PostgreSQL at start and again after each catalog change it hears of, plus every draw sale it
 * has a view of) and, once one is due, offers to take it over: the lease decides which node
 * does (a live owner keeps it), and the owner's draw itself is fenced and happens once.
 *
 * PostgreSQL is read only at start, after a catalog change, and every few seconds while a due
 * draw is not known done: a node with no draw due reads nothing, so a crowd's reads stay free.
 */
export const DrawScheduler = {
  layer: Layer.effectDiscard(
    Effect.gen(function* () {
      const sales = yield* Sales
      const owned = yield* OwnedSales
      const watch = yield* SaleWatch
      const pending = new Map<SaleId, number>()
      let loadedRevision = -1
      let checkedAt = 0

      const reload = Effect.gen(function* () {
        const revision = watch.catalogRevision()
        const rows = yield* sales.pendingDraws
        pending.clear()
        for (const row of rows) pending.set(row.saleId, row.drawAt)
        loadedRevision = revision
        checkedAt = Date.now()
      })

      const tick = Effect.gen(function* () {
        if (owned.leaving()) return
        if (watch.catalogRevision() !== loadedRevision) yield* reload
        for (const draw of watch.draws()) {
          if (draw.drawn) pending.delete(draw.saleId)
          else pending.set(draw.saleId, draw.drawAt)
        }
        const now = Date.now()
        const due = [...pending].filter(([, drawAt]) => drawAt <= now).map(([saleId]) => saleId)
        if (due.length === 0) return
        if (now - checkedAt >= overdueRecheckMillis) {
          yield* reload
          return
        }
        yield* Effect.forEach(due, (saleId) => Effect.ignore(owned.takeOver(saleId)), {
          concurrency: 4,
          discard: true
        })
      }).pipe(
        Effect.catchTag("SqlError", (error) => Effect.logWarning("looking for due draws failed", { error }))
      )
      yield* Effect.forkScoped(tick.pipe(Effect.delay(tickMillis), Effect.forever))
    })
  )
}

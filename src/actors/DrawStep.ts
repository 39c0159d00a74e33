import { Cause, Effect, Exit } from "effect"
import type { SqlError } from "effect/sql"
import type { SaleNotFound, StaleEpoch } from "../domain/Errors.ts"
import type { SaleId } from "../domain/Ids.ts"
import type { DrawOutcome } from "../storage/OrderStore.ts"
import type { Decider } from "./Decider.ts"
import * as Phase from "./Phase.ts"
import * as Sale from "./SaleState.ts"

/** The draw's one write: fenced by the epoch, once per sale (OrderStore.draw). */
export type DrawCommit = (
  saleId: SaleId,
  epoch: number,
  at: number
) => Effect.Effect<DrawOutcome, SaleNotFound | StaleEpoch | SqlError.SqlError>

// How long a draw that failed on the database waits before it is tried again.
const drawRetryMillis = 1_000

/**
 * The draw, by the decider itself once the window has closed and every entry is settled: it
 * holds the mailbox for one transaction, while only repeats and late attempts arrive. A
 * fenced draw wrote nothing: the actor halts and the newer owner draws. A draw that failed
 * otherwise is tried again (the store returns the stored result if it went through).
 */
const runDraw = Effect.fnUntraced(function* (d: Decider, commitDraw: DrawCommit, now: number) {
  const exit = yield* Effect.exit(commitDraw(d.saleId, d.epoch, now))
  if (Exit.isSuccess(exit)) {
    ;[d.state] = Sale.decide(d.state, { _tag: "Drawn", ...exit.value, at: now })
    yield* Effect.logInfo("sale drawn", {
      saleId: d.saleId,
      epoch: d.epoch,
      winners: exit.value.winners.length,
      waiting: exit.value.waitingList.size
    })
    return
  }
  if (exit.cause.reasons.some((r) => Cause.isFailReason(r) && r.error._tag === "StaleEpoch")) {
    yield* Effect.logWarning("fenced at the draw: another owner holds a newer epoch; halting", {
      saleId: d.saleId,
      epoch: d.epoch
    })
    return (d.phase = Phase.transition(d.phase, "fence"))
  }
  yield* Effect.logWarning("draw failed; trying again", { saleId: d.saleId, cause: Cause.pretty(exit.cause) })
  d.drawRetryAt = now + drawRetryMillis
  d.wakeAfter(drawRetryMillis)
})

export const drawIfDue = (d: Decider, commitDraw: DrawCommit, now: number) =>
  Phase.decides(d.phase) && now >= d.drawRetryAt && Sale.drawDue(d.state, now)
    ? runDraw(d, commitDraw, now)
    : Effect.void

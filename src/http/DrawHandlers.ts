import { Effect } from "effect"
import type { SaleWatch } from "../cluster/SaleWatch.ts"
import type { SaleId, UserId } from "../domain/Ids.ts"
import type { DrawRecords, DrawSetup } from "../storage/DrawRecords.ts"
import { notADrawSale } from "./ApiErrors.ts"

const iso = (millis: number) => new Date(millis).toISOString()
const isoOrNull = (millis: number | null) => (millis === null ? null : iso(millis))

const setupOf = (records: DrawRecords["Service"], saleId: SaleId) =>
  Effect.flatMap(records.setup(saleId).pipe(Effect.orDie), (setup) =>
    setup === undefined ? Effect.fail(notADrawSale(saleId)) : Effect.succeed(setup)
  )

/**
 * Whoever asks about a draw makes this node watch the sale (a view, read once), so the node
 * also offers to own a draw that is due and whose owner is gone (see DrawScheduler).
 */
const watched = (watch: SaleWatch["Service"], saleId: SaleId) => Effect.ignore(watch.figures(saleId))

type EntryStatus = "none" | "entered" | "won" | "not_drawn"

// Places are positions in draw order: the first `units` won, the rest wait in that order.
const statusOf = (place: number | null, setup: DrawSetup): EntryStatus =>
  place === null || setup.units === null ? "entered" : place <= setup.units ? "won" : "not_drawn"

/** GET /api/sales/:saleId/entry: the signed-in buyer's entry, read from PostgreSQL (exact). */
export const entryView = (
  records: DrawRecords["Service"],
  watch: SaleWatch["Service"],
  saleId: SaleId,
  userId: UserId
) =>
  Effect.gen(function* () {
    const setup = yield* setupOf(records, saleId)
    yield* watched(watch, saleId)
    const entry = yield* records.entryOf(saleId, userId).pipe(Effect.orDie)
    // An entrant with an order won a unit: at the draw, or later from the waiting list when a
    // winner's hold ended unpaid.
    const status: EntryStatus =
      entry === undefined ? "none" : entry.ordered ? "won" : statusOf(entry.place, setup)
    return {
      saleId,
      status,
      drawAt: iso(setup.drawAt),
      drawnAt: isoOrNull(setup.drawnAt),
      entryId: entry?.entryId ?? null,
      enteredAt: entry === undefined ? null : iso(entry.enteredAt),
      orderId: status === "won" ? (entry?.entryId ?? null) : null,
      waitingListPlace:
        status === "not_drawn" && entry?.place != null && setup.units !== null
          ? entry.place - setup.units
          : null
    }
  })

/**
 * GET /api/sales/:saleId/draw: what anyone needs to check the draw. The entries, seed, winners
 * and waiting list appear only once it is done; before, the commitment and the draw time.
 */
export const drawView = (records: DrawRecords["Service"], watch: SaleWatch["Service"], saleId: SaleId) =>
  Effect.gen(function* () {
    const found = yield* records.published(saleId).pipe(Effect.orDie)
    if (found === undefined) return yield* notADrawSale(saleId)
    yield* watched(watch, saleId)
    const { setup, draw } = found
    const units = setup.units ?? 0
    const ordered =
      draw === undefined
        ? undefined
        : draw.entries
            .flatMap((e) => (e.place === null ? [] : [e]))
            .sort((a, b) => (a.place ?? 0) - (b.place ?? 0))
    return {
      saleId,
      drawAt: iso(setup.drawAt),
      commitment: setup.commitment,
      drawn: draw !== undefined,
      drawnAt: isoOrNull(setup.drawnAt),
      seed: setup.seed,
      units: setup.units,
      entriesHash: setup.entriesHash,
      entries: draw?.entries.map((e) => ({ userId: e.userId, entryId: e.entryId })) ?? null,
      winners: ordered?.slice(0, units).map((e) => e.userId) ?? null,
      waitingList: ordered?.slice(units).map((e) => e.userId) ?? null
    }
  })

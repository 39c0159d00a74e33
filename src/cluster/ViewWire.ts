import { Exit, Schema } from "effect"
import { Packr } from "msgpackr"
import type { SaleFigures } from "../actors/SaleActor.ts"
import type { OrderId, SaleId } from "../domain/Ids.ts"

/**
 * A sale's figures as its owner publishes them: what changes with purchases and cancels,
 * ordered by (epoch, version). The owner's epoch grows with each new owner (minted in
 * PostgreSQL) and the version with each change the owner makes, so comparing the pair tells
 * which of two views is newer, whichever path each took. The actor's own figures, as they are.
 */
export type PushedFigures = SaleFigures

/**
 * One message on the views channel, msgpack-packed (no JSON on the wire):
 *   [0, [[saleId, epoch, version, total, remaining, startsAt, endsAt, cancelled, drawAt?, drawn?], …]]
 *                                       figures (a draw sale adds its draw time and whether drawn)
 *   [1, saleId | null, fencedUpTo]      the admin changed the sale (null: a product), fencing
 *                                       its owners up to that epoch
 *   [2, saleId, orderId, status]        a held order's row was paid or cancelled: its owner,
 *                                       wherever it runs, brings its book in line
 *   [3, [[saleId, dueAt | null], …]]    the owner's next hold deadline per sale (null: none
 *                                       held), so any node can see holds left behind
 */
const FiguresTuple = Schema.Tuple([
  Schema.String.pipe(Schema.brand("SaleId")),
  Schema.Number,
  Schema.Number,
  Schema.Number,
  Schema.Number,
  Schema.Number,
  Schema.Number,
  Schema.Boolean,
  Schema.optionalKey(Schema.Number),
  Schema.optionalKey(Schema.Boolean)
])
const Message = Schema.Union([
  Schema.Tuple([Schema.Literal(0), Schema.Array(FiguresTuple)]),
  Schema.Tuple([Schema.Literal(1), Schema.NullOr(Schema.String.pipe(Schema.brand("SaleId"))), Schema.Number]),
  Schema.Tuple([
    Schema.Literal(3),
    Schema.Array(Schema.Tuple([Schema.String.pipe(Schema.brand("SaleId")), Schema.NullOr(Schema.Number)]))
  ]),
  Schema.Tuple([
    Schema.Literal(2),
    Schema.String.pipe(Schema.brand("SaleId")),
    Schema.String.pipe(Schema.brand("OrderId")),
    Schema.Literals(["paid", "cancelled"])
  ])
])
const decodeMessage = Schema.decodeUnknownExit(Message)

const packr = new Packr({ useRecords: false, moreTypes: false })

export const packFigures = (views: ReadonlyArray<PushedFigures>): Buffer =>
  packr.pack([
    0,
    views.map((f) =>
      f.drawAt === undefined
        ? [f.saleId, f.epoch, f.version, f.total, f.remaining, f.startsAt, f.endsAt, f.cancelled]
        : [
            f.saleId,
            f.epoch,
            f.version,
            f.total,
            f.remaining,
            f.startsAt,
            f.endsAt,
            f.cancelled,
            f.drawAt,
            f.drawn
          ]
    )
  ])

export const packCatalogChange = (saleId: SaleId | undefined, fencedUpTo: number): Buffer =>
  packr.pack([1, saleId ?? null, fencedUpTo])

export const packSettled = (saleId: SaleId, orderId: OrderId, status: "paid" | "cancelled"): Buffer =>
  packr.pack([2, saleId, orderId, status])

/** Each sale's next hold deadline as its owner has it; null when it holds nothing. */
export const packHolds = (holds: ReadonlyArray<readonly [SaleId, number | null]>): Buffer =>
  packr.pack([3, holds])

export type ViewMessage =
  | { readonly _tag: "Holds"; readonly holds: ReadonlyArray<readonly [SaleId, number | null]> }
  | {
      readonly _tag: "Settled"
      readonly saleId: SaleId
      readonly orderId: OrderId
      readonly status: "paid" | "cancelled"
    }
  | { readonly _tag: "Figures"; readonly views: ReadonlyArray<PushedFigures> }
  | { readonly _tag: "CatalogChanged"; readonly saleId: SaleId | undefined; readonly fencedUpTo: number }

/** A message from the channel, decoded; undefined for anything that is not one (ignored). */
export const unpackMessage = (bytes: Buffer): ViewMessage | undefined => {
  let raw: unknown
  try {
    raw = packr.unpack(bytes)
  } catch {
    return undefined
  }
  const decoded = decodeMessage(raw)
  if (Exit.isFailure(decoded)) return undefined
  const message = decoded.value
  if (message[0] === 1)
    return { _tag: "CatalogChanged", saleId: message[1] ?? undefined, fencedUpTo: message[2] }
  if (message[0] === 3) return { _tag: "Holds", holds: message[1] }
  if (message[0] === 2)
    return { _tag: "Settled", saleId: message[1], orderId: message[2], status: message[3] }
  return {
    _tag: "Figures",
    views: message[1].map(
      ([saleId, epoch, version, total, remaining, startsAt, endsAt, cancelled, drawAt, drawn]) => ({
        saleId: saleId as SaleId,
        epoch,
        version,
        total,
        remaining,
        startsAt,
        endsAt,
        cancelled,
        drawAt,
        drawn: drawn ?? false
      })
    )
  }
}

import { Exit, Schema } from "effect"
import { Packr } from "msgpackr"
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import { Overloaded, PurchaseUnavailable, SaleNotFound } from "../domain/Errors.ts"
import type { OrderId, SaleId } from "../domain/Ids.ts"
import type { Outcome } from "../domain/Outcome.ts"
import type { RoutedReply } from "../domain/Reply.ts"

/**
 * The wire between nodes: length-prefixed msgpack frames (4-byte big-endian length, then
 * the packed body). A frame carries many messages as one flat array, so everything queued
 * for a peer in one turn of the event loop goes out in one write.
 *
 * Request frame: [[requestId, saleId, userId], [requestId, saleId, userId], …]; a traced
 * purchase adds its trace id and the sending span's id: [requestId, saleId, userId, traceId, spanId].
 * Reply frame:   [[requestId, code, value], [requestId, code, value], …]
 *
 * A peer's frames are decoded with the schemas below, never trusted as they come: a frame
 * that does not decode ends the connection.
 *
 * A connection opens with a handshake, so only a node holding the cluster's key can have
 * purchases decided (a forwarded purchase names its buyer and carries no token): the owner
 * sends [challenge] (16 random bytes), the caller answers [proof], HMAC-SHA256 of the
 * challenge under the link key, and the owner says [true]; only then does the caller send its
 * first request frame. The owner cuts off a caller whose first frame is anything else.
 */

/** What an owner answers for one forwarded purchase. */
export const Reply = {
  /** value: "orderId", or "orderId payBy" (epoch ms) for an order held until then */
  Accepted: 0,
  /** value: as Accepted's */
  AlreadyPurchased: 1,
  SoldOut: 2,
  NotStarted: 3,
  Ended: 4,
  Cancelled: 5,
  SaleNotFound: 6,
  /** value: seconds to wait */
  Overloaded: 7,
  /** value: the reason (a PurchaseUnavailable reason) */
  Unavailable: 8,
  /** This node does not own the sale (any more): look the owner up again. */
  NotOwner: 9,
  /** value: "entryId enteredAt drawAt" (the times in epoch ms) */
  Entered: 10,
  /** value: the waiting-list place */
  NotDrawn: 11,
  /** value: the buyer's order whose hold lapsed unpaid (the sale sells once per buyer) */
  Lapsed: 12
} as const
export type ReplyCode = (typeof Reply)[keyof typeof Reply]

// Ids on the link are branded, not checked as UUIDs again: only a node that proved the
// cluster's key sends them, and it decoded them from its own request first. Decoding a frame
// stays a fraction of a microsecond per message, beside the owner's few for its decision.
const LinkSaleId = Schema.String.pipe(Schema.brand("SaleId"))
const LinkUserId = Schema.String.pipe(Schema.brand("UserId"))

/** A forwarded purchase as it travels: request id, sale id, buyer id. */
export const RequestFrame = Schema.Array(Schema.Tuple([Schema.Number, LinkSaleId, LinkUserId]))
/** The same, where some purchases carry their trace: trace id and the sending span's id. */
export const TracedRequestFrame = Schema.Array(
  Schema.Tuple([
    Schema.Number,
    LinkSaleId,
    LinkUserId,
    Schema.optionalKey(Schema.String),
    Schema.optionalKey(Schema.String)
  ])
)
export type ForwardRequest = (typeof TracedRequestFrame.Type)[number]

const replyCodes = Object.values(Reply)
/** An owner's answers: request id, reply code, the code's value. */
export const ReplyFrame = Schema.Array(
  Schema.Tuple([
    Schema.Number,
    Schema.Literals(replyCodes),
    Schema.Union([Schema.String, Schema.Number, Schema.Null])
  ])
)
export type ForwardReply = (typeof ReplyFrame.Type)[number]

const decodeUntraced = Schema.decodeUnknownExit(RequestFrame)
const decodeTraced = Schema.decodeUnknownExit(TracedRequestFrame)
/**
 * A request frame's purchases. Nearly every frame carries no trace and decodes as the short
 * form, at its cost; only one that does not is decoded again in the longer form.
 */
export const decodeRequests = (
  frame: unknown
): Exit.Exit<ReadonlyArray<ForwardRequest>, Schema.SchemaError> => {
  const untraced = decodeUntraced(frame)
  return Exit.isSuccess(untraced) ? untraced : decodeTraced(frame)
}
export const decodeReplies = Schema.decodeUnknownExit(ReplyFrame)

const packr = new Packr({ useRecords: false, moreTypes: false })

export const encodeFrame = (messages: ReadonlyArray<unknown>): Buffer => {
  const body = packr.pack(messages)
  const frame = Buffer.allocUnsafe(4 + body.length)
  frame.writeUInt32BE(body.length, 0)
  body.copy(frame, 4)
  return frame
}

/**
 * Largest frame taken before the handshake is done: the challenge and its proof fit in far
 * less, so a stranger can make a node buffer a kilobyte, not the size it announces.
 */
export const handshakeFrameBytes = 1024
/** Largest frame taken from a proven peer: a bound on what a broken peer can make us buffer. */
export const maxFrameBytes = 8 * 1024 * 1024
/** Messages per frame at most, so a burst queued in one turn stays far below `maxFrameBytes`. */
export const maxFrameMessages = 10_000

/** `messages` as frames of at most `maxFrameMessages` each, joined for one write. */
export const encodeFrames = (messages: ReadonlyArray<unknown>): Buffer => {
  if (messages.length <= maxFrameMessages) return encodeFrame(messages)
  const frames: Array<Buffer> = []
  for (let i = 0; i < messages.length; i += maxFrameMessages)
    frames.push(encodeFrame(messages.slice(i, i + maxFrameMessages)))
  return Buffer.concat(frames)
}

/**
 * Cuts a byte stream into frames and hands each decoded body to `onFrame`. A large frame
 * arrives in many chunks: they are kept apart and joined once, when the frame is complete.
 */
export class FrameReader {
  private chunks: Array<Buffer> = []
  private buffered = 0
  /** Length of the frame being received, once its header is in. */
  private needed = -1
  private readonly onFrame: (messages: ReadonlyArray<unknown>) => void
  /** The largest frame taken now; a reader raises it once its peer is proven. */
  limit: number
  constructor(onFrame: (messages: ReadonlyArray<unknown>) => void, limit = maxFrameBytes) {
    this.onFrame = onFrame
    this.limit = limit
  }

  push(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.buffered += chunk.length
    while (true) {
      if (this.needed < 0) {
        if (this.buffered < 4) return
        const head = this.take(4)
        this.needed = head.readUInt32BE(0)
        if (this.needed > this.limit) throw new Error(`frame of ${this.needed} bytes is over the limit`)
      }
      if (this.buffered < this.needed) return
      const body = this.take(this.needed)
      this.needed = -1
      this.onFrame(packr.unpack(body) as ReadonlyArray<unknown>)
    }
  }

  /** The next `length` bytes (all buffered), joined only when they span chunks. */
  private take(length: number): Buffer {
    const first = this.chunks[0]
    let taken: Buffer
    if (first !== undefined && first.length >= length) {
      taken = first.subarray(0, length)
      if (first.length === length) this.chunks.shift()
      else this.chunks[0] = first.subarray(length)
    } else {
      const all = Buffer.concat(this.chunks, this.buffered)
      taken = all.subarray(0, length)
      this.chunks = all.length === length ? [] : [all.subarray(length)]
    }
    this.buffered -= length
    return taken
  }
}

/** The key that proves a node belongs to the cluster: derived from the secret all its nodes share. */
export const linkKey = (sharedSecret: Uint8Array): Buffer =>
  createHmac("sha256", sharedSecret).update("mincommerce forward link").digest()

export const newChallenge = (): Buffer => randomBytes(16)

export const proofOf = (key: Uint8Array, challenge: Uint8Array): Buffer =>
  createHmac("sha256", key).update(challenge).digest()

/** Whether `proof` (as unpacked from a frame) answers `challenge` under `key`. */
export const proves = (key: Uint8Array, challenge: Uint8Array, proof: unknown): boolean => {
  if (!(proof instanceof Uint8Array)) return false
  const expected = proofOf(key, challenge)
  return proof.length === expected.length && timingSafeEqual(proof, expected)
}

/** An outcome as a reply code and value. */
export const outcomeReply = (outcome: Outcome): readonly [ReplyCode, string | number | null] => {
  switch (outcome._tag) {
    case "Accepted":
    case "AlreadyPurchased":
      if (outcome._tag === "AlreadyPurchased" && outcome.lapsed === true)
        return [Reply.Lapsed, outcome.orderId]
      return [
        outcome._tag === "Accepted" ? Reply.Accepted : Reply.AlreadyPurchased,
        outcome.payBy === undefined ? outcome.orderId : `${outcome.orderId} ${outcome.payBy}`
      ]
    case "SoldOut":
      return [Reply.SoldOut, null]
    case "NotStarted":
      return [Reply.NotStarted, outcome.startsAt]
    case "Ended":
      return [Reply.Ended, null]
    case "Cancelled":
      return [Reply.Cancelled, null]
    case "Entered":
      return [Reply.Entered, `${outcome.entryId} ${outcome.enteredAt} ${outcome.drawAt}`]
    case "NotDrawn":
      return [Reply.NotDrawn, outcome.place]
  }
}

const enteredOutcome = (value: ForwardReply[2]): Outcome => {
  const [entryId, enteredAt, drawAt] = String(value).split(" ")
  return {
    _tag: "Entered",
    entryId: (entryId ?? "") as OrderId,
    enteredAt: Number(enteredAt),
    drawAt: Number(drawAt)
  }
}

// "orderId" for a final order, "orderId payBy" for a held one.
const orderOutcome = (tag: "Accepted" | "AlreadyPurchased", value: ForwardReply[2]): Outcome => {
  const text = String(value)
  const space = text.indexOf(" ")
  if (space === -1) return { _tag: tag, orderId: text as OrderId }
  return { _tag: tag, orderId: text.slice(0, space) as OrderId, payBy: Number(text.slice(space + 1)) }
}

/** The owner does not own the sale (any more): the sender looks the owner up again. */
export class NotOwner extends Schema.TaggedError<NotOwner>()("NotOwner", {}) {}
const notOwner = new NotOwner()

const isUnavailableReason = Schema.is(PurchaseUnavailable.fields.reason)

/** What one decoded reply says for the sale it was asked about. */
export const replyAnswer = (
  saleId: SaleId,
  code: ReplyCode,
  value: ForwardReply[2]
): RoutedReply | NotOwner => {
  const outcome = replyOutcome(code, value)
  if (outcome !== undefined) return outcome
  switch (code) {
    case Reply.SaleNotFound:
      return new SaleNotFound({ saleId })
    case Reply.Overloaded:
      return new Overloaded({ saleId, retryAfterSeconds: typeof value === "number" ? value : 1 })
    case Reply.Unavailable:
      return new PurchaseUnavailable({
        saleId,
        reason: isUnavailableReason(value) ? value : "owner_unreachable",
        retryAfterSeconds: 1
      })
    default:
      return notOwner
  }
}

/** The outcome a reply carries, or undefined when the reply is an error code. */
export const replyOutcome = (code: ReplyCode, value: ForwardReply[2]): Outcome | undefined => {
  switch (code) {
    case Reply.Accepted:
      return orderOutcome("Accepted", value)
    case Reply.AlreadyPurchased:
      return orderOutcome("AlreadyPurchased", value)
    case Reply.Lapsed:
      return { _tag: "AlreadyPurchased", orderId: String(value) as OrderId, lapsed: true }
    case Reply.SoldOut:
      return { _tag: "SoldOut" }
    case Reply.NotStarted:
      return { _tag: "NotStarted", startsAt: Number(value) }
    case Reply.Ended:
      return { _tag: "Ended" }
    case Reply.Cancelled:
      return { _tag: "Cancelled" }
    case Reply.Entered:
      return enteredOutcome(value)
    case Reply.NotDrawn:
      return { _tag: "NotDrawn", place: Number(value) }
    default:
      return undefined
  }
}

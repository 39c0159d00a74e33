import { Exit, Schema } from "effect"
import { connect, type Socket } from "node:net"
import type { SaleId, UserId } from "../domain/Ids.ts"
import type { RoutedReply } from "../domain/Reply.ts"
import {
  decodeReplies,
  encodeFrame,
  encodeFrames,
  FrameReader,
  handshakeFrameBytes,
  maxFrameBytes,
  proofOf,
  replyAnswer,
  type NotOwner
} from "./Frames.ts"

/** The owner cannot have seen the purchase (no connection): looking again and retrying is safe. */
export class NotSent extends Schema.TaggedError<NotSent>()("NotSent", { address: Schema.String }) {}

/** The purchase left but no answer came in time: it may have been decided. */
export class NoAnswer extends Schema.TaggedError<NoAnswer>()("NoAnswer", { address: Schema.String }) {}

/** How a forwarded purchase ended: the owner's answer, or why there is none. */
export type ForwardResult = RoutedReply | NotOwner | NotSent | NoAnswer

type Resume = (result: ForwardResult) => void

interface Pending {
  readonly saleId: SaleId
  readonly resume: Resume
  /** Set when the purchase leaves. */
  deadline: number
}

/**
 * One persistent TCP connection to a peer node, usable once it has answered the owner's
 * challenge with `key` (see Frames). Messages queued in one turn of the event loop leave in
 * one frame; every message waits at most `timeoutMillis` for its reply. A lost connection
 * fails what was in flight and is re-opened on the next send, after a backoff that doubles
 * on each failure (fast failures meanwhile, never a hang).
 */
export class PeerConnection {
  private socket: Socket | undefined
  private connected = false
  /** The current socket answered its owner's challenge and waits for the owner to take it. */
  private proofSent = false
  private failures = 0
  private retryAt = 0
  private nextId = 1
  private outbox: Array<
    readonly [number, string, string] | readonly [number, string, string, string, string]
  > = []
  private outboxPending: Array<Pending> = []
  private flushScheduled = false
  private readonly pending = new Map<number, Pending>()
  private readonly sweeper: NodeJS.Timeout
  private closed = false
  private readonly notSent: NotSent
  private readonly noAnswer: NoAnswer
  readonly address: string
  private readonly timeoutMillis: number
  private readonly key: Uint8Array

  constructor(address: string, timeoutMillis: number, key: Uint8Array) {
    this.address = address
    this.timeoutMillis = timeoutMillis
    this.key = key
    this.notSent = new NotSent({ address })
    this.noAnswer = new NoAnswer({ address })
    this.sweeper = setInterval(() => this.expire(), Math.max(10, Math.min(100, timeoutMillis / 4)))
    this.sweeper.unref()
  }

  /** When a purchase was last sent here: a link unused for long is closed (its node may be gone). */
  lastUsed = Date.now()

  /** Nothing waits for an answer on this link. */
  get idle(): boolean {
    return this.pending.size === 0 && this.outbox.length === 0
  }

  /** `trace`: a traced purchase's trace id and sending span id, carried to the owner. */
  send(saleId: SaleId, userId: UserId, resume: Resume, trace?: readonly [string, string]): void {
    if (this.closed) return resume(this.notSent)
    this.lastUsed = Date.now()
    this.outbox.push(
      trace === undefined
        ? [this.nextId++, saleId, userId]
        : [this.nextId++, saleId, userId, trace[0], trace[1]]
    )
    this.outboxPending.push({ saleId, resume, deadline: 0 })
    if (!this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(() => this.flush())
    }
  }

  close(): void {
    this.closed = true
    clearInterval(this.sweeper)
    this.socket?.destroy()
    this.failAll()
  }

  private flush(): void {
    this.flushScheduled = false
    if (this.outbox.length === 0) return
    const socket = this.socket
    if (!this.connected || socket === undefined) {
      if (socket === undefined && Date.now() >= this.retryAt) this.open()
      // Still connecting: the frame leaves once connected; in backoff: fail fast.
      if (this.socket === undefined) this.failOutbox()
      return
    }
    const deadline = Date.now() + this.timeoutMillis
    this.outbox.forEach(([requestId], i) => {
      const waiting = this.outboxPending[i]
      if (waiting === undefined) return
      waiting.deadline = deadline
      this.pending.set(requestId, waiting)
    })
    const frame = encodeFrames(this.outbox)
    this.outbox = []
    this.outboxPending = []
    socket.write(frame)
  }

  private open(): void {
    const colon = this.address.lastIndexOf(":")
    const socket = connect({
      host: this.address.slice(0, colon),
      port: Number(this.address.slice(colon + 1)),
      noDelay: true
    })
    this.socket = socket
    this.proofSent = false
    // Until the owner took the proof, what it sends is a challenge or a yes: small.
    const reader = new FrameReader((frame) => {
      if (!this.connected) {
        this.handshake(socket, frame[0])
        if (this.connected) reader.limit = maxFrameBytes
        return
      }
      this.answer(socket, frame)
    }, handshakeFrameBytes)
    // Nothing may wait longer than its timeout, a connection attempt and handshake included.
    socket.setTimeout(this.timeoutMillis, () => {
      if (!this.connected) socket.destroy()
    })
    socket.on("data", (chunk: Buffer) => {
      try {
        reader.push(chunk)
      } catch {
        socket.destroy()
      }
    })
    socket.on("error", () => {})
    socket.on("close", () => {
      if (this.socket !== socket) return
      this.socket = undefined
      this.connected = false
      this.failures++
      this.retryAt = Date.now() + Math.min(2_000, 50 * 2 ** Math.min(this.failures, 6))
      this.failAll()
    })
  }

  /** A reply frame: each answer to its waiting purchase; a frame that does not decode ends the link. */
  private answer(socket: Socket, frame: unknown): void {
    const replies = decodeReplies(frame)
    if (Exit.isFailure(replies)) return void socket.destroy()
    for (const [requestId, code, value] of replies.value) {
      const waiting = this.pending.get(requestId)
      if (waiting === undefined) continue // timed out already
      this.pending.delete(requestId)
      waiting.resume(replyAnswer(waiting.saleId, code, value))
    }
  }

  /**
   * The owner's first frame is its challenge, answered with the proof; its second says the
   * proof was taken. Only then does a request leave, so an owner that refuses the key has
   * seen none (they fail as not sent).
   */
  private handshake(socket: Socket, first: unknown): void {
    if (!this.proofSent) {
      if (!(first instanceof Uint8Array)) return void socket.destroy()
      socket.write(encodeFrame([proofOf(this.key, first)]))
      this.proofSent = true
      return
    }
    if (first !== true) return void socket.destroy()
    socket.setTimeout(0)
    this.connected = true
    this.failures = 0
    this.flush()
  }

  private failOutbox(): void {
    const waiting = this.outboxPending
    this.outbox = []
    this.outboxPending = []
    for (const entry of waiting) entry.resume(this.notSent)
  }

  private failAll(): void {
    this.failOutbox()
    const waiting = [...this.pending.values()]
    this.pending.clear()
    for (const entry of waiting) entry.resume(this.noAnswer)
  }

  private expire(): void {
    if (this.pending.size === 0) return
    const now = Date.now()
    for (const [requestId, entry] of this.pending) {
      if (entry.deadline > now) continue
      this.pending.delete(requestId)
      entry.resume(this.noAnswer)
    }
  }
}

/** A link nothing was sent on for this long is closed; the next purchase opens it again. */
const unusedMillis = 60_000

/**
 * One connection per peer address, opened on first use, each proving `key` to its owner.
 * Links unused for a minute are closed, so addresses of nodes long gone do not pile up.
 */
export class Peers {
  private readonly connections = new Map<string, PeerConnection>()
  private readonly timeoutMillis: number
  private readonly key: Uint8Array
  private readonly sweeper: NodeJS.Timeout
  constructor(timeoutMillis: number, key: Uint8Array) {
    this.timeoutMillis = timeoutMillis
    this.key = key
    this.sweeper = setInterval(() => this.closeUnused(), unusedMillis / 4)
    this.sweeper.unref()
  }

  private closeUnused(): void {
    const horizon = Date.now() - unusedMillis
    for (const [address, connection] of this.connections) {
      if (connection.lastUsed > horizon || !connection.idle) continue
      connection.close()
      this.connections.delete(address)
    }
  }

  to(address: string): PeerConnection {
    let connection = this.connections.get(address)
    if (connection === undefined) {
      connection = new PeerConnection(address, this.timeoutMillis, this.key)
      this.connections.set(address, connection)
    }
    return connection
  }

  closeAll(): void {
    clearInterval(this.sweeper)
    for (const connection of this.connections.values()) connection.close()
    this.connections.clear()
  }
}

import { connect, type Socket } from "node:net"
import { encodeFrame, FrameReader, proofOf } from "./Frames.ts"

/**
 * How a forwarded purchase ended on the wire: the owner's reply, or a failure that says
 * whether the owner can have seen the message ("not_sent": it cannot; "no_answer": it may).
 */
export type ForwardResult =
  | { readonly _tag: "Reply"; readonly code: number; readonly value: unknown }
  | { readonly _tag: "NotSent" }
  | { readonly _tag: "NoAnswer" }

type Resume = (result: ForwardResult) => void

interface Pending {
  readonly resume: Resume
  readonly deadline: number
}

const notSent: ForwardResult = { _tag: "NotSent" }
const noAnswer: ForwardResult = { _tag: "NoAnswer" }

/**
 * One persistent TCP connection to a peer node, usable once it has answered the owner's
 * challenge with `key` (see Frames). Messages queued in one turn of the event loop leave in
 * one frame; every message waits at most `timeoutMillis` for its reply. A lost
 * connection fails what was in flight and is re-opened on the next send, after a backoff
 * that doubles on each failure (fast failures meanwhile, never a hang).
 */
export class PeerConnection {
  private socket: Socket | undefined
  private connected = false
  /** The current socket answered its owner's challenge and waits for the owner to take it. */
  private proofSent = false
  private failures = 0
  private retryAt = 0
  private nextId = 1
  private outbox: Array<unknown> = []
  private outboxResumes: Array<Resume> = []
  private outboxIds: Array<number> = []
  private flushScheduled = false
  private readonly pending = new Map<number, Pending>()
  private readonly sweeper: NodeJS.Timeout
  private closed = false
  readonly address: string
  private readonly timeoutMillis: number
  private readonly key: Uint8Array

  constructor(address: string, timeoutMillis: number, key: Uint8Array) {
    this.address = address
    this.timeoutMillis = timeoutMillis
    this.key = key
    this.sweeper = setInterval(() => this.expire(), Math.max(10, Math.min(100, timeoutMillis / 4)))
    this.sweeper.unref()
  }

  send(saleId: string, userId: string, resume: Resume): void {
    if (this.closed) return resume(notSent)
    const requestId = this.nextId++
    this.outbox.push(requestId, saleId, userId)
    this.outboxIds.push(requestId)
    this.outboxResumes.push(resume)
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
    if (this.outboxIds.length === 0) return
    if (!this.connected) {
      if (this.socket === undefined && Date.now() >= this.retryAt) this.open()
      // Still connecting: the frame leaves once connected; in backoff: fail fast.
      if (this.socket === undefined) this.failOutbox()
      return
    }
    const deadline = Date.now() + this.timeoutMillis
    for (let i = 0; i < this.outboxIds.length; i++)
      this.pending.set(this.outboxIds[i]!, { resume: this.outboxResumes[i]!, deadline })
    const frame = encodeFrame(this.outbox)
    this.outbox = []
    this.outboxIds = []
    this.outboxResumes = []
    this.socket!.write(frame)
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
    const reader = new FrameReader((replies) => {
      if (!this.connected) return this.handshake(socket, replies[0])
      for (let i = 0; i + 2 < replies.length; i += 3) {
        const requestId = replies[i] as number
        const waiting = this.pending.get(requestId)
        if (waiting === undefined) continue // timed out already
        this.pending.delete(requestId)
        waiting.resume({ _tag: "Reply", code: replies[i + 1] as number, value: replies[i + 2] })
      }
    })
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
    const resumes = this.outboxResumes
    this.outbox = []
    this.outboxIds = []
    this.outboxResumes = []
    for (const resume of resumes) resume(notSent)
  }

  private failAll(): void {
    this.failOutbox()
    const waiting = [...this.pending.values()]
    this.pending.clear()
    for (const entry of waiting) entry.resume(noAnswer)
  }

  private expire(): void {
    if (this.pending.size === 0) return
    const now = Date.now()
    for (const [requestId, entry] of this.pending) {
      if (entry.deadline > now) continue
      this.pending.delete(requestId)
      entry.resume(noAnswer)
    }
  }
}

/** One connection per peer address, opened on first use, each proving `key` to its owner. */
export class Peers {
  private readonly connections = new Map<string, PeerConnection>()
  private readonly timeoutMillis: number
  private readonly key: Uint8Array
  constructor(timeoutMillis: number, key: Uint8Array) {
    this.timeoutMillis = timeoutMillis
    this.key = key
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
    for (const connection of this.connections.values()) connection.close()
    this.connections.clear()
  }
}

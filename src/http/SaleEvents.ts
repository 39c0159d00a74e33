import { Effect, Layer, Queue, Schema, Stream } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { SaleWatch, snapshotOf, type PushedFigures, type SaleSnapshot } from "../cluster/SaleWatch.ts"
import { SaleId } from "../domain/Ids.ts"
import { liveSettings, type LiveSettings } from "../Settings.ts"
import { releaseParser } from "./HeldConnection.ts"
import { FanOut, HeartbeatRing, sellingFast, WriteBudget } from "./LivePacing.ts"
import type { IncomingMessage, ServerResponse } from "node:http"

const decodeSaleId = Schema.decodeUnknownOption(SaleId)
const encoder = new TextEncoder()

/** At most ten events a second per sale: a sell-out reaches a storefront as a handful of updates, each the latest. */
const spacingMillis = 100
/** Watchers written per turn of the event loop in a fan-out. */
const sliceSize = 500
const heartbeat = encoder.encode(":\n\n")
/** What a browser waits before reconnecting after a drop. */
const preamble = encoder.encode("retry: 2000\n\n")

/** Where a watcher's bytes go: an Effect stream's queue, or a node:http response directly. */
interface Watcher {
  readonly write: (bytes: Uint8Array) => void
  /** Ends the watcher's stream: the node is stopping, and the watcher reconnects elsewhere. */
  readonly end: () => void
}

interface Event {
  readonly id: string
  readonly snapshot: SaleSnapshot
  readonly bytes: Uint8Array
}

/** One serialisation per change sent: the bytes every watcher of the sale gets. */
const eventOf = (figures: PushedFigures, snapshot: SaleSnapshot): Event => {
  const { saleId, status, total, remaining, draw } = snapshot
  // The view's version (and the status the clock gave it), so a reconnect says what it saw last.
  const id = `${figures.epoch}.${figures.version}.${status}`
  // A draw sale's events say when it draws and, from the draw's push on, that it is drawn.
  const data = JSON.stringify(
    draw === undefined
      ? { saleId, status, total, remaining }
      : {
          saleId,
          status,
          total,
          remaining,
          draw: { drawAt: new Date(draw.drawAt).toISOString(), drawn: draw.drawn }
        }
  )
  return { id, snapshot, bytes: encoder.encode(`id: ${id}\nevent: sale\ndata: ${data}\n\n`) }
}

/** A change a watcher must hear at once: the sale's status, or its draw being made. */
const statusChanged = (a: SaleSnapshot, b: SaleSnapshot) =>
  a.status !== b.status || a.draw?.drawn !== b.draw?.drawn

const sameSnapshot = (a: SaleSnapshot, b: SaleSnapshot) =>
  a.status === b.status &&
  a.remaining === b.remaining &&
  a.total === b.total &&
  a.draw?.drawn === b.draw?.drawn

/** A sale's watchers on this node, fed by one subscription to its view, coalesced per sale. */
class Audience {
  readonly watchers = new Set<Watcher>()
  latest: PushedFigures
  sent: Event
  private sentAt = 0
  private timer: NodeJS.Timeout | undefined
  private clock: NodeJS.Timeout | undefined
  private readonly unfollow: () => void
  private readonly budget: WriteBudget
  private readonly fanOut = new FanOut<Watcher>(sliceSize)

  private readonly onSold: (units: number) => void

  constructor(
    watch: SaleWatch["Service"],
    first: PushedFigures,
    budget: WriteBudget,
    onSold: (units: number) => void
  ) {
    this.latest = first
    this.budget = budget
    this.onSold = onSold
    this.sent = eventOf(first, snapshotOf(first, Date.now()))
    this.unfollow = watch.follow(first.saleId, (figures) => this.changed(figures))
    this.wakeAtClockChange()
  }

  private changed(figures: PushedFigures): void {
    if (figures.remaining < this.latest.remaining) this.onSold(this.latest.remaining - figures.remaining)
    this.latest = figures
    // A change of status does not wait behind a pending figure: it goes now (send clears the timer).
    if (this.timer === undefined || statusChanged(snapshotOf(figures, Date.now()), this.sent.snapshot))
      this.send()
  }

  /**
   * Sends the latest state now, or sets the timer for when it may go: ten times a second at
   * most, and as the node's write budget allows; a change of status (sold out, ended, drawn)
   * does not wait for the budget.
   */
  private send(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    const now = Date.now()
    const snapshot = snapshotOf(this.latest, now)
    this.wakeAtClockChange()
    if (sameSnapshot(snapshot, this.sent.snapshot)) return
    const wait = Math.max(
      this.sentAt + spacingMillis - now,
      statusChanged(snapshot, this.sent.snapshot) ? 0 : this.budget.wait(this.watchers.size)
    )
    if (wait > 0) {
      // Looked at again within a second: the budget refills faster once a flood is over.
      this.timer = setTimeout(() => this.send(), Math.min(wait, 1_000))
      return
    }
    // Serialised only once it goes: a change held back for the budget costs no JSON.
    const event = eventOf(this.latest, snapshot)
    this.budget.spend(this.watchers.size)
    this.sent = event
    this.sentAt = now
    this.fanOut.write(this.watchers, event.bytes)
  }

  /** The status changes with the clock alone at the sale's start, a draw's window close and the end: one timer per sale. */
  private wakeAtClockChange(): void {
    if (this.clock !== undefined) clearTimeout(this.clock)
    this.clock = undefined
    const now = Date.now()
    const { startsAt, drawAt, endsAt } = this.latest
    const next = [startsAt, drawAt ?? endsAt, endsAt].find((at) => at > now)
    if (next === undefined || this.latest.cancelled) return
    // Timers hold at most ~24.8 days; a later start is looked at again then.
    this.clock = setTimeout(() => this.send(), Math.min(next - now + 1, 2_000_000_000))
  }

  close(): void {
    this.fanOut.stop()
    this.unfollow()
    if (this.timer !== undefined) clearTimeout(this.timer)
    if (this.clock !== undefined) clearTimeout(this.clock)
  }
}

/**
 * Every watcher of this node, by sale, whichever route took it (node:http or the framework's):
 * one per sale watch, so both routes count against the same limit and share each sale's
 * serialisation, the node's write budget and its heartbeat ring.
 */
class Audiences {
  private readonly bySale = new Map<SaleId, Audience>()
  watching = 0
  /** Units the watched sales sold since the last tick (their committed `remaining` fell by). */
  private sold = 0
  private readonly watch: SaleWatch["Service"]
  private readonly budget: WriteBudget
  private readonly heartbeats: HeartbeatRing<Watcher>
  constructor(watch: SaleWatch["Service"], settings: LiveSettings) {
    this.watch = watch
    // How fast the watched sales sold over the last second: a flood shrinks the budget.
    let busy = 0
    this.budget = new WriteBudget(settings.writesPerSecond, Date.now, () => busy)
    // One slot a second: each watcher hears a heartbeat every `heartbeatSeconds`.
    this.heartbeats = new HeartbeatRing(settings.heartbeatSeconds)
    setInterval(() => {
      busy = this.sold / sellingFast
      this.sold = 0
      for (const watcher of this.heartbeats.due()) watcher.write(heartbeat)
    }, 1_000).unref()
  }

  /** Adds the watcher, sends it the preamble and (unless it saw it last) the current state. */
  join(first: PushedFigures, watcher: Watcher, lastSeen: string | undefined): () => void {
    const saleId = first.saleId
    let audience = this.bySale.get(saleId)
    if (audience === undefined) {
      audience = new Audience(this.watch, first, this.budget, (units) => void (this.sold += units))
      this.bySale.set(saleId, audience)
    }
    const joined = audience
    joined.watchers.add(watcher)
    const quiet = this.heartbeats.add(watcher)
    this.watching++
    watcher.write(preamble)
    if (lastSeen !== joined.sent.id) watcher.write(joined.sent.bytes)
    return () => {
      if (!joined.watchers.delete(watcher)) return
      quiet()
      this.watching--
      if (joined.watchers.size > 0) return
      joined.close()
      if (this.bySale.get(saleId) === joined) this.bySale.delete(saleId)
    }
  }

  /** Ends every watcher's stream on this node, whichever route took it. */
  endAll(): void {
    for (const audience of [...this.bySale.values()])
      for (const watcher of [...audience.watchers]) watcher.end()
  }
}

const audiencesOf = new WeakMap<SaleWatch["Service"], Audiences>()
const audiencesFor = (watch: SaleWatch["Service"], settings: LiveSettings) => {
  let audiences = audiencesOf.get(watch)
  if (audiences === undefined) {
    audiences = new Audiences(watch, settings)
    audiencesOf.set(watch, audiences)
  }
  return audiences
}

const notFound = (saleId: SaleId) =>
  HttpServerResponse.jsonUnsafe(
    { error: { code: "sale_not_found", message: "No such sale", details: { saleId } } },
    { status: 404 }
  )

const invalidSaleId = HttpServerResponse.jsonUnsafe(
  {
    error: {
      code: "invalid_request",
      message: "Invalid params: Expected a UUID",
      details: { path: ["saleId"] }
    }
  },
  { status: 400 }
)

const tooManyWatchers = (retryAfterSeconds: number) =>
  HttpServerResponse.jsonUnsafe(
    {
      error: {
        code: "overloaded",
        message: "This node serves as many live watchers as it can; try again shortly",
        details: { retryAfterSeconds }
      }
    },
    { status: 503, headers: { "retry-after": String(retryAfterSeconds) } }
  )

/**
 * GET /api/sales/:saleId/events: Server-Sent Events of the sale's status and remaining stock.
 * Every watcher of a sale on this node hangs off one audience, fed by the sale's pushed view:
 * a change is serialised once and the same bytes are queued to each watcher, at most ten
 * times a second per sale and as the node's write budget allows; one node-wide timer sends
 * the heartbeats, a slice of the watchers each second. A reconnect whose
 * Last-Event-ID names the current state gets only what changes next.
 */
export const SaleEventsRoute = Layer.unwrap(
  Effect.gen(function* () {
    const watch = yield* SaleWatch
    const settings = yield* liveSettings
    const limit = settings.maxWatchers
    const audiences = audiencesFor(watch, settings)
    return HttpRouter.add(
      "GET",
      "/api/sales/:saleId/events",
      Effect.gen(function* () {
        const params = yield* HttpRouter.params
        const decoded = decodeSaleId(params.saleId)
        if (decoded._tag === "None") return invalidSaleId
        const saleId = decoded.value
        if (audiences.watching >= limit) return tooManyWatchers(5)
        const found = yield* Effect.exit(watch.figures(saleId))
        if (found._tag === "Failure") return notFound(saleId)
        const request = yield* HttpServerRequest.HttpServerRequest
        const lastSeen = request.headers["last-event-id"]
        const events = Stream.callback<Uint8Array>(
          (queue) =>
            Effect.acquireRelease(
              Effect.sync(() =>
                audiences.join(
                  found.value,
                  {
                    write: (bytes) => void Queue.offerUnsafe(queue, bytes),
                    end: () => void Queue.endUnsafe(queue)
                  },
                  lastSeen
                )
              ),
              (leave) => Effect.sync(leave)
            ),
          // A watcher that cannot keep up loses older events, never the latest: each is the whole state.
          { bufferSize: 8, strategy: "sliding" }
        )
        return HttpServerResponse.stream(events, { contentType: "text/event-stream", headers: streamHeaders })
      })
    )
  })
)

const streamHeaders = { "cache-control": "no-cache", "x-accel-buffering": "no" }
const eventsPath =
  /^\/api\/sales\/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\/events$/
/** A watcher whose socket holds this much unsent is too slow to follow: it is cut off and reconnects. */
const maxUnsentBytes = 64 * 1024

/**
 * The same events straight from node:http, for a sale this node has a fresh view of: a
 * watcher is its socket in the sale's audience, with no fiber or queue of its own, and once
 * its headers are out node:http's parser lets go of the connection, so tens of thousands cost
 * little memory and a change is one write per watcher. Anything else (no fresh view yet, a
 * CORS origin, over the limit) `route` declines, for the route above to answer. `endAll`
 * ends every live stream of the node, of either route, when it stops.
 */
export const eventsRoute = (
  watch: SaleWatch["Service"],
  settings: LiveSettings,
  headers: (request: IncomingMessage) => Readonly<Record<string, string>>
) => {
  const limit = settings.maxWatchers
  const audiences = audiencesFor(watch, settings)
  const route = (request: IncomingMessage, response: ServerResponse): boolean => {
    if (request.method !== "GET" || request.headers.origin !== undefined) return false
    const saleId = eventsPath.exec(request.url ?? "")?.[1]?.toLowerCase() as SaleId | undefined
    if (saleId === undefined || audiences.watching >= limit) return false
    const listing = watch.peek(saleId)
    if (listing === undefined) return false
    const socket = response.socket
    if (socket === null) return false
    // The stream ends only when the connection does: no chunked framing (the connection is
    // closed at the end instead), so each event is the same bytes written straight to every
    // watcher's socket, one write each, past the response's own bookkeeping.
    response.useChunkedEncodingByDefault = false
    response.writeHead(200, { ...headers(request), ...streamHeaders, "content-type": "text/event-stream" })
    response.flushHeaders()
    socket.setNoDelay(true)
    socket.setTimeout(0)
    const lastSeen = request.headers["last-event-id"]
    const leave = audiences.join(
      listing.figures,
      {
        write: (bytes) => {
          if (socket.writableLength > maxUnsentBytes) return void socket.destroy()
          socket.write(bytes)
        },
        end: () => void socket.end()
      },
      typeof lastSeen === "string" ? lastSeen : undefined
    )
    response.on("close", leave)
    // The parser is still at work on this request here: it is let go on the next turn.
    setImmediate(releaseParser, request, socket)
    return true
  }
  return { route, endAll: () => audiences.endAll() }
}

import { Config, Effect, Layer, Queue, Schema, Stream, type Cause } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { SaleWatch, snapshotOf, type PushedFigures, type SaleSnapshot } from "../cluster/SaleWatch.ts"
import { SaleId } from "../domain/Ids.ts"

const decodeSaleId = Schema.decodeUnknownOption(SaleId)
const encoder = new TextEncoder()

/** At most ten events a second per sale: a sell-out reaches a storefront as a handful of updates, each the latest. */
const spacingMillis = 100
/** An SSE comment this often keeps proxies from closing a quiet connection. */
const heartbeatMillis = 15_000
const heartbeat = encoder.encode(":\n\n")
/** What a browser waits before reconnecting after a drop. */
const preamble = encoder.encode("retry: 2000\n\n")

/** Watchers this node serves at most (all sales together): beyond it, a 503 with Retry-After. */
export const watcherLimit = Config.Int("MAX_WATCHERS").pipe(Config.withDefault(20_000))

type Watcher = Queue.Queue<Uint8Array, Cause.Done>

interface Event {
  readonly id: string
  readonly snapshot: SaleSnapshot
  readonly bytes: Uint8Array
}

/** One serialisation per change: the bytes every watcher of the sale gets. */
const eventOf = (figures: PushedFigures, now: number): Event => {
  const snapshot = snapshotOf(figures, now)
  const { saleId, status, total, remaining } = snapshot
  // The view's version (and the status the clock gave it), so a reconnect says what it saw last.
  const id = `${figures.epoch}.${figures.version}.${status}`
  const data = JSON.stringify({ saleId, status, total, remaining })
  return { id, snapshot, bytes: encoder.encode(`id: ${id}\nevent: sale\ndata: ${data}\n\n`) }
}

const sameSnapshot = (a: SaleSnapshot, b: SaleSnapshot) =>
  a.status === b.status && a.remaining === b.remaining && a.total === b.total

/** A sale's watchers on this node, fed by one subscription to its view, coalesced per sale. */
class Audience {
  readonly watchers = new Set<Watcher>()
  latest: PushedFigures
  sent: Event
  private sentAt = 0
  private timer: NodeJS.Timeout | undefined
  private clock: NodeJS.Timeout | undefined
  private readonly unfollow: () => void

  constructor(watch: SaleWatch["Service"], first: PushedFigures) {
    this.latest = first
    this.sent = eventOf(first, Date.now())
    this.unfollow = watch.follow(first.saleId, (figures) => this.changed(figures))
    this.wakeAtClockChange()
  }

  private changed(figures: PushedFigures): void {
    this.latest = figures
    if (this.timer !== undefined) return
    const wait = this.sentAt + spacingMillis - Date.now()
    if (wait <= 0) return this.send()
    this.timer = setTimeout(() => this.send(), wait)
  }

  private send(): void {
    this.timer = undefined
    const now = Date.now()
    const event = eventOf(this.latest, now)
    this.wakeAtClockChange()
    if (sameSnapshot(event.snapshot, this.sent.snapshot)) return
    this.sent = event
    this.sentAt = now
    for (const watcher of this.watchers) Queue.offerUnsafe(watcher, event.bytes)
  }

  /** The status changes with the clock alone at the sale's start and end: one timer per sale. */
  private wakeAtClockChange(): void {
    if (this.clock !== undefined) clearTimeout(this.clock)
    this.clock = undefined
    const now = Date.now()
    const next = [this.latest.startsAt, this.latest.endsAt].find((at) => at > now)
    if (next === undefined || this.latest.cancelled) return
    // Timers hold at most ~24.8 days; a later start is looked at again then.
    this.clock = setTimeout(() => this.send(), Math.min(next - now + 1, 2_000_000_000))
  }

  close(): void {
    this.unfollow()
    if (this.timer !== undefined) clearTimeout(this.timer)
    if (this.clock !== undefined) clearTimeout(this.clock)
  }
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
 * times a second per sale; one node-wide timer sends the heartbeats. A reconnect whose
 * Last-Event-ID names the current state gets only what changes next.
 */
export const SaleEventsRoute = Layer.unwrap(
  Effect.gen(function* () {
    const watch = yield* SaleWatch
    const limit = yield* watcherLimit
    const audiences = new Map<SaleId, Audience>()
    let watching = 0
    yield* Effect.acquireRelease(
      Effect.sync(() =>
        setInterval(() => {
          for (const audience of audiences.values())
            for (const watcher of audience.watchers) Queue.offerUnsafe(watcher, heartbeat)
        }, heartbeatMillis)
      ),
      (timer) => Effect.sync(() => clearInterval(timer))
    )

    const join = (saleId: SaleId, first: PushedFigures, watcher: Watcher) => {
      let audience = audiences.get(saleId)
      if (audience === undefined) {
        audience = new Audience(watch, first)
        audiences.set(saleId, audience)
      }
      audience.watchers.add(watcher)
      watching++
      return audience
    }
    const leave = (saleId: SaleId, audience: Audience, watcher: Watcher) => {
      if (!audience.watchers.delete(watcher)) return
      watching--
      if (audience.watchers.size > 0) return
      audience.close()
      if (audiences.get(saleId) === audience) audiences.delete(saleId)
    }

    return HttpRouter.add(
      "GET",
      "/api/sales/:saleId/events",
      Effect.gen(function* () {
        const params = yield* HttpRouter.params
        const decoded = decodeSaleId(params.saleId)
        if (decoded._tag === "None") return invalidSaleId
        const saleId = decoded.value
        if (watching >= limit) return tooManyWatchers(5)
        const found = yield* Effect.exit(watch.figures(saleId))
        if (found._tag === "Failure") return notFound(saleId)
        const request = yield* HttpServerRequest.HttpServerRequest
        const lastSeen = request.headers["last-event-id"]
        const events = Stream.callback<Uint8Array>(
          (queue) =>
            Effect.acquireRelease(
              Effect.sync(() => {
                const audience = join(saleId, found.value, queue)
                Queue.offerUnsafe(queue, preamble)
                if (lastSeen !== audience.sent.id) Queue.offerUnsafe(queue, audience.sent.bytes)
                return audience
              }),
              (audience) => Effect.sync(() => leave(saleId, audience, queue))
            ),
          // A watcher that cannot keep up loses older events, never the latest: each is the whole state.
          { bufferSize: 8, strategy: "sliding" }
        )
        return HttpServerResponse.stream(events, {
          contentType: "text/event-stream",
          headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
        })
      })
    )
  })
)

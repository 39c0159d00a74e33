import { Effect } from "effect"
import { HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import type { IncomingMessage, ServerResponse } from "node:http"
import { SaleWatch, snapshotOf, type SaleListing } from "../cluster/SaleWatch.ts"
import { DrawRecords } from "../storage/DrawRecords.ts"
import { Api } from "./Api.ts"
import { noCurrentSale, saleNotFound } from "./ApiErrors.ts"
import { drawView } from "./DrawHandlers.ts"
import { presentAllocation, presentRules } from "./SaleView.ts"

/**
 * The public reads answer from the sale views in memory (see SaleWatch), never PostgreSQL
 * once warm. Each answer carries an ETag of its body, so a client or proxy that has it gets
 * a 304, and lets a proxy serve it for a second and while it asks again.
 */
export const readCacheControl = "public, max-age=1, stale-while-revalidate=5"

/** The API's sale shape, from a listing and the time (status is the clock's as much as the owner's). */
export const presentListing = (listing: SaleListing, now: number) => {
  const f = listing.figures
  return {
    saleId: f.saleId,
    productName: listing.productName,
    priceCents: listing.priceCents,
    startsAt: new Date(f.startsAt).toISOString(),
    endsAt: new Date(f.endsAt).toISOString(),
    status: snapshotOf(f, now).status,
    total: f.total,
    remaining: f.remaining,
    ...presentRules(listing.rules),
    allocation: presentAllocation(listing.allocation),
    holdSeconds: listing.holdSeconds
  }
}

export const presentStats = (listing: SaleListing, now: number) => {
  const f = listing.figures
  return {
    saleId: f.saleId,
    status: snapshotOf(f, now).status,
    total: f.total,
    sold: f.total - f.remaining,
    remaining: f.remaining
  }
}

/** FNV-1a over the body: cheap, and a different body gets a different tag in practice. */
export const etagOf = (body: string): string => {
  let hash = 0x811c9dc5
  for (let i = 0; i < body.length; i++) {
    hash ^= body.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return `W/"${(hash >>> 0).toString(36)}-${body.length.toString(36)}"`
}

/** Whether an If-None-Match header names `etag` (a list, or `*`). */
export const matches = (ifNoneMatch: string | undefined, etag: string): boolean => {
  if (ifNoneMatch === undefined) return false
  if (ifNoneMatch === etag || ifNoneMatch.trim() === "*") return true
  return ifNoneMatch.split(",").some((tag) => tag.trim().replace(/^W\//, "") === etag.replace(/^W\//, ""))
}

/** A 200 with the JSON body and its ETag, or a 304 when the caller has it already. */
export const cachedJson = (
  ifNoneMatch: string | undefined,
  value: unknown
): HttpServerResponse.HttpServerResponse => {
  const body = JSON.stringify(value)
  const etag = etagOf(body)
  const headers = { etag, "cache-control": readCacheControl }
  if (matches(ifNoneMatch, etag)) return HttpServerResponse.empty({ status: 304, headers })
  return HttpServerResponse.text(body, { contentType: "application/json", headers })
}

const ifNoneMatch = Effect.map(
  HttpServerRequest.HttpServerRequest,
  (request) => request.headers["if-none-match"]
)

export const SalesHandlers = HttpApiBuilder.group(Api, "sales", (handlers) =>
  Effect.gen(function* () {
    const watch = yield* SaleWatch
    const records = yield* DrawRecords
    return handlers
      .handleRaw("list", () =>
        Effect.gen(function* () {
          const listings = yield* watch.list
          const now = Date.now()
          return cachedJson(
            yield* ifNoneMatch,
            listings.map((listing) => presentListing(listing, now))
          )
        })
      )
      .handleRaw("get", ({ params }) =>
        Effect.gen(function* () {
          const listing = yield* watch
            .sale(params.saleId)
            .pipe(Effect.catchTag("SaleNotFound", () => Effect.fail(saleNotFound(params.saleId))))
          return cachedJson(yield* ifNoneMatch, presentListing(listing, Date.now()))
        })
      )
      .handle("draw", ({ params }) => drawView(records, watch, params.saleId))
  })
)

export const CurrentSaleHandlers = HttpApiBuilder.group(Api, "currentSale", (handlers) =>
  Effect.gen(function* () {
    const watch = yield* SaleWatch
    const current = Effect.flatMap(watch.current, (listing) =>
      listing === undefined ? Effect.fail(noCurrentSale()) : Effect.succeed(listing)
    )
    return handlers
      .handleRaw("status", () =>
        Effect.gen(function* () {
          const listing = yield* current
          return cachedJson(yield* ifNoneMatch, presentListing(listing, Date.now()))
        })
      )
      .handleRaw("stats", () =>
        Effect.gen(function* () {
          const listing = yield* current
          return cachedJson(yield* ifNoneMatch, presentStats(listing, Date.now()))
        })
      )
  })
)

/** A sale id as it appears in a path: the UUID shape, nothing else. */
const uuid = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/
const salesPrefix = "/api/sales/"

/** One serialisation per (listing, status, shape): the body and its ETag, kept until the figures change. */
interface Rendered {
  readonly figures: SaleListing["figures"]
  /** A draw's seed appears in the allocation once drawn, with the owner's figures unchanged. */
  readonly allocation: SaleListing["allocation"]
  readonly status: string
  readonly body: string
  readonly bodyLength: string
  readonly etag: string
}

/**
 * The public reads straight from node:http, before the framework: the current sale's status
 * and stats and one sale, answered from a fresh view in memory with the same body, ETag, 304
 * and Cache-Control as the HttpApi handlers above. Anything else (no fresh view yet, a CORS
 * origin, a query string) returns false and takes the HttpApi route, which reads the view.
 */
export const readRoute = (
  watch: Pick<SaleWatch["Service"], "peek" | "peekCurrent">,
  respond: {
    /** The edge's headers for this request, as a fresh flat [name, value, …] list the route extends. */
    readonly headers: (request: IncomingMessage) => Array<string>
    readonly counted: (route: string, status: number) => void
  }
) => {
  const rendered = new Map<string, Rendered>()
  const render = (
    key: string,
    listing: SaleListing,
    present: (listing: SaleListing, now: number) => unknown
  ) => {
    const now = Date.now()
    const status = snapshotOf(listing.figures, now).status
    const known = rendered.get(key)
    if (
      known !== undefined &&
      known.figures === listing.figures &&
      known.allocation === listing.allocation &&
      known.status === status
    )
      return known
    const body = JSON.stringify(present(listing, now))
    const fresh: Rendered = {
      figures: listing.figures,
      allocation: listing.allocation,
      status,
      body,
      bodyLength: String(Buffer.byteLength(body)),
      etag: etagOf(body)
    }
    // Bounded by the sales asked about; a node serving far more sales starts over.
    if (rendered.size > 10_000) rendered.clear()
    rendered.set(key, fresh)
    return fresh
  }
  return (request: IncomingMessage, response: ServerResponse): boolean => {
    if (request.method !== "GET" || request.headers.origin !== undefined) return false
    const url = request.url ?? ""
    let answer: Rendered | undefined
    let route: string
    if (url === "/api/flash-sale/status" || url === "/api/flash-sale/stats") {
      const listing = watch.peekCurrent()
      if (listing === undefined) return false
      const stats = url === "/api/flash-sale/stats"
      route = url
      answer = render(stats ? "stats" : "status", listing, stats ? presentStats : presentListing)
    } else if (url.startsWith(salesPrefix) && uuid.test(url.slice(salesPrefix.length))) {
      const saleId = url.slice(salesPrefix.length).toLowerCase() as SaleListing["figures"]["saleId"]
      const listing = watch.peek(saleId)
      if (listing === undefined) return false
      route = "/api/sales/:saleId"
      answer = render(saleId, listing, presentListing)
    } else return false
    const notModified = matches(request.headers["if-none-match"], answer.etag)
    const status = notModified ? 304 : 200
    const headers = respond.headers(request)
    headers.push("etag", answer.etag, "cache-control", readCacheControl)
    if (!notModified) headers.push("content-type", "application/json", "content-length", answer.bodyLength)
    response.writeHead(status, headers)
    response.end(notModified ? undefined : answer.body)
    respond.counted(route, status)
    return true
  }
}

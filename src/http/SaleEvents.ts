import { type Cause, Effect, Layer, Queue, Schema, Stream } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { SaleWatch } from "../cluster/SaleWatch.ts"
import { SaleId } from "../domain/Ids.ts"

const decodeSaleId = Schema.decodeUnknownOption(SaleId)
const encoder = new TextEncoder()

// At most ten events a second per connection: a sell-out of thousands of units in a second
// reaches a storefront as a handful of updates, each the latest state.
const spacing = "100 millis"

/** The source's first value at once, then its latest value at most once per `spacing`. */
const latestEvery = <A, E>(source: Stream.Stream<A, E>): Stream.Stream<A, E> =>
  Stream.unwrap(
    Effect.gen(function* () {
      const latest = yield* Queue.sliding<A, E | Cause.Done>(1)
      yield* Effect.forkScoped(Stream.runIntoQueue(source, latest))
      return Stream.fromQueue(latest).pipe(
        Stream.flatMap((value) => Stream.concat(Stream.succeed(value), Stream.fromEffectDrain(Effect.sleep(spacing))))
      )
    })
  )

const notFound = (saleId: SaleId) =>
  HttpServerResponse.jsonUnsafe(
    { error: { code: "sale_not_found", message: "No such sale", details: { saleId } } },
    { status: 404 }
  )

const invalidSaleId = HttpServerResponse.jsonUnsafe(
  { error: { code: "invalid_request", message: "Invalid params: Expected a UUID", details: { path: ["saleId"] } } },
  { status: 400 }
)

/**
 * GET /api/sales/:saleId/events: Server-Sent Events of the sale's status and remaining stock,
 * pushed by the sale watch. The first event is the current state; then one per change
 * (the owner's, or the clock's: upcoming → active → ended), coalesced.
 */
export const SaleEventsRoute = Layer.unwrap(
  Effect.map(SaleWatch, (watch) =>
    HttpRouter.add(
      "GET",
      "/api/sales/:saleId/events",
      Effect.gen(function* () {
        const params = yield* HttpRouter.params
        const decoded = decodeSaleId(params.saleId)
        if (decoded._tag === "None") return invalidSaleId
        const saleId = decoded.value
        const found = yield* Effect.exit(watch.snapshot(saleId))
        if (found._tag === "Failure") return notFound(saleId)
        const events = latestEvery(watch.changes(saleId)).pipe(
          Stream.map(({ status, total, remaining }) =>
            encoder.encode(`event: sale\ndata: ${JSON.stringify({ saleId, status, total, remaining })}\n\n`)
          ),
          // A sale that vanishes while watched ends the stream; the browser reconnects and hears 404.
          Stream.catchTag("SaleNotFound", () => Stream.empty)
        )
        return HttpServerResponse.stream(events, {
          contentType: "text/event-stream",
          headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
        })
      })
    )
  )
)

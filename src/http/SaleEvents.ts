import { Effect, Layer, Schema, Stream } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { SaleRouter } from "../cluster/SaleRouter.ts"
import { SaleId } from "../domain/Ids.ts"

const decodeSaleId = Schema.decodeUnknownOption(SaleId)
const encoder = new TextEncoder()

// At most ten events a second per connection: a sell-out of thousands of units in a second
// reaches a storefront as a handful of updates, each the latest state.
const interval = "100 millis"

/**
 * GET /api/sales/:saleId/events: Server-Sent Events of the sale's status and remaining stock.
 * The first event is the current state; then one event per change, coalesced.
 */
export const SaleEventsRoute = Layer.unwrap(
  Effect.map(SaleRouter, (router) =>
    HttpRouter.add(
      "GET",
      "/api/sales/:saleId/events",
      Effect.gen(function* () {
        const params = yield* HttpRouter.params
        const saleId = decodeSaleId(params.saleId)
        if (saleId._tag === "None") {
          return HttpServerResponse.jsonUnsafe(
            {
              error: {
                code: "invalid_request",
                message: "Invalid params: Expected a UUID",
                details: { path: ["saleId"] }
              }
            },
            { status: 400 }
          )
        }
        const found = yield* Effect.exit(router.snapshot(saleId.value))
        if (found._tag === "Failure") {
          return HttpServerResponse.jsonUnsafe(
            { error: { code: "sale_not_found", message: "No such sale", details: { saleId: saleId.value } } },
            { status: 404 }
          )
        }
        // The owner's memory when this node owns the sale, else the committed stock row.
        const states = Stream.tick(interval).pipe(
          Stream.mapEffect(() => router.snapshot(saleId.value).pipe(Effect.orElseSucceed(() => found.value))),
          Stream.map((view) =>
            JSON.stringify({
              saleId: view.saleId,
              status: view.status,
              total: view.total,
              remaining: view.remaining
            })
          ),
          Stream.changes,
          Stream.map((data) => encoder.encode(`event: sale\ndata: ${data}\n\n`))
        )
        return HttpServerResponse.stream(states, {
          contentType: "text/event-stream",
          headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
        })
      })
    )
  )
)

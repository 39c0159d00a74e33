import { Context, Effect, Layer, Metric } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { PrometheusMetrics } from "effect/observability"
import { SaleRegistry } from "../actors/SaleRegistry.ts"
import type { CommitReport } from "../actors/SaleActor.ts"
import { outcomeTags, type OutcomeTag } from "../domain/Outcome.ts"

/** What a node exposes at GET /metrics, in Prometheus text. */

const requests = Metric.counter("mincommerce_http_requests_total", {
  description: "HTTP requests by method, route and status"
})
const outcomes = Metric.counter("mincommerce_purchase_outcomes_total", {
  description: "Purchase attempts answered, by outcome"
})
const batchSize = Metric.histogram("mincommerce_commit_batch_orders", {
  description: "Orders per group commit",
  boundaries: Metric.exponentialBoundaries({ start: 1, factor: 2, count: 14 })
})
const commitSeconds = Metric.histogram("mincommerce_commit_seconds", {
  description: "Group commit latency",
  boundaries: Metric.exponentialBoundaries({ start: 0.0005, factor: 2, count: 14 })
})
const mailboxDepth = Metric.gauge("mincommerce_mailbox_depth", {
  description: "Purchases queued in the mailboxes of this node's sale actors"
})
const ownedSales = Metric.gauge("mincommerce_owned_sales", {
  description: "Sales whose actor runs on this node"
})

/** The route label of a request no route matched (unknown path, refused before routing). */
export const unmatched = "unmatched"

// Series are made once per (method, route, status) and per outcome: counting allocates nothing.
// Routes are the templates the server declares, never a client's URL, so the series are few.
const requestSeries = new Map<string, Metric.Metric<number, unknown>>()
const outcomeSeries = new Map(
  outcomeTags.map((outcome) => [outcome, Metric.withAttributes(outcomes, { outcome })] as const)
)
// Metrics live in the default registry, the one every fiber without an override reports to.
const defaultContext = Context.empty()

/**
 * Counts one answered request under its route template (`/api/sales/:saleId`, or `unmatched`);
 * every parameter is labelled `:id`. Synchronous, so the purchase fast route counts without a fiber.
 */
export const countRequest = (method: string, route: string, status: number): void => {
  const key = `${method} ${route} ${status}`
  let series = requestSeries.get(key)
  if (series === undefined) {
    series = Metric.withAttributes(requests, {
      method,
      route: route.replace(/:[A-Za-z_]\w*/g, ":id"),
      status: String(status)
    })
    requestSeries.set(key, series)
  }
  series.updateUnsafe(1, defaultContext)
}

export const countOutcome = (outcome: OutcomeTag): void => {
  outcomeSeries.get(outcome)?.updateUnsafe(1, defaultContext)
}

/** For the registry's `onCommit`: runs on the writer fiber once per batch. */
export const recordCommit = (report: CommitReport): void => {
  if (report.orders > 0) Effect.runSync(Metric.update(batchSize, report.orders))
  Effect.runSync(Metric.update(commitSeconds, report.millis / 1_000))
}

export const MetricsRoute = Layer.unwrap(
  Effect.map(SaleRegistry, (registry) =>
    HttpRouter.add(
      "GET",
      "/metrics",
      Effect.gen(function* () {
        const now = Date.now()
        const running = registry.runningSales()
        let depth = 0
        for (const saleId of running) depth += registry.running(saleId)?.view(now).mailboxDepth ?? 0
        yield* Metric.update(mailboxDepth, depth)
        yield* Metric.update(ownedSales, running.length)
        return HttpServerResponse.text(yield* PrometheusMetrics.format(), {
          contentType: "text/plain; version=0.0.4"
        })
      })
    )
  )
)

import { Context, Effect, Formatter, Layer, Logger, Option, Tracer } from "effect"
import { FetchHttpClient, type Headers, HttpMiddleware, HttpTraceContext } from "effect/http"
import { OtlpExporter, OtlpSerialization, OtlpTracer } from "effect/observability"
import { hostname } from "node:os"
import * as Settings from "./Settings.ts"

/**
 * Traces through Effect's own OTLP exporter, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
 * Off, the node keeps Effect's native tracer and nothing here runs per request. On, every
 * span Effect makes (each HttpApi request, each `Effect.fn` and `Effect.withSpan`) goes to the
 * collector as OTLP/HTTP JSON, for the share of traces the sampler keeps; the purchase path,
 * which runs without fibers, makes its spans with `fiberless`.
 */

/**
 * A parent-based ratio sampler: a span with a parent follows its parent's decision (a trace
 * is kept whole, across nodes too); a root span is kept with probability `ratio`.
 */
export const sampledBy =
  (ratio: number) =>
  (tracer: Tracer.Tracer): Tracer.Tracer => {
    const sampled = Tracer.make({
      span(options) {
        const parent = options.root ? undefined : Option.getOrUndefined(options.parent)
        return tracer.span({ ...options, sampled: options.sampled && keeps(ratio, parent) })
      },
      ...(tracer.context === undefined ? {} : { context: tracer.context })
    })
    samplers.set(sampled, { ratio, tracer })
    return sampled
  }

const keeps = (ratio: number, parent: Tracer.AnySpan | undefined): boolean =>
  parent === undefined ? Math.random() < ratio : parent.sampled

// What `sampledBy` wrapped, so a fiberless span is decided before anything is made for it.
const samplers = new WeakMap<Tracer.Tracer, { readonly ratio: number; readonly tracer: Tracer.Tracer }>()

/** The OTLP tracer when OTEL_EXPORTER_OTLP_ENDPOINT is set; nothing otherwise. */
export const layer: Layer.Layer<never> = Layer.unwrap(
  Effect.gen(function* () {
    const { endpoint, sampleRatio, serviceName } = yield* Settings.tracingSettings
    if (Option.isNone(endpoint)) return Layer.empty
    const { nodeId } = yield* Settings.clusterSettings
    const tracer = OtlpTracer.make({
      url: `${endpoint.value.replace(/\/+$/, "")}/v1/traces`,
      resource: {
        serviceName,
        attributes: { "service.instance.id": Option.getOrElse(nodeId, () => hostname()) }
      },
      exportInterval: "1 second"
    })
    return Layer.effect(Tracer.Tracer, Effect.map(tracer, sampledBy(sampleRatio))).pipe(
      // A request's span is named for its method and path, not its method alone.
      Layer.merge(Layer.succeed(HttpMiddleware.SpanNameGenerator, spanName)),
      Layer.provide(OtlpExporter.layerFlusher),
      Layer.provide(OtlpSerialization.layerJson),
      Layer.provide(FetchHttpClient.layer)
    )
  }).pipe(Effect.orDie)
)

const spanName = (request: { readonly method: string; readonly url: string }): string => {
  const query = request.url.indexOf("?")
  return `${request.method} ${query === -1 ? request.url : request.url.slice(0, query)}`
}

/** The span a log line was written in, when tracing is on and that span's trace is kept. */
const tracedSpan = (fiber: Logger.Options<unknown>["fiber"]): Tracer.AnySpan | undefined => {
  if (fiber.getRef(Tracer.Tracer) === Tracer.nativeTracer) return undefined
  const span = Context.getOrUndefined(fiber.context, Tracer.ParentSpan)
  return span?.sampled === true ? span : undefined
}

/**
 * JSON lines, as `Logger.consoleJson` writes them, with the trace and span ids beside the
 * other annotations (the request id) when the line was written in a kept trace: a collector
 * joins the line to its trace.
 */
export const consoleJson: Logger.Logger<unknown, void> = Logger.withConsoleLog(
  Logger.make((options) => {
    const line = Logger.formatStructured.log(options)
    const span = tracedSpan(options.fiber)
    if (span === undefined) return Formatter.formatJson(line)
    return Formatter.formatJson({
      ...line,
      annotations: { ...line.annotations, traceId: span.traceId, spanId: span.spanId }
    })
  })
)

/** What the other end of a hop needs to continue a trace: its trace id and the sending span's id. */
export type TraceContext = readonly [traceId: string, spanId: string]

/** A span begun outside any fiber; `end` it once. */
export interface FiberlessSpan {
  readonly span: Tracer.Span
  readonly context: TraceContext
  readonly end: (attributes?: Record<string, unknown>) => void
}

export interface FiberlessSpanOptions {
  readonly parent?: Tracer.AnySpan | TraceContext | undefined
  readonly kind?: Tracer.SpanKind
  readonly attributes?: Record<string, unknown>
  /** Spans of kept traces only: a root span with links is kept whatever the ratio. */
  readonly links?: ReadonlyArray<TraceContext>
}

/** Begins a span; undefined when its trace is not kept (nothing more to do for it). */
export type StartSpan = (name: string, options?: FiberlessSpanOptions) => FiberlessSpan | undefined

const nowNanos = (): bigint =>
  BigInt(Math.round((performance.timeOrigin + performance.now()) * 1_000)) * 1_000n

const asSpan = (parent: Tracer.AnySpan | TraceContext): Tracer.AnySpan =>
  "traceId" in parent ? parent : Tracer.externalSpan({ traceId: parent[0], spanId: parent[1], sampled: true })

/**
 * Spans for code that runs without a fiber (the purchase path), from the tracer a layer was
 * built with: undefined when tracing is off, so the hot path pays one check of a constant.
 */
export const fiberless = (tracer: Tracer.Tracer): StartSpan | undefined => {
  if (tracer === Tracer.nativeTracer) return undefined
  const sampler = samplers.get(tracer)
  const ratio = sampler?.ratio ?? 1
  const inner = sampler?.tracer ?? tracer
  return (name, options = {}) => {
    const parent = options.parent === undefined ? undefined : asSpan(options.parent)
    const links = options.links ?? []
    // Most purchases are not kept: decided first, they cost a random number, not a span. A root
    // that links kept spans is kept with them (a batch commit, beside the purchases it carried).
    if (!(parent === undefined && links.length > 0) && !keeps(ratio, parent)) return undefined
    const span = inner.span({
      name,
      parent: Option.fromUndefinedOr(parent),
      annotations: Context.empty(),
      links: links.map((link) => ({ span: asSpan(link), attributes: {} })),
      startTime: nowNanos(),
      kind: options.kind ?? "internal",
      root: parent === undefined,
      sampled: true
    })
    for (const [key, value] of Object.entries(options.attributes ?? {})) span.attribute(key, value)
    return {
      span,
      context: [span.traceId, span.spanId],
      end: (attributes) => {
        for (const [key, value] of Object.entries(attributes ?? {})) span.attribute(key, value)
        span.end(nowNanos(), exitOk)
      }
    }
  }
}

const exitOk = Effect.runSyncExit(Effect.void)

/** The fiberless span starter of the tracer in the current context (see `fiberless`). */
export const startSpan: Effect.Effect<StartSpan | undefined> = Effect.map(Effect.tracer, fiberless)

/** The caller's span from a request's W3C `traceparent` (or B3) header, if it sent one. */
export const parentFromHeaders = (headers: Readonly<Record<string, string | Array<string> | undefined>>) =>
  Option.getOrUndefined(HttpTraceContext.fromHeaders(headers as Headers.Headers))

/**
 * The purchase being routed right now, while its request is handed down synchronously (the
 * route, the router, the link's send): how a hop below learns its parent without a fiber.
 * Set only by a traced request, so it stays undefined while tracing is off.
 */
export const routedPurchase: { context: TraceContext | undefined } = { context: undefined }

/** The current fiber's span as a trace context, when its trace is kept. */
export const currentContext: Effect.Effect<TraceContext | undefined> = Effect.map(
  Effect.option(Effect.currentSpan),
  (span): TraceContext | undefined =>
    Option.isSome(span) && span.value.sampled ? [span.value.traceId, span.value.spanId] : undefined
)

/** Runs `route` with `context` as the purchase being routed (see `routedPurchase`). */
export const routing = <A>(context: TraceContext | undefined, route: () => A): A => {
  const outer = routedPurchase.context
  routedPurchase.context = context
  try {
    return route()
  } finally {
    routedPurchase.context = outer
  }
}

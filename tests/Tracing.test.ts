import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Logger, Option, Tracer } from "effect"
import { TestConsole } from "effect/testing"
import { createServer, type Server } from "node:http"
import { decodeRequests, encodeFrame, FrameReader } from "../src/cluster/Frames.ts"
import * as Tracing from "../src/Tracing.ts"
import { History, makeCluster, purchase, waitFor } from "./cluster/Harness.ts"

interface ReceivedSpan {
  readonly node: string
  readonly name: string
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
  readonly attributes: Record<string, unknown>
  readonly links: ReadonlyArray<{ readonly traceId: string; readonly spanId: string }>
}

interface OtlpValue {
  readonly stringValue?: string
  readonly intValue?: number | string
}
interface OtlpAttribute {
  readonly key: string
  readonly value: OtlpValue
}
interface OtlpExport {
  readonly resourceSpans: ReadonlyArray<{
    readonly resource: { readonly attributes: ReadonlyArray<OtlpAttribute> }
    readonly scopeSpans: ReadonlyArray<{
      readonly spans: ReadonlyArray<{
        readonly name: string
        readonly traceId: string
        readonly spanId: string
        readonly parentSpanId?: string
        readonly attributes: ReadonlyArray<OtlpAttribute>
        readonly links?: ReadonlyArray<{ readonly traceId: string; readonly spanId: string }>
      }>
    }>
  }>
}

const valueOf = (value: OtlpValue): unknown => value.stringValue ?? value.intValue

/** A collector's OTLP/HTTP endpoint, as small as a test needs: JSON exports to /v1/traces, kept. */
const otlpReceiver = async () => {
  const spans: Array<ReceivedSpan> = []
  const server: Server = createServer((request, response) => {
    let body = ""
    request.on("data", (chunk: Buffer) => (body += chunk.toString()))
    request.on("end", () => {
      if (request.url === "/v1/traces") {
        const data = JSON.parse(body) as OtlpExport
        for (const resource of data.resourceSpans) {
          const node = resource.resource.attributes.find((a) => a.key === "service.instance.id")
          for (const scope of resource.scopeSpans)
            for (const span of scope.spans)
              spans.push({
                node: String(node === undefined ? "" : valueOf(node.value)),
                name: span.name,
                traceId: span.traceId,
                spanId: span.spanId,
                parentSpanId: span.parentSpanId,
                attributes: Object.fromEntries(span.attributes.map((a) => [a.key, valueOf(a.value)])),
                links: (span.links ?? []).map(({ traceId, spanId }) => ({ traceId, spanId }))
              })
        }
      }
      response.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as { port: number }
  return { url: `http://127.0.0.1:${port}`, spans, close: () => server.close() }
}

const span = (sampled: boolean, traceId = "t") => Tracer.externalSpan({ traceId, spanId: "s", sampled })

describe("Tracing", () => {
  it("samples root spans at the ratio and keeps a parent's decision", () => {
    const tracer = Tracing.sampledBy(0.25)(Tracer.nativeTracer)
    const start = (parent: Tracer.AnySpan | undefined) =>
      tracer.span({
        name: "probe",
        parent: Option.fromUndefinedOr(parent),
        annotations: Effect.runSync(Effect.context<never>()),
        links: [],
        startTime: 0n,
        kind: "internal",
        root: parent === undefined,
        sampled: true
      }).sampled
    const kept = Array.from({ length: 4_000 }, () => start(undefined)).filter(Boolean).length
    assert.isAbove(kept, 800)
    assert.isBelow(kept, 1_200)
    assert.isTrue(Array.from({ length: 100 }, () => start(span(true))).every(Boolean))
    assert.isFalse(Array.from({ length: 100 }, () => start(span(false))).some(Boolean))
    assert.isUndefined(Tracing.fiberless(Tracer.nativeTracer), "off: no span starter at all")
    // A fiberless span is decided before it is made: none for an unkept root, one under a kept parent.
    const startSpan = Tracing.fiberless(Tracing.sampledBy(0)(Tracer.nativeTracer))!
    assert.isUndefined(startSpan("root"))
    const child = startSpan("child", { parent: ["4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"] })
    assert.strictEqual(child?.span.traceId, "4bf92f3577b34da6a3ce929d0e0e4736")
    // A root linked to kept spans (a batch commit) is kept with them, whatever the ratio.
    const linked = startSpan("batch", { links: [["4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"]] })
    assert.strictEqual(linked?.span.links[0]?.span.spanId, "00f067aa0ba902b7")
    assert.notStrictEqual(linked?.span.traceId, "4bf92f3577b34da6a3ce929d0e0e4736")
  })

  it.effect("writes the trace and span ids beside the request id when tracing is on", () =>
    Effect.gen(function* () {
      const lines = () =>
        TestConsole.logLines.pipe(Effect.map((all) => all.map((l) => JSON.parse(String(l)))))
      const logged = Effect.logInfo("served").pipe(
        Effect.annotateLogs("requestId", "r-1"),
        Effect.withSpan("request")
      )
      yield* logged
      const [off] = yield* lines()
      assert.deepStrictEqual(off.annotations, { requestId: "r-1" })
      const traced = yield* logged.pipe(
        Effect.provideService(Tracer.Tracer, Tracing.sampledBy(1)(Tracer.nativeTracer)),
        Effect.andThen(lines())
      )
      const on = traced[1]
      assert.strictEqual(on.annotations.requestId, "r-1")
      assert.match(on.annotations.traceId, /^[0-9a-f]{32}$/)
      assert.match(on.annotations.spanId, /^[0-9a-f]{16}$/)
    }).pipe(Effect.provide(Layer.merge(TestConsole.layer, Logger.layer([Tracing.consoleJson]))))
  )

  it("carries a traced purchase's context in the forward frame, beside untraced ones", () => {
    const frames: Array<ReadonlyArray<unknown>> = []
    const reader = new FrameReader((messages) => frames.push(messages))
    const traced = [2, "sale", "other", "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"]
    reader.push(encodeFrame([[1, "sale", "buyer"], traced]))
    reader.push(encodeFrame([[3, "sale", "buyer"]]))
    const [mixed, untraced] = frames.map(decodeRequests)
    assert.deepStrictEqual<unknown>(Exit.isSuccess(mixed!) ? mixed.value : mixed, [
      [1, "sale", "buyer"],
      traced
    ])
    assert.deepStrictEqual<unknown>(Exit.isSuccess(untraced!) ? untraced.value : untraced, [
      [3, "sale", "buyer"]
    ])
    assert.isTrue(Exit.isFailure(decodeRequests([[4, "sale", "buyer", 7, "span"]])))
  })

  it("one purchase's trace across two nodes: the request and the hop on the entry node, the decision and the commit linked to it on the owner", async () => {
    const receiver = await otlpReceiver()
    const cluster = await makeCluster({
      nodes: 2,
      saleStocks: [10],
      buyers: 3,
      cluster: { env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_TRACES_SAMPLER_ARG: "0" } }
    })
    try {
      const [owner, entry] = cluster.nodes
      const saleId = cluster.sales[0]!
      const history = new History()
      // The first purchase makes node 1 the owner; the traced one enters at node 2.
      assert.strictEqual((await purchase(owner!.url, saleId, cluster.users[0]!, history)).status, 201)
      await waitFor("node 2 to know the owner", async () => {
        const status = await fetch(`${entry!.url}/api/sales/${saleId}`)
        return status.ok ? true : undefined
      })
      const traceId = "4bf92f3577b34da6a3ce929d0e0e4736"
      const response = await fetch(`${entry!.url}/api/sales/${saleId}/purchases`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${cluster.users[1]!.token}`,
          traceparent: `00-${traceId}-00f067aa0ba902b7-01`
        }
      })
      assert.strictEqual(response.status, 201)
      const named = (name: string) => receiver.spans.find((s) => s.traceId === traceId && s.name === name)
      const [request, hop, atOwner, decision] = await waitFor("the purchase's four spans", () => {
        const spans = [
          named("POST /api/sales/:id/purchases"),
          named("SaleRouter.forward"),
          named("SaleActor.purchase"),
          named("SaleActor.decide")
        ]
        return spans.every((s) => s !== undefined) ? (spans as ReadonlyArray<ReceivedSpan>) : undefined
      })
      // The request continues the caller's trace, on the node it entered.
      assert.strictEqual(request!.node, entry!.nodeId)
      assert.strictEqual(request!.parentSpanId, "00f067aa0ba902b7")
      assert.strictEqual(request!.attributes["http.response.status_code"], 201)
      // The hop to the owner is the request's child, on the same node.
      assert.strictEqual(hop!.node, entry!.nodeId)
      assert.strictEqual(hop!.parentSpanId, request!.spanId)
      assert.strictEqual(hop!.attributes["forward.result"], "Accepted")
      // The trace went on over the link, in the forwarded purchase's frame: the owner's part
      // (its actor's decision and the commit it waited for) is the hop's child.
      assert.strictEqual(atOwner!.node, owner!.nodeId)
      assert.strictEqual(atOwner!.parentSpanId, hop!.spanId)
      assert.strictEqual(atOwner!.attributes["purchase.outcome"], "Accepted")
      // The decision is a span of its own within the owner's part.
      assert.strictEqual(decision!.node, owner!.nodeId)
      assert.strictEqual(decision!.parentSpanId, atOwner!.spanId)
      assert.strictEqual(decision!.attributes["purchase.decision"], "Accepted")
      // The batch that committed the order is a trace of its own (it carries many purchases),
      // linked to the owner's part of each traced purchase it carried.
      const commit = await waitFor("the batch commit linked to the purchase", () =>
        receiver.spans.find(
          (s) =>
            s.name === "GroupCommitter.commit" &&
            s.links.some((l) => l.traceId === traceId && l.spanId === atOwner!.spanId)
        )
      )
      assert.strictEqual(commit.node, owner!.nodeId)
      assert.notStrictEqual(commit.traceId, traceId)
      assert.isUndefined(commit.parentSpanId)
      assert.strictEqual(commit.attributes["sale.id"], saleId)
      assert.strictEqual(commit.attributes["commit.outcome"], "committed")
      assert.isAtLeast(Number(commit.attributes["batch.traced_orders"]), 1)
      // The statement that committed the batch is the commit span's child.
      await waitFor("the commit's statement under the commit span", () =>
        receiver.spans.find(
          (s) =>
            s.parentSpanId === commit.spanId && String(s.attributes["db.query.text"]).includes("commit_batch")
        )
      )
      // A purchase the node:http route leaves to the HttpApi (a chunked body) is traced too:
      // the framework's request span is the hop's parent.
      const apiTraceId = "5bf92f3577b34da6a3ce929d0e0e4737"
      const viaApi = await fetch(`${entry!.url}/api/sales/${saleId}/purchases`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${cluster.users[2]!.token}`,
          traceparent: `00-${apiTraceId}-00f067aa0ba902b7-01`,
          "content-type": "application/json"
        },
        body: new ReadableStream({
          start: (controller) => {
            controller.enqueue(new TextEncoder().encode("{}"))
            controller.close()
          }
        }),
        duplex: "half"
      } as RequestInit)
      assert.strictEqual(viaApi.status, 201)
      const [apiRequest, apiHop] = await waitFor("the HttpApi purchase's spans", () => {
        const spans = receiver.spans.filter((s) => s.traceId === apiTraceId)
        const request = spans.find((s) => s.name === `POST /api/sales/${saleId}/purchases`)
        const hop = spans.find((s) => s.name === "SaleRouter.forward")
        return request !== undefined && hop !== undefined ? [request, hop] : undefined
      })
      assert.strictEqual(apiRequest.parentSpanId, "00f067aa0ba902b7")
      assert.strictEqual(apiHop.parentSpanId, apiRequest.spanId)
      // Sampling at 0: the untraced first purchase sent nothing, nor did the commit of its order.
      assert.isFalse(
        receiver.spans.some(
          (s) => s.name.startsWith("POST /api/sales/") && ![traceId, apiTraceId].includes(s.traceId)
        )
      )
      assert.isTrue(
        receiver.spans.filter((s) => s.name === "GroupCommitter.commit").every((s) => s.links.length > 0)
      )
    } finally {
      await cluster.close()
      receiver.close()
    }
  }, 50_000)
})

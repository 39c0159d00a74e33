/**
 * The report's chart as SVG, drawn by Vega-Lite's headless renderer (no browser): median
 * purchases/s and requests/s per design, and median p99 latency per design, at one connection
 * count. A design that broke an invariant is drawn in red and labelled.
 */
import { parse, View } from "vega"
import { compile, type TopLevelSpec } from "vega-lite"
import { summaryAt, type BenchResult } from "./summary.ts"

export const chartSvg = async (result: BenchResult, connections: number): Promise<string> => {
  const rows = result.designs.flatMap((design) => {
    const summary = summaryAt(design, connections)
    if (summary === undefined) return []
    const broken = summary.violations > 0
    const label = broken ? `${design.title} (INVARIANT VIOLATED)` : design.title
    return [
      {
        design: label,
        metric: "requests/s",
        value: Math.round(summary.requestsPerSecond.median),
        kind: broken ? "broken" : "requests/s"
      },
      ...(design.id === "ceiling"
        ? []
        : [
            {
              design: label,
              metric: "purchases/s",
              value: Math.round(summary.purchasesPerSecond.median),
              kind: broken ? "broken" : "purchases/s"
            }
          ]),
      { design: label, metric: "p99 (ms)", value: summary.p99.median, kind: broken ? "broken" : "p99 (ms)" }
    ]
  })
  const order = rows.map((row) => row.design).filter((name, i, all) => all.indexOf(name) === i)
  const color = {
    field: "kind",
    type: "nominal",
    title: null,
    scale: {
      domain: ["purchases/s", "requests/s", "p99 (ms)", "broken"],
      range: ["#2f6fb0", "#9ab8d8", "#e0a030", "#d62728"]
    },
    legend: { labelExpr: "datum.label === 'broken' ? 'invariant violated' : datum.label" }
  } as const
  const yAxis = {
    field: "design",
    type: "nominal",
    sort: order,
    title: null,
    axis: { labelLimit: 320 }
  } as const
  const height = 48 * order.length
  const label = { type: "text", align: "left", dx: 3, fontSize: 10 } as const
  const spec: TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: `Flash sale: ${result.settings.stock.toLocaleString("en-US")} units, ${result.settings.buyers.toLocaleString("en-US")} buyers, ${connections} connections`,
      subtitle: `median of ${result.settings.runs} run(s) of ${result.settings.seconds} s; ${result.machine.cores} x ${result.machine.cpu}; ${result.finishedAt.slice(0, 10)}`
    },
    data: { values: rows },
    hconcat: [
      {
        title: "Throughput (higher is better)",
        width: 360,
        height,
        transform: [{ filter: "datum.metric !== 'p99 (ms)'" }],
        encoding: {
          y: yAxis,
          yOffset: { field: "metric", sort: ["purchases/s", "requests/s"] },
          x: { field: "value", type: "quantitative", title: "per second" }
        },
        layer: [
          { mark: { type: "bar" }, encoding: { color } },
          { mark: label, encoding: { text: { field: "value", type: "quantitative", format: ",.0f" } } }
        ]
      },
      {
        title: "p99 latency (lower is better)",
        width: 240,
        height,
        transform: [{ filter: "datum.metric === 'p99 (ms)'" }],
        encoding: {
          y: { ...yAxis, axis: null },
          x: { field: "value", type: "quantitative", title: "ms" }
        },
        layer: [
          { mark: { type: "bar", height: 20 }, encoding: { color } },
          { mark: label, encoding: { text: { field: "value", type: "quantitative", format: ",.0f" } } }
        ]
      }
    ],
    config: { font: "sans-serif", background: "white" }
  }
  const view = new View(parse(compile(spec).spec), { renderer: "none" })
  const svg = await view.toSVG()
  view.finalize()
  return svg
}

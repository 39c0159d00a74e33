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
    }
  } as const
  const yAxis = {
    field: "design",
    type: "nominal",
    sort: order,
    title: null,
    axis: { labelLimit: 320 }
  } as const
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
        width: 340,
        height: { step: 44 },
        transform: [{ filter: "datum.metric !== 'p99 (ms)'" }],
        mark: { type: "bar" },
        encoding: {
          y: yAxis,
          yOffset: { field: "metric", sort: ["purchases/s", "requests/s"] },
          x: { field: "value", type: "quantitative", title: "per second" },
          color
        }
      },
      {
        title: "p99 latency (lower is better)",
        width: 220,
        height: { step: 44 },
        transform: [{ filter: "datum.metric === 'p99 (ms)'" }],
        mark: { type: "bar" },
        encoding: {
          y: yAxis,
          x: { field: "value", type: "quantitative", title: "ms" },
          color
        }
      }
    ],
    config: { font: "sans-serif", background: "white" }
  }
  const view = new View(parse(compile(spec).spec), { renderer: "none" })
  const svg = await view.toSVG()
  view.finalize()
  return svg
}

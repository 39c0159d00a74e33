/**
 * bench:fair's chart as SVG (Vega-Lite's headless renderer): per allocation mode, the share
 * of units the farm won beside its share of the crowd, with the band a fair draw stays in.
 */
import { parse, View } from "vega"
import { compile, type TopLevelSpec } from "vega-lite"
import type { ModeResult } from "./fair.ts"

export const fairChartSvg = async (results: ReadonlyArray<ModeResult>): Promise<string> => {
  const rows = results.flatMap((r) => [
    { mode: r.title, measure: "farm's share of the crowd", share: r.farmShareOfCrowd * 100 },
    { mode: r.title, measure: "farm's share of units won", share: r.farmShareOfUnits * 100 }
  ])
  const bands = results.map((r) => ({
    mode: r.title,
    measure: "farm's share of the crowd",
    low: Math.max(0, (r.farmShareOfCrowd - r.fairBand) * 100),
    high: Math.min(100, (r.farmShareOfCrowd + r.fairBand) * 100)
  }))
  const first = results[0]
  const spec: TopLevelSpec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: {
      text: "Who wins a flash sale: a bot farm against people",
      subtitle: first
        ? `${first.farmAccounts} farm accounts firing at the opening, ${first.people} people, ${first.units} units per sale; whiskers: 95 % band of a fair draw`
        : ""
    },
    width: 420,
    height: { step: 22 },
    layer: [
      {
        data: { values: rows },
        mark: { type: "bar" },
        encoding: {
          y: {
            field: "mode",
            type: "nominal",
            title: null,
            sort: results.map((r) => r.title),
            axis: { labelLimit: 260 }
          },
          yOffset: { field: "measure" },
          x: { field: "share", type: "quantitative", title: "percent", scale: { domain: [0, 100] } },
          color: {
            field: "measure",
            type: "nominal",
            title: null,
            scale: { range: ["#9ab8d8", "#d62728"] },
            legend: { orient: "bottom", labelLimit: 320 }
          }
        }
      },
      {
        data: { values: bands },
        mark: { type: "rule", color: "black" },
        encoding: {
          y: { field: "mode", type: "nominal", sort: results.map((r) => r.title) },
          yOffset: { field: "measure" },
          x: { field: "low", type: "quantitative" },
          x2: { field: "high" }
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

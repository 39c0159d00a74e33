import { useEffect, useRef } from "react"
import uPlot from "uplot"
import "uplot/dist/uPlot.min.css"

export interface Series {
  readonly label: string
  readonly color: string
  /** Draws each reading as a dot joined across gaps: for sparse series (null where no data). */
  readonly sparse?: boolean
}

/**
 * A small live line chart (uPlot): `times` in epoch seconds, one array of values per series.
 * The chart is made once per set of series and fed new data in place.
 */
export function Chart(props: {
  readonly title: string
  readonly unit: string
  readonly series: ReadonlyArray<Series>
  readonly times: ReadonlyArray<number>
  readonly values: ReadonlyArray<ReadonlyArray<number | null>>
  readonly testId: string
}) {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  const seriesKey = props.series.map((s) => s.label + s.color).join("|")

  useEffect(() => {
    const element = box.current
    if (element === null) return
    const width = () => Math.max(200, element.clientWidth)
    const chart = new uPlot(
      {
        width: width(),
        height: 140,
        legend: { show: false },
        cursor: { show: false },
        scales: {
          x: { time: true },
          y: { range: (_u, min, max) => [Math.min(0, min), Math.max(1, max * 1.1)] }
        },
        axes: [
          { stroke: "#667", grid: { stroke: "#eef" }, size: 28 },
          { stroke: "#667", grid: { stroke: "#eef" }, size: 48, label: props.unit, labelSize: 14 }
        ],
        series: [
          {},
          ...props.series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            spanGaps: s.sparse === true,
            points: { show: s.sparse === true, size: 5, fill: s.color }
          }))
        ]
      },
      [[], ...props.series.map(() => [])],
      element
    )
    plot.current = chart
    const resize = new ResizeObserver(() => chart.setSize({ width: width(), height: 140 }))
    resize.observe(element)
    return () => {
      resize.disconnect()
      chart.destroy()
      plot.current = null
    }
    // The series set decides the chart's shape; data flows in through the effect below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [seriesKey])

  useEffect(() => {
    plot.current?.setData([props.times as number[], ...props.values.map((v) => v as (number | null)[])])
  }, [props.times, props.values, seriesKey])

  return (
    <figure className="chart" data-testid={props.testId} data-points={props.times.length}>
      <figcaption>{props.title}</figcaption>
      <div ref={box} role="img" aria-label={`${props.title} chart`} />
      {props.series.length < 2 ? null : (
        <ul className="legend">
          {props.series.map((s) => (
            <li key={s.label}>
              <span className="swatch" style={{ background: s.color }} />
              {s.label}
            </li>
          ))}
        </ul>
      )}
    </figure>
  )
}

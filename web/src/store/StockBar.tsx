/**
 * Remaining units as a bar of fixed size: an update moves the fill (a transform) and the
 * tabular digits, never the layout around it.
 */
export function StockBar(props: {
  readonly remaining: number
  readonly total: number
  readonly live: boolean
}) {
  const share = props.total === 0 ? 0 : Math.min(1, Math.max(0, props.remaining / props.total))
  return (
    <div className="stock">
      <div className="stock-label">
        <span
          data-testid="remaining"
          className="digits remaining"
          style={{ minWidth: `${props.total.toLocaleString("en-US").length}ch` }}
        >
          {props.remaining.toLocaleString("en-US")}
        </span>{" "}
        of <span className="digits">{props.total.toLocaleString("en-US")}</span> left
        <span className={props.live ? "live on" : "live"} title={props.live ? "Live" : "Connecting"}>
          {props.live ? "live" : "…"}
        </span>
      </div>
      <div
        className="stock-track"
        role="progressbar"
        aria-label="Units left"
        aria-valuemin={0}
        aria-valuemax={props.total}
        aria-valuenow={props.remaining}
      >
        <div className="stock-fill" style={{ transform: `scaleX(${share})` }} />
      </div>
    </div>
  )
}

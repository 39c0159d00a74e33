import { useEffect, useState } from "react"
import { api, drawOf, type DrawRecord, type Sale } from "../api.ts"
import { formatInstant } from "../store/time.ts"

const pollMillis = 2_000

/**
 * A draw sale on the live view: entries so far (the decisions audited as entries), the draw's
 * time, the commitment, and once drawn the seed, winners and waiting list, read from the
 * public record anyone can check.
 */
export function LiveDraw(props: { readonly sale: Sale; readonly entries: number | undefined }) {
  const { saleId } = props.sale
  const allocation = drawOf(props.sale)
  const [record, setRecord] = useState<DrawRecord | undefined>(undefined)
  const isDraw = allocation !== undefined
  useEffect(() => {
    if (!isDraw) return
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const poll = async () => {
      const next = await api.draw(saleId).catch(() => undefined)
      if (stopped) return
      if (next !== undefined) setRecord(next)
      if (next?.drawn !== true) timer = setTimeout(() => void poll(), pollMillis)
    }
    void poll()
    return () => {
      stopped = true
      clearTimeout(timer)
    }
  }, [saleId, isDraw])
  if (allocation === undefined) return null
  return (
    <dl className="figures draw-record" data-testid="live-draw">
      <div>
        <dt>Entries</dt>
        <dd className="digits" data-testid="live-entries">
          {(record?.entries?.length ?? props.entries)?.toLocaleString("en-US") ?? "–"}
        </dd>
      </div>
      <div>
        <dt>{record?.drawn === true ? "Drawn" : "Draw at"}</dt>
        <dd>{formatInstant(record?.drawnAt ?? allocation.drawAt)}</dd>
      </div>
      <div>
        <dt>Winners / waiting</dt>
        <dd className="digits" data-testid="live-winners">
          {record?.winners == null
            ? "–"
            : `${record.winners.length.toLocaleString("en-US")} / ${(record.waitingList?.length ?? 0).toLocaleString("en-US")}`}
        </dd>
      </div>
      <div className="wide">
        <dt>Commitment</dt>
        <dd>
          <code>{allocation.commitment}</code>
        </dd>
      </div>
      <div className="wide">
        <dt>Seed</dt>
        <dd>
          <code data-testid="live-seed">{record?.seed ?? "revealed after the draw"}</code>
        </dd>
      </div>
    </dl>
  )
}

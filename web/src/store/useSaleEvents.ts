import { useEffect, useState } from "react"
import type { SaleStatus } from "../api.ts"

export interface LiveSale {
  readonly status: SaleStatus
  readonly total: number
  readonly remaining: number
}

/**
 * The sale's state from `GET /api/sales/:saleId/events` (Server-Sent Events): the current
 * state first, then each change. The browser reconnects by itself after a drop. The caller
 * keys its component by sale, so a new sale starts from a fresh state.
 */
export const useSaleEvents = (
  saleId: string | undefined
): { live: LiveSale | undefined; connected: boolean } => {
  const [live, setLive] = useState<LiveSale | undefined>(undefined)
  const [connected, setConnected] = useState(false)
  useEffect(() => {
    if (saleId === undefined) return
    const source = new EventSource(`/api/sales/${encodeURIComponent(saleId)}/events`)
    source.addEventListener("sale", (event: MessageEvent<string>) => {
      const data = JSON.parse(event.data) as LiveSale
      setLive({ status: data.status, total: data.total, remaining: data.remaining })
      setConnected(true)
    })
    source.addEventListener("error", () => setConnected(false))
    return () => source.close()
  }, [saleId])
  return { live, connected }
}

import { useEffect, useState } from "react"
import { api, type Entry } from "../api.ts"

/** How often the result is asked for once the draw time has passed, and for how long at most. */
const pollMillis = 2_000
const giveUpMillis = 120_000

/**
 * The buyer's entry in a draw sale, read when the page opens, again whenever `revision`
 * changes (an entry just made), and every two seconds from the draw time until the draw is
 * done: one request per buyer per two seconds, for the minute or so a draw takes at most.
 */
export const useEntry = (
  token: string | undefined,
  saleId: string,
  drawAt: number,
  revision: number
): Entry | undefined => {
  const [entry, setEntry] = useState<Entry | undefined>(undefined)
  useEffect(() => {
    if (token === undefined) return
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const read = async () => {
      const next = await api.entry(token, saleId).catch(() => undefined)
      if (stopped) return
      if (next !== undefined) setEntry(next)
      const waiting = next === undefined || (next.status !== "none" && next.drawnAt === null)
      const now = Date.now()
      if (!waiting || now > drawAt + giveUpMillis) return
      timer = setTimeout(() => void read(), Math.max(pollMillis, drawAt - now + 500))
    }
    void read()
    return () => {
      stopped = true
      if (timer !== undefined) clearTimeout(timer)
    }
  }, [token, saleId, drawAt, revision])
  // Signed out, or another buyer's entry from before: nothing to show.
  return token === undefined || entry?.saleId !== saleId ? undefined : entry
}

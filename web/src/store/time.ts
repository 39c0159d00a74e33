import { useEffect, useState } from "react"

/**
 * The current time, refreshed every `intervalMs`, just after the instants `alignTo + k·intervalMs`:
 * a countdown to `alignTo` then changes its whole seconds on time, not up to a second late.
 */
export const useNow = (intervalMs = 1_000, alignTo = 0): number => {
  const [now, setNow] = useState(() => Date.now())
  useEffect(() => {
    const delay = (current: number) =>
      intervalMs - ((((current - alignTo) % intervalMs) + intervalMs) % intervalMs) + 2
    let timer = setTimeout(function tick() {
      const current = Date.now()
      setNow(current)
      timer = setTimeout(tick, delay(current))
    }, delay(Date.now()))
    return () => clearTimeout(timer)
  }, [intervalMs, alignTo])
  return now
}

/** "2d 03:04:05", "03:04:05" or "04:05": whole seconds, rounded up, never negative. */
export const formatCountdown = (millis: number): string => {
  const total = Math.max(0, Math.ceil(millis / 1_000))
  const days = Math.floor(total / 86_400)
  const hours = Math.floor((total % 86_400) / 3_600)
  const minutes = Math.floor((total % 3_600) / 60)
  const seconds = total % 60
  const two = (n: number) => String(n).padStart(2, "0")
  const clock =
    hours > 0 || days > 0
      ? `${two(hours)}:${two(minutes)}:${two(seconds)}`
      : `${two(minutes)}:${two(seconds)}`
  return days > 0 ? `${days}d ${clock}` : clock
}

export const formatInstant = (iso: string): string =>
  new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })

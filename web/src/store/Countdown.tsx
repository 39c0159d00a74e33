import { useEffect, useRef } from "react"
import { formatCountdown, useNow } from "./time.ts"

/**
 * Time left until `to` (epoch millis), ticking each second; `onElapsed` runs once when it
 * reaches zero. The digits are tabular so the line never changes width as it ticks.
 */
export function Countdown(props: {
  readonly to: number
  readonly label: string
  readonly onElapsed?: () => void
}) {
  const now = useNow(1_000, props.to)
  const left = props.to - now
  const elapsed = left <= 0
  const onElapsed = useRef(props.onElapsed)
  useEffect(() => {
    onElapsed.current = props.onElapsed
  })
  useEffect(() => {
    if (elapsed) onElapsed.current?.()
  }, [elapsed])
  return (
    <p className="countdown">
      <span>{props.label}</span>{" "}
      <time role="timer" aria-live="off" dateTime={`PT${Math.max(0, Math.ceil(left / 1_000))}S`}>
        {formatCountdown(left)}
      </time>
    </p>
  )
}

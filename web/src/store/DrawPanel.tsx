import type { Allocation, Entry } from "../api.ts"
import { Countdown } from "./Countdown.tsx"
import { formatInstant } from "./time.ts"

type Draw = Extract<Allocation, { readonly mode: "draw" }>

/** Plain words for where the buyer stands in the draw. */
export const entryWords = (entry: Entry | undefined): string | undefined => {
  switch (entry?.status) {
    case undefined:
    case "none":
      return undefined
    case "entered":
      return "You're in the draw."
    case "won":
      return `You won! Your order id is ${entry.orderId ?? ""}.`
    case "not_drawn":
      return entry.waitingListPlace === null
        ? "You were not picked this time."
        : `You were not picked this time. You're number ${entry.waitingListPlace} on the waiting list if a unit comes back.`
  }
}

/**
 * A draw sale's panel: how it works, the countdown to the draw, the buyer's result, and what
 * anyone needs to check the draw (the commitment from the start, the seed once drawn).
 */
export function DrawPanel(props: {
  readonly saleId: string
  readonly draw: Draw
  readonly entry: Entry | undefined
  readonly started: boolean
  /** The draw's time has come: the sale's record is worth reading again shortly. */
  readonly onDrawTime: () => void
}) {
  const { draw, entry } = props
  const drawAt = Date.parse(draw.drawAt)
  const words = entryWords(entry)
  return (
    <section className="draw" aria-label="Draw" data-testid="draw-panel">
      <p className="note">
        A draw: everyone who enters in the first {draw.entryWindowSeconds} s has the same chance, however
        early they pressed. Winners are picked at random when the window closes.
      </p>
      {draw.drawnAt === null ? (
        props.started ? (
          <Countdown to={drawAt} label="Draw in" onElapsed={props.onDrawTime} />
        ) : (
          <p className="countdown">
            <span>Draw at</span> <time dateTime={draw.drawAt}>{formatInstant(draw.drawAt)}</time>
          </p>
        )
      ) : (
        <p className="countdown">
          <span>Drawn</span> <time dateTime={draw.drawnAt}>{formatInstant(draw.drawnAt)}</time>
        </p>
      )}
      {words === undefined ? null : (
        <p
          className={entry?.status === "won" ? "outcome good" : "outcome"}
          role="status"
          aria-live="polite"
          data-testid="draw-result"
        >
          {words}
        </p>
      )}
      <details>
        <summary>Check this draw</summary>
        <p className="note">
          Commitment (sha256 of the secret seed, published before anyone entered):{" "}
          <code data-testid="draw-commitment">{draw.commitment}</code>
        </p>
        {draw.seed === null ? (
          <p className="note">The seed is revealed after the draw.</p>
        ) : (
          <p className="note">
            Seed: <code data-testid="draw-seed">{draw.seed}</code>. Entries, winners and waiting list:{" "}
            <a href={`/api/sales/${props.saleId}/draw`}>the draw&apos;s record</a>.
          </p>
        )}
      </details>
    </section>
  )
}

/**
 * How a sale hands out its units, chosen when it is created: first come, first served, or a
 * draw among everyone who entered in a window that opens at the sale's start.
 */
export type Allocation =
  | { readonly mode: "first_come" }
  | {
      readonly mode: "draw"
      readonly entryWindowMillis: number
      /** The window's close and the draw's due time: start + window, epoch milliseconds. */
      readonly drawAt: number
      /** sha256 (hex) of the secret seed, published from the sale's creation. */
      readonly commitment: string
      /** The seed, revealed once the draw is done; null before. */
      readonly seed: string | null
      /** When the draw was committed, epoch milliseconds; null before. */
      readonly drawnAt: number | null
    }

export const firstCome: Allocation = { mode: "first_come" }

/** An entry window as the admin may set it: one second to seven days. */
export const minEntryWindowSeconds = 1
export const maxEntryWindowSeconds = 7 * 24 * 3_600

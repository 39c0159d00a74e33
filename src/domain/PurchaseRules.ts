/**
 * What a sale asks of a buyer before the sale's owner sees the attempt, set by the admin when
 * the sale is created and never changed after: so every node may keep a sale's rules in memory
 * for as long as it likes, and check them on the purchase route without a database read.
 */
export interface PurchaseRules {
  /**
   * Proof of work: the most key derivations a buyer's challenge can take to solve (the
   * challenge's secret counter is drawn between half of it and all of it); undefined: off.
   */
  readonly powDifficulty: number | undefined
  /**
   * Only accounts created before this instant (epoch milliseconds: the sale's publication)
   * may buy; undefined: any account.
   */
  readonly accountsCreatedBefore: number | undefined
}

export const noRules: PurchaseRules = { powDifficulty: undefined, accountsCreatedBefore: undefined }

/** Bounds of a difficulty: 1 derivation (a few tenths of a millisecond) to a few minutes of work. */
export const minPowDifficulty = 1
export const maxPowDifficulty = 1_000_000

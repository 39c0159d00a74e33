import type { SaleRegistry } from "../actors/SaleRegistry.ts"
import type { Allocation } from "../domain/Allocation.ts"
import { statusAt } from "../actors/SaleState.ts"
import type { PurchaseRules } from "../domain/PurchaseRules.ts"
import { rulesOf, type SaleRow } from "../storage/Sales.ts"

/** A sale's purchase rules as the API shows them. */
export const presentRules = (rules: PurchaseRules) => ({
  powDifficulty: rules.powDifficulty ?? null,
  accountsCreatedBefore:
    rules.accountsCreatedBefore === undefined ? null : new Date(rules.accountsCreatedBefore).toISOString()
})

const isoOrNull = (millis: number | null) => (millis === null ? null : new Date(millis).toISOString())

/** A sale's allocation for the API: the seed only once drawn (the store reveals it no earlier). */
export const presentAllocation = (allocation: Allocation) =>
  allocation.mode === "first_come"
    ? { mode: "first_come" as const }
    : {
        mode: "draw" as const,
        entryWindowSeconds: allocation.entryWindowMillis / 1_000,
        drawAt: new Date(allocation.drawAt).toISOString(),
        commitment: allocation.commitment,
        seed: allocation.seed,
        drawnAt: isoOrNull(allocation.drawnAt)
      }

/** A sale for the API: the owner's memory is the freshest view of a running sale, else the stock row. */
export const presentSale = (registry: SaleRegistry["Service"], row: SaleRow) => {
  const now = Date.now()
  const running = registry.running(row.saleId)?.view(now)
  const remaining = running?.remaining ?? row.available
  return {
    saleId: row.saleId,
    productName: row.productName,
    priceCents: row.priceCents,
    startsAt: new Date(row.startsAt).toISOString(),
    endsAt: new Date(row.endsAt).toISOString(),
    status:
      running?.status ??
      statusAt(
        { ...row, remaining },
        now,
        row.allocation.mode === "draw" ? row.allocation.drawAt : undefined
      ),
    total: row.total,
    remaining,
    ...presentRules(rulesOf(row)),
    allocation: presentAllocation(row.allocation),
    holdSeconds: row.holdSeconds
  }
}

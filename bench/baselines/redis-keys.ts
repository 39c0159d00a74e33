import type { SaleId } from "../../src/domain/Ids.ts"

/** A sale's remaining units in the Redis design; the bench reads it back to check the stock. */
export const stockKey = (prefix: string, saleId: SaleId) => `${prefix}stock:${saleId}`

/** The set of a sale's buyers in the Redis design. */
export const buyersKey = (prefix: string, saleId: SaleId) => `${prefix}buyers:${saleId}`

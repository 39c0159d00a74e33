import { Layer } from "effect"
import { Checkout } from "./Checkout.ts"
import { DrawRecords } from "./DrawRecords.ts"
import { Products } from "./Products.ts"
import { Sales } from "./Sales.ts"
import { SaleStats } from "./SaleStats.ts"
import { Users } from "./Users.ts"

/** The catalog's stores (users, products, sales, their figures), for a node or a test that wants them all. */
export type Catalog = Users | Products | Sales | SaleStats | DrawRecords | Checkout

export const Catalog = {
  layer: Layer.mergeAll(
    Users.layer,
    Products.layer,
    Sales.layer,
    SaleStats.layer,
    DrawRecords.layer,
    Checkout.layer
  )
} as const

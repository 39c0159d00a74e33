import { Layer } from "effect"
import { Products } from "./Products.ts"
import { Sales } from "./Sales.ts"
import { SaleStats } from "./SaleStats.ts"
import { Users } from "./Users.ts"

/** The catalog's stores (users, products, sales, their figures), for a node or a test that wants them all. */
export type Catalog = Users | Products | Sales | SaleStats

export const Catalog = {
  layer: Layer.mergeAll(Users.layer, Products.layer, Sales.layer, SaleStats.layer)
} as const

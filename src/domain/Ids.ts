import { Schema } from "effect"

// Every key is a UUID, checked at the edge so a malformed id never reaches SQL.
const Uuid = Schema.String.check(Schema.isUUID())

export const SaleId = Uuid.pipe(Schema.brand("SaleId"))
export type SaleId = typeof SaleId.Type

export const UserId = Uuid.pipe(Schema.brand("UserId"))
export type UserId = typeof UserId.Type

export const OrderId = Uuid.pipe(Schema.brand("OrderId"))
export type OrderId = typeof OrderId.Type

export const ProductId = Uuid.pipe(Schema.brand("ProductId"))
export type ProductId = typeof ProductId.Type

import { Effect, Option } from "effect"
import { randomBytes } from "node:crypto"
import { SaleWatch } from "../../src/cluster/SaleWatch.ts"
import { newSeed } from "../../src/domain/Draw.ts"
import type { SaleId, UserId } from "../../src/domain/Ids.ts"
import { Products } from "../../src/storage/Products.ts"
import { Sales } from "../../src/storage/Sales.ts"
import { Users } from "../../src/storage/Users.ts"

/** `count` distinct users, created in one statement. */
export const makeUsers = (count: number) =>
  Effect.gen(function* () {
    const users = yield* Users
    const tag = randomBytes(4).toString("hex")
    return yield* users.byEmails(Array.from({ length: count }, (_, i) => `buyer-${tag}-${i}@example.test`))
  })

/**
 * A sale of `stock` units that started a minute ago and ends in an hour, unless told otherwise;
 * with `entryWindowMillis`, a draw sale whose entry window opens at its start; with
 * `holdSeconds`, a sale that holds each accepted unit that long for payment.
 */
export const makeSale = (
  stock: number,
  window: {
    readonly startsAt?: number
    readonly endsAt?: number
    readonly entryWindowMillis?: number
    readonly holdSeconds?: number
  } = {}
) =>
  Effect.gen(function* () {
    const productId = yield* (yield* Products).create("Limited sneaker", "A test product")
    const now = Date.now()
    const saleId: SaleId = yield* (yield* Sales).create({
      productId,
      priceCents: 12_900,
      stock,
      startsAt: window.startsAt ?? now - 60_000,
      endsAt: window.endsAt ?? now + 3_600_000,
      draw:
        window.entryWindowMillis === undefined
          ? undefined
          : { entryWindowMillis: window.entryWindowMillis, seed: newSeed() },
      holdSeconds: window.holdSeconds
    })
    // Made behind the node's back, so announced as the admin's changes are: lists show it at once.
    const watch = yield* Effect.serviceOption(SaleWatch)
    if (Option.isSome(watch)) yield* watch.value.catalogChanged(saleId)
    return saleId
  })

/** Every user twice, in a shuffled order: the same buyer pressing "Buy" again mid-sale. */
export const twiceShuffled = (users: ReadonlyArray<UserId>): Array<UserId> => {
  const attempts = [...users, ...users]
  for (let i = attempts.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[attempts[i], attempts[j]] = [attempts[j]!, attempts[i]!]
  }
  return attempts
}

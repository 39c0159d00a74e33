import { Effect, Layer } from "effect"
import { SqlError } from "effect/sql"
import { OrderStore, type Batch } from "../../src/storage/OrderStore.ts"

/**
 * What happens to one commit of the real store: nothing, a failure before the batch is sent
 * (nothing stored), or a commit whose answer is lost on the way back (stored, but the caller
 * sees an error and must ask PostgreSQL).
 */
export type Fault = "none" | "failBeforeSending" | "loseAnswer"

export const injected = () =>
  new SqlError.SqlError({
    reason: new SqlError.ConnectionError({ cause: new Error("injected fault"), message: "injected fault" })
  })

/**
 * The real `OrderStore` with each commit passed through `plan`: it may wait (to hold a commit
 * in flight) and picks the commit's fault. No mock database: what is stored is stored.
 */
export const faultyStore = (plan: (batch: Batch) => Effect.Effect<Fault>) =>
  Layer.effect(
    OrderStore,
    Effect.gen(function* () {
      const store = yield* OrderStore
      return OrderStore.of({
        ...store,
        commit: (batch) =>
          Effect.flatMap(plan(batch), (fault) => {
            switch (fault) {
              case "none":
                return store.commit(batch)
              case "failBeforeSending":
                return Effect.fail(injected())
              case "loseAnswer":
                return Effect.andThen(store.commit(batch), Effect.fail(injected()))
            }
          })
      })
    })
  )

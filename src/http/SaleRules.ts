import { Context, Deferred, Effect, type Exit, Layer } from "effect"
import type { SaleId, UserId } from "../domain/Ids.ts"
import type { PurchaseRules } from "../domain/PurchaseRules.ts"
import { Accounts } from "../storage/Accounts.ts"
import { Sales } from "../storage/Sales.ts"
import { accountTooNew, type AccountTooNew } from "./ApiErrors.ts"
import type { Session } from "./Tokens.ts"

/** Sales and accounts remembered at most each; the least recently learnt go first. */
const maxKnown = 50_000

/** What the account rule says of a buyer: admitted, refused, or not known without a read. */
export type AccountVerdict = "admitted" | "unknown" | AccountTooNew

/**
 * The purchase rules of each sale this node was asked about, and the creation time of the
 * accounts it had to look up, kept in memory: a sale's rules are fixed at its creation and an
 * account's creation time never changes, so neither is ever stale. Each is read from
 * PostgreSQL once per node; the purchase route asks synchronously and takes the effectful
 * path (which reads) only when this node does not know yet.
 */
export class SaleRules extends Context.Service<
  SaleRules,
  {
    /** The sale's rules if this node knows them. */
    readonly known: (saleId: SaleId) => PurchaseRules | undefined
    /** The sale's rules, read once; undefined: no such sale. */
    readonly load: (saleId: SaleId) => Effect.Effect<PurchaseRules | undefined>
    /**
     * The account rule for the buyer, from the token's creation claim or what was looked up;
     * "unknown" when neither says (then `resolve` reads it).
     */
    readonly account: (rules: PurchaseRules, session: Session) => AccountVerdict
    /** As `account`, reading the account's creation time when this node does not know it. */
    readonly resolve: (rules: PurchaseRules, session: Session) => Effect.Effect<AccountTooNew | undefined>
    /** `load` without a fiber of the caller's, for the node:http route: `then` hears its exit. */
    readonly loadThen: (saleId: SaleId, then: (exit: Exit.Exit<PurchaseRules | undefined>) => void) => void
    /** `resolve` without a fiber of the caller's, for the node:http route. */
    readonly resolveThen: (
      rules: PurchaseRules,
      session: Session,
      then: (exit: Exit.Exit<AccountTooNew | undefined>) => void
    ) => void
  }
>()("mincommerce/http/SaleRules") {
  static readonly layer = Layer.effect(
    SaleRules,
    Effect.gen(function* () {
      const sales = yield* Sales
      const accounts = yield* Accounts
      const rulesBySale = new Map<SaleId, PurchaseRules>()
      const createdAtByUser = new Map<UserId, number>()
      const runFork = Effect.runForkWith(yield* Effect.context<never>())
      const settle = <A>(effect: Effect.Effect<A>, then: (exit: Exit.Exit<A>) => void) =>
        void runFork(effect).addObserver(then)

      const remember = <K, V>(map: Map<K, V>, key: K, value: V) => {
        map.set(key, value)
        // A Map iterates in insertion order: the first key is the one learnt longest ago.
        if (map.size > maxKnown) {
          const oldest = map.keys().next()
          if (oldest.done !== true) map.delete(oldest.value)
        }
      }

      // A sale's opening brings thousands of purchases to a node that has not read its rules
      // yet: one read per sale at a time, run apart from any caller (so an interrupted caller
      // cannot leave the others waiting), and every caller meanwhile awaits it.
      const reading = new Map<SaleId, Deferred.Deferred<PurchaseRules | undefined>>()
      const load = (saleId: SaleId): Effect.Effect<PurchaseRules | undefined> =>
        Effect.suspend(() => {
          const known = rulesBySale.get(saleId)
          if (known !== undefined) return Effect.succeed(known)
          const inFlight = reading.get(saleId)
          if (inFlight !== undefined) return Deferred.await(inFlight)
          const done = Deferred.makeUnsafe<PurchaseRules | undefined>()
          reading.set(saleId, done)
          runFork(
            sales.rules(saleId).pipe(
              Effect.tap((rules) =>
                Effect.sync(() => rules !== undefined && remember(rulesBySale, saleId, rules))
              ),
              Effect.orDie,
              Effect.exit,
              Effect.flatMap((exit) => Deferred.done(done, exit)),
              Effect.ensuring(Effect.sync(() => reading.delete(saleId)))
            )
          )
          return Deferred.await(done)
        })

      const verdict = (rules: PurchaseRules, createdAt: number | undefined): AccountVerdict => {
        const before = rules.accountsCreatedBefore
        if (before === undefined) return "admitted"
        if (createdAt === undefined) return "unknown"
        return createdAt < before ? "admitted" : accountTooNew(before)
      }

      const account = (rules: PurchaseRules, session: Session) =>
        verdict(rules, session.accountCreatedAt ?? createdAtByUser.get(session.userId))

      const resolve = (rules: PurchaseRules, session: Session) => {
        const first = account(rules, session)
        if (first !== "unknown") return Effect.succeed(first === "admitted" ? undefined : first)
        return accounts.byId(session.userId).pipe(
          Effect.orDie,
          Effect.map((found) => {
            // A token for an account that is gone: it cannot be shown to be old enough.
            if (found === undefined) return verdict(rules, Number.POSITIVE_INFINITY)
            remember(createdAtByUser, session.userId, found.createdAt.getTime())
            return verdict(rules, found.createdAt.getTime())
          }),
          Effect.map((last) => (last === "admitted" || last === "unknown" ? undefined : last))
        )
      }

      return SaleRules.of({
        known: (saleId) => rulesBySale.get(saleId),
        load,
        account,
        resolve,
        loadThen: (saleId, then) => settle(load(saleId), then),
        resolveThen: (rules, session, then) => settle(resolve(rules, session), then)
      })
    })
  )
}

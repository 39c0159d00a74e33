import { Context, Duration, Effect, Layer } from "effect"
import * as Settings from "../Settings.ts"
import { rateLimited, type RateLimited } from "./ApiErrors.ts"
import { admit, Buckets } from "./Buckets.ts"

/**
 * How often sign-in and sign-up may be tried, so that guessing passwords or making accounts by
 * the hundred is slow. Every attempt counts against the caller's address and the account's email;
 * a wrong password also counts against the account's failure buckets (one per address, one for
 * all addresses), which refill within a window: a guesser is slowed to a few tries a minute,
 * and a buyer whose account is under attack waits seconds, never long, for the next try.
 */
export class AuthLimits extends Context.Service<
  AuthLimits,
  {
    /** A sign-in from `address` for `email`: the 429 to answer, or undefined to go on. */
    readonly signIn: (address: string, email: string) => RateLimited | undefined
    /** A wrong password (or unknown email) from `address` for `email`. */
    readonly failed: (address: string, email: string) => void
    /** A sign-up from `address` for `email`. */
    readonly signUp: (address: string, email: string) => RateLimited | undefined
  }
>()("mincommerce/http/AuthLimits") {
  static readonly make = (options: {
    readonly perAddress: number
    readonly perAccount: number
    readonly signUpsPerAddress: number
    readonly failuresPerAccount: number
    readonly window: Duration.Input
  }) => {
    const window = Duration.toMillis(Duration.fromInputUnsafe(options.window))
    const addresses = new Buckets(options.perAddress, window)
    const accounts = new Buckets(options.perAccount, window)
    const signUps = new Buckets(options.signUpsPerAddress, window * 10)
    const failuresFrom = new Buckets(options.failuresPerAccount, window)
    // From every address together: room for a few addresses' worth, refilled over five windows.
    const failures = new Buckets(options.failuresPerAccount * 4, window * 5)

    return AuthLimits.of({
      signIn: (address, email) => {
        const account = email.toLowerCase()
        const now = Date.now()
        const failing = Math.max(failuresFrom.wait(`${account} ${address}`, now), failures.wait(account, now))
        if (failing > 0) return rateLimited(failing)
        return admit([
          [addresses, address],
          [accounts, account]
        ])
      },
      failed: (address, email) => {
        const account = email.toLowerCase()
        const now = Date.now()
        failuresFrom.take(`${account} ${address}`, now)
        failures.take(account, now)
      },
      signUp: (address, email) =>
        admit([
          [addresses, address],
          [signUps, address],
          [accounts, email.toLowerCase()]
        ])
    })
  }

  static readonly layer = Layer.effect(
    AuthLimits,
    Effect.map(Settings.authLimitSettings, (settings) => AuthLimits.make(settings))
  )
}

import { Context, Duration, Effect, Layer } from "effect"
import * as Settings from "../Settings.ts"
import { rateLimited, type RateLimited } from "./ApiErrors.ts"

/**
 * Token buckets in memory, one per key: `capacity` tokens, refilled evenly over `windowMillis`.
 * A capacity of 0 turns the buckets off. Full buckets are dropped when the map grows, so a
 * stream of new keys costs bounded memory.
 */
class Buckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()
  private readonly capacity: number
  private readonly perMilli: number

  constructor(capacity: number, windowMillis: number) {
    this.capacity = capacity
    this.perMilli = capacity / Math.max(1, windowMillis)
  }

  private level(key: string, now: number): number {
    const bucket = this.buckets.get(key)
    return bucket === undefined
      ? this.capacity
      : Math.min(this.capacity, bucket.tokens + (now - bucket.at) * this.perMilli)
  }

  /** Seconds until a token is there, or 0 when one is. */
  wait(key: string, now: number): number {
    if (this.capacity <= 0) return 0
    const level = this.level(key, now)
    return level >= 1 ? 0 : Math.max(1, Math.ceil((1 - level) / this.perMilli / 1_000))
  }

  /** Takes a token (the level may go to zero, never below). */
  take(key: string, now: number): void {
    if (this.capacity <= 0) return
    if (this.buckets.size >= 100_000) this.sweep(now)
    this.buckets.set(key, { tokens: Math.max(0, this.level(key, now) - 1), at: now })
  }

  private sweep(now: number) {
    for (const key of this.buckets.keys()) if (this.level(key, now) >= this.capacity) this.buckets.delete(key)
  }
}

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

    // Takes a token from every bucket when all have one; else the longest wait, taking none.
    const admit = (pairs: ReadonlyArray<readonly [Buckets, string]>): RateLimited | undefined => {
      const now = Date.now()
      const wait = Math.max(...pairs.map(([buckets, key]) => buckets.wait(key, now)))
      if (wait > 0) return rateLimited(wait)
      for (const [buckets, key] of pairs) buckets.take(key, now)
      return undefined
    }

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

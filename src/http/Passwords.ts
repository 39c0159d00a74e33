import { hash, verify } from "@node-rs/argon2"
import { Context, Effect, Layer, Schema, Semaphore } from "effect"
import { availableParallelism } from "node:os"

/**
 * Argon2id at OWASP's password storage baseline: 19 MiB of memory, two passes, one lane.
 * The work runs on libuv's thread pool (the library's async call), never on the event loop
 * that serves purchases.
 */
export const argon2Parameters = {
  // The library's Algorithm.Argon2id (a const enum, which erasable TypeScript cannot import).
  algorithm: 2,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1
} as const

/**
 * Hashes run at once at most: all cores but one, so however many sign-ins arrive, one core is
 * left to the event loop that serves purchases (with two cores, one hash at a time; sign-ins
 * beyond that wait their turn rather than slow the sale).
 */
export const hashesAtOnce = Math.max(1, availableParallelism() - 1)

/** Lengths in characters after normalisation; the upper bound keeps hashing cheap to refuse. */
export const passwordLength = { min: 10, max: 128 } as const

/** A password that does not meet the policy: too short or too long. */
export class PasswordRefused extends Schema.TaggedError<PasswordRefused>()("PasswordRefused", {
  reason: Schema.Literals(["too_short", "too_long"])
}) {}

/**
 * Unicode-normalised (NFKC), so the same password typed on two keyboards is the same
 * password; counted in code points, as a person counts characters.
 */
export const normalise = (password: string): string => password.normalize("NFKC")

const policy = (password: string): PasswordRefused | undefined => {
  const length = [...password].length
  if (length < passwordLength.min) return new PasswordRefused({ reason: "too_short" })
  if (length > passwordLength.max) return new PasswordRefused({ reason: "too_long" })
  return undefined
}

/** Hashes and checks passwords. */
export class Passwords extends Context.Service<
  Passwords,
  {
    readonly hash: (password: string) => Effect.Effect<string, PasswordRefused>
    /**
     * Whether `password` matches `stored`. With no stored hash (no such account), a hash of
     * the same cost is still checked, so an unknown email takes as long as a wrong password.
     */
    readonly verify: (stored: string | undefined, password: string) => Effect.Effect<boolean>
  }
>()("mincommerce/http/Passwords") {
  static readonly layer = Layer.effect(
    Passwords,
    Effect.gen(function* () {
      const decoy = yield* Effect.promise(() => hash("a password nobody has", argon2Parameters))
      const hashing = yield* Semaphore.make(hashesAtOnce)
      return Passwords.of({
        hash: (password) =>
          Effect.suspend(() => {
            const normalised = normalise(password)
            const refused = policy(normalised)
            return refused !== undefined
              ? Effect.fail(refused)
              : hashing.withPermits(1)(Effect.promise(() => hash(normalised, argon2Parameters)))
          }),
        verify: (stored, password) =>
          hashing.withPermits(1)(
            Effect.promise(async () => {
              const normalised = normalise(password)
              // Over-long input is refused without hashing megabytes; the decoy keeps the time.
              const usable = policy(normalised)?.reason !== "too_long"
              const matches = await verify(stored ?? decoy, usable ? normalised : "", argon2Parameters).catch(
                () => false
              )
              return stored !== undefined && usable && matches
            })
          )
      })
    })
  )
}

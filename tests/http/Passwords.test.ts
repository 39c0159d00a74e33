import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Passwords, passwordLength } from "../../src/http/Passwords.ts"

describe("Passwords", () => {
  it.layer(Passwords.layer)((it) => {
    it.effect("hashes with Argon2id at OWASP's parameters and checks the password", () =>
      Effect.gen(function* () {
        const passwords = yield* Passwords
        const stored = yield* passwords.hash("correct horse battery")
        assert.match(stored, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/)
        assert.isTrue(yield* passwords.verify(stored, "correct horse battery"))
        assert.isFalse(yield* passwords.verify(stored, "correct horse batterY"))
        // Two hashes of one password differ (a fresh salt each).
        assert.notStrictEqual(stored, yield* passwords.hash("correct horse battery"))
      })
    )

    it.effect("an unknown account never matches, whatever the password", () =>
      Effect.gen(function* () {
        const passwords = yield* Passwords
        assert.isFalse(yield* passwords.verify(undefined, "a password nobody has"))
        assert.isFalse(yield* passwords.verify(undefined, "correct horse battery"))
      })
    )

    it.effect("refuses passwords outside the length policy, and over-long ones never match", () =>
      Effect.gen(function* () {
        const passwords = yield* Passwords
        const short = yield* Effect.flip(passwords.hash("x".repeat(passwordLength.min - 1)))
        assert.strictEqual(short.reason, "too_short")
        const long = yield* Effect.flip(passwords.hash("x".repeat(passwordLength.max + 1)))
        assert.strictEqual(long.reason, "too_long")
        const stored = yield* passwords.hash("x".repeat(passwordLength.max))
        assert.isTrue(yield* passwords.verify(stored, "x".repeat(passwordLength.max)))
        assert.isFalse(yield* passwords.verify(stored, "x".repeat(1_000_000)))
      })
    )

    it.effect("the same password typed in two Unicode forms is one password", () =>
      Effect.gen(function* () {
        const passwords = yield* Passwords
        // "é" precomposed (NFC) and as "e" + combining acute accent (NFD).
        const stored = yield* passwords.hash("caf\u00e9 au lait, please")
        assert.isTrue(yield* passwords.verify(stored, "cafe\u0301 au lait, please"))
      })
    )
  })
})

import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { adminCommand } from "../../src/AdminCommand.ts"
import { Accounts } from "../../src/storage/Accounts.ts"
import { TestDatabase } from "../support/TestDatabase.ts"

// A syntactically valid Argon2id PHC string: the column takes only such hashes.
const someHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"

describe("Accounts", () => {
  it.layer(Accounts.layer.pipe(Layer.provideMerge(TestDatabase.layer)), { timeout: 60_000 })((it) => {
    it.effect("an email has one account, found whatever its case", () =>
      Effect.gen(function* () {
        const accounts = yield* Accounts
        const made = yield* accounts.create("Ada@Example.test", someHash)
        assert.strictEqual(made.email, "ada@example.test")
        assert.isFalse(made.admin)
        const again = yield* Effect.flip(accounts.create("ada@example.TEST", someHash))
        assert.strictEqual(again._tag, "EmailTaken")
        const found = yield* accounts.byEmail("ADA@example.test")
        assert.strictEqual(found?.userId, made.userId)
        assert.strictEqual(found?.passwordHash, someHash)
        assert.isUndefined(yield* accounts.byEmail("nobody@example.test"))
      })
    )

    it.effect("refuses a password column that is not an Argon2id hash", () =>
      Effect.gen(function* () {
        const accounts = yield* Accounts
        const refused = yield* Effect.flip(accounts.create("plain@example.test", "hunter2hunter2"))
        assert.strictEqual(refused._tag, "SqlError")
        assert.isUndefined(yield* accounts.byEmail("plain@example.test"))
      })
    )

    it.effect("the admin role is granted and revoked by command, and read from the database", () =>
      Effect.gen(function* () {
        const accounts = yield* Accounts
        const grace = yield* accounts.create("grace@example.test", someHash)
        assert.isFalse(yield* accounts.isAdmin(grace.userId))
        const granted = yield* adminCommand(["grant", "Grace@example.test"])
        assert.strictEqual(granted.code, 0)
        assert.isTrue(yield* accounts.isAdmin(grace.userId))
        const revoked = yield* adminCommand(["revoke", "grace@example.test"])
        assert.strictEqual(revoked.code, 0)
        assert.isFalse(yield* accounts.isAdmin(grace.userId))
        const unknown = yield* adminCommand(["grant", "nobody@example.test"])
        assert.strictEqual(unknown.code, 1)
        assert.strictEqual((yield* adminCommand(["promote", "grace@example.test"])).code, 2)
        assert.strictEqual((yield* adminCommand(["grant"])).code, 2)
      })
    )

    it.effect("an identity provider's subject gets one account, never another person's", () =>
      Effect.gen(function* () {
        const accounts = yield* Accounts
        const first = yield* accounts.ofSubject("idp|42", "Lin@example.test")
        const second = yield* accounts.ofSubject("idp|42", "lin@example.test")
        assert.strictEqual(first.userId, second.userId)
        assert.strictEqual(first.email, "lin@example.test")
        assert.isUndefined(first.passwordHash)
        // A built-in account holds the address: the subject does not take it over.
        const owner = yield* accounts.create("taken@example.test", someHash)
        const stranger = yield* accounts.ofSubject("idp|43", "taken@example.test")
        assert.notStrictEqual(stranger.userId, owner.userId)
        assert.match(stranger.email, /@subject\.invalid$/)
        assert.isFalse(stranger.admin)
      })
    )
  })
})

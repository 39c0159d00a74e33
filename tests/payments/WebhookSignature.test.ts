import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { StaleWebhook } from "../../src/payments/PaymentErrors.ts"
import { sign, verify } from "../../src/payments/WebhookSignature.ts"

const secret = randomBytes(32)
const body = JSON.stringify({ eventId: "evt_1", kind: "succeeded" })
const sentAt = Date.UTC(2026, 10, 30, 12, 0, 0)
const check = (
  header: string | undefined,
  options: { body?: string | Uint8Array; nowMillis?: number; key?: Uint8Array } = {}
) =>
  verify({
    secret: options.key ?? secret,
    header,
    body: options.body ?? body,
    nowMillis: options.nowMillis ?? sentAt,
    toleranceSeconds: 300
  })

describe("WebhookSignature", () => {
  it.effect("what is signed verifies, as text or as bytes, within the tolerance either way", () =>
    Effect.gen(function* () {
      const header = sign(secret, sentAt, body)
      assert.match(header, /^t=\d+,v1=[0-9a-f]{64}$/)
      assert.strictEqual(yield* check(header), sentAt)
      assert.strictEqual(yield* check(header, { body: Buffer.from(body) }), sentAt)
      assert.strictEqual(yield* check(header, { nowMillis: sentAt + 299_000 }), sentAt)
      assert.strictEqual(yield* check(header, { nowMillis: sentAt - 299_000 }), sentAt)
    })
  )

  it.effect("a second v1 (a secret being rotated) is accepted when one of them matches", () =>
    Effect.gen(function* () {
      const old = sign(randomBytes(32), sentAt, body)
      const current = sign(secret, sentAt, body)
      const both = `${old},v1=${current.split("v1=")[1]}`
      assert.strictEqual(yield* check(both), sentAt)
    })
  )

  it.effect("another key, an altered body, a missing or unreadable header: BadSignature", () =>
    Effect.gen(function* () {
      const header = sign(secret, sentAt, body)
      const refused = [
        yield* Effect.flip(check(sign(randomBytes(32), sentAt, body))),
        yield* Effect.flip(check(header, { body: body.replace("succeeded", "failed") })),
        yield* Effect.flip(check(undefined)),
        yield* Effect.flip(check("")),
        yield* Effect.flip(check("t=abc,v1=00")),
        yield* Effect.flip(check(header.replace(/v1=[0-9a-f]{2}/, "v1=zz"))),
        yield* Effect.flip(check(`${header.slice(0, -2)}`)),
        // The timestamp is signed: moving it to make an old delivery look fresh breaks the MAC.
        yield* Effect.flip(check(header.replace(/t=\d+/, `t=${Math.floor(sentAt / 1000) + 60}`)))
      ]
      for (const error of refused) assert.strictEqual(error._tag, "BadSignature")
    })
  )

  it.effect("a valid signature older or further ahead than the tolerance: StaleWebhook", () =>
    Effect.gen(function* () {
      const header = sign(secret, sentAt, body)
      const old = yield* Effect.flip(check(header, { nowMillis: sentAt + 301_000 }))
      assert.deepStrictEqual(old, new StaleWebhook({ signedAt: sentAt, now: sentAt + 301_000 }))
      const ahead = yield* Effect.flip(check(header, { nowMillis: sentAt - 301_000 }))
      assert.strictEqual(ahead._tag, "StaleWebhook")
    })
  )

  it.effect("a stale delivery with a bad signature is BadSignature: nothing is told to a forger", () =>
    Effect.gen(function* () {
      const forged = sign(randomBytes(32), sentAt, body)
      const error = yield* Effect.flip(check(forged, { nowMillis: sentAt + 3_600_000 }))
      assert.strictEqual(error._tag, "BadSignature")
    })
  )
})

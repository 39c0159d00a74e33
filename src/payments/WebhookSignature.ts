import { Effect, Schema } from "effect"
import { createHmac, timingSafeEqual } from "node:crypto"
import { BadSignature, StaleWebhook } from "./PaymentErrors.ts"

/**
 * How a provider's webhook proves where it came from and when: an HMAC-SHA256, under the
 * secret the provider and the node share, over `timestamp + "." + body`, sent as
 * `t=<unix seconds>,v1=<hex>`. Signing the timestamp with the body is what lets the receiver
 * refuse an old delivery replayed by someone who captured it; the provider signs every retry
 * afresh. More than one `v1` may be sent while the secret is being rotated.
 *
 * The development provider signs with this module and the node verifies with it; a real
 * provider brings its own scheme (most use this very shape).
 */
export const signatureHeader = "mincommerce-signature"

/** How far a signature's timestamp may be from the receiver's clock, either way. */
export const defaultToleranceSeconds = 300

const mac = (secret: Uint8Array, timestamp: number, body: string | Uint8Array): Buffer =>
  createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest()

/** The signature header's value for `body` sent at `nowMillis`. */
export const sign = (secret: Uint8Array, nowMillis: number, body: string | Uint8Array): string => {
  const timestamp = Math.floor(nowMillis / 1_000)
  return `t=${timestamp},v1=${mac(secret, timestamp, body).toString("hex")}`
}

const SignatureHeader = Schema.String.check(Schema.isPattern(/^t=\d{1,12}(,v1=[0-9a-f]{64})+$/))
const readHeader = Schema.decodeUnknownOption(SignatureHeader)

/**
 * Checks `header` against `body`: the signature first, so a sender without the secret learns
 * nothing else, then the timestamp. Succeeds with the signing time in epoch milliseconds.
 */
export const verify = (options: {
  readonly secret: Uint8Array
  readonly header: string | undefined
  readonly body: string | Uint8Array
  readonly nowMillis: number
  readonly toleranceSeconds: number
}): Effect.Effect<number, BadSignature | StaleWebhook> => {
  const header = readHeader(options.header)
  if (header._tag === "None") return Effect.fail(new BadSignature())
  const [stamp = "", ...candidates] = header.value.split(",")
  const timestamp = Number(stamp.slice("t=".length))
  const expected = mac(options.secret, timestamp, options.body)
  // Every candidate is 32 bytes (the header's pattern says so), as timingSafeEqual needs.
  const matches = candidates.some((candidate) =>
    timingSafeEqual(Buffer.from(candidate.slice("v1=".length), "hex"), expected)
  )
  if (!matches) return Effect.fail(new BadSignature())
  const signedAt = timestamp * 1_000
  return Math.abs(options.nowMillis - signedAt) > options.toleranceSeconds * 1_000
    ? Effect.fail(new StaleWebhook({ signedAt, now: options.nowMillis }))
    : Effect.succeed(signedAt)
}

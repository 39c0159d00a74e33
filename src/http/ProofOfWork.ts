import { createChallenge, randomInt } from "altcha-lib"
import { deriveKey } from "altcha-lib/algorithms/pbkdf2"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { createHmac, timingSafeEqual } from "node:crypto"
import type { SaleId, UserId } from "../domain/Ids.ts"
import { sharedSecret } from "../Secret.ts"
import { proofOfWorkRejected, proofOfWorkReused, proofOfWorkRequired, type ApiError } from "./ApiErrors.ts"

/**
 * ALTCHA's key derivation for a challenge: PBKDF2-SHA-256, which browsers run natively (Web
 * Crypto), so a person's browser works nearly as fast per derivation as a farm's native code.
 */
export const powAlgorithm = "PBKDF2/SHA-256"
/** PBKDF2 iterations per derivation: a few tenths of a millisecond on one core. */
export const powCost = 1_000
/** How long a challenge may be solved and spent: a person solves it in seconds. */
export const challengeTtlSeconds = 120
/** The header a purchase carries its solution in (ALTCHA's payload: base64 of its JSON). */
export const proofHeader = "proof-of-work"
/** Spent challenges remembered at most; see `spend` for why forgetting one early is harmless. */
const maxSpent = 200_000

const ChallengeParameters = Schema.Struct({
  algorithm: Schema.String,
  nonce: Schema.String,
  salt: Schema.String,
  cost: Schema.Int,
  keyLength: Schema.Int,
  keyPrefix: Schema.String,
  keySignature: Schema.optionalKey(Schema.String),
  memoryCost: Schema.optionalKey(Schema.Int),
  parallelism: Schema.optionalKey(Schema.Int),
  expiresAt: Schema.optionalKey(Schema.Finite),
  data: Schema.optionalKey(
    Schema.Record(Schema.String, Schema.NullOr(Schema.Union([Schema.String, Schema.Finite, Schema.Boolean])))
  )
})

/** A challenge as the node issues it (ALTCHA v2's shape), signed with the nodes' shared key. */
export const PowChallenge = Schema.Struct({ parameters: ChallengeParameters, signature: Schema.String })
export type PowChallenge = typeof PowChallenge.Type

const PowSolution = Schema.Struct({
  counter: Schema.Int,
  derivedKey: Schema.String,
  time: Schema.optionalKey(Schema.Finite)
})
export type PowSolution = typeof PowSolution.Type

// What the `Proof-Of-Work` header carries once base64-decoded: the challenge and its solution.
const Proof = Schema.fromJsonString(Schema.Struct({ challenge: PowChallenge, solution: PowSolution }))
const decodeProof = Schema.decodeUnknownOption(Proof)

/** The HMAC keys of challenges, derived from the deployment's shared secret (hex, as altcha-lib takes them). */
export interface PowKeys {
  readonly hmacSignatureSecret: string
  readonly hmacKeySignatureSecret: string
}

export const powKeys = (secret: Uint8Array): PowKeys => {
  const derived = (label: string) => createHmac("sha256", secret).update(label).digest("hex")
  return {
    hmacSignatureSecret: derived("mincommerce proof-of-work challenge"),
    hmacKeySignatureSecret: derived("mincommerce proof-of-work key")
  }
}

// altcha-lib's canonical JSON of the parameters (keys sorted, undefined fields left out): the
// text its signature covers.
const sortKeys = (value: unknown): unknown =>
  typeof value !== "object" || value === null || Array.isArray(value)
    ? value
    : Object.fromEntries(
        Object.entries(value)
          .filter(([, field]) => field !== undefined)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([key, field]) => [key, sortKeys(field)])
      )

const hexEqual = (hex: string, expected: Buffer) => {
  if (hex.length !== expected.length * 2) return false
  const given = Buffer.from(hex, "hex")
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/**
 * altcha-lib's `verifySolution` for the node's own challenges (signed, with a key signature),
 * but the expiry, which the caller checks first: the challenge's HMAC signature, then the
 * derived key's HMAC against the key signature made at issue. The same two HMACs, computed with
 * node:crypto synchronously where the library awaits Web Crypto: about 15 µs of CPU instead of
 * about 230 µs on this machine, which a flood of forged proofs would otherwise turn into the
 * node's bottleneck. tests/http/ProofOfWork.test.ts holds it to the library's verdicts.
 */
export const solutionHolds = (keys: PowKeys, challenge: PowChallenge, solution: PowSolution): boolean => {
  const signed = createHmac("sha256", keys.hmacSignatureSecret)
    .update(JSON.stringify(sortKeys(challenge.parameters)))
    .digest()
  if (!hexEqual(challenge.signature, signed)) return false
  const keySignature = challenge.parameters.keySignature
  if (keySignature === undefined || !/^(?:[0-9a-f]{2})+$/.test(solution.derivedKey)) return false
  const derived = createHmac("sha256", keys.hmacKeySignatureSecret)
    .update(Buffer.from(solution.derivedKey, "hex"))
    .digest()
  return hexEqual(keySignature, derived)
}

/**
 * Proofs of work with ALTCHA (`altcha-lib`): a challenge is bound to one buyer and one sale
 * (in its signed `data`) and expires; a purchase carries it solved. Checking a solution is two
 * HMACs (the challenge's signature, and the derived key's against the key signature made at
 * issue: `solutionHolds`), synchronous, with no key derivation and no database read. Every
 * node signs and checks with keys derived from the deployment's shared secret, so any node
 * checks what another issued.
 */
export class ProofOfWork extends Context.Service<
  ProofOfWork,
  {
    /** A new challenge for the buyer and sale, `difficulty` derivations at most to solve. */
    readonly issue: (saleId: SaleId, userId: UserId, difficulty: number) => Effect.Effect<PowChallenge>
    /**
     * Checks and spends the solution a purchase carries (the header's value): undefined when
     * it admits the purchase, else the refusal. Sales without proof of work never call it.
     */
    readonly verify: (proof: string | undefined, saleId: SaleId, userId: UserId) => ApiError | undefined
  }
>()("mincommerce/http/ProofOfWork") {
  static readonly make = (secret: Uint8Array, options: { readonly ttlSeconds?: number } = {}) => {
    const ttlSeconds = options.ttlSeconds ?? challengeTtlSeconds
    const keys = powKeys(secret)

    // Spent challenges (by signature) until they expire, oldest first: every challenge lives
    // the same time, so insertion order is expiry order and the sweep looks only at the head.
    const spent = new Map<string, number>()
    const sweep = (now: number) => {
      for (const [signature, expiresAt] of spent) {
        if (expiresAt > now && spent.size < maxSpent) break
        spent.delete(signature)
      }
    }
    // A challenge is spent on this node only. Presenting it again elsewhere, or here after the
    // cap pushed it out, buys nothing either: it names one buyer and one sale, and the sale's
    // owner answers a buyer's repeat with the buyer's first answer (one order per buyer), so a
    // reuse is at most a repeat request, which the per-buyer rate limit bounds anyway.
    const spend = (signature: string, expiresAt: number, now: number) => {
      sweep(now)
      spent.set(signature, expiresAt)
    }

    const issue = (saleId: SaleId, userId: UserId, difficulty: number) =>
      Effect.promise(() =>
        createChallenge({
          algorithm: powAlgorithm,
          cost: powCost,
          // The secret counter the solver must find, from half the difficulty to all of it.
          counter: randomInt(difficulty, Math.ceil(difficulty / 2)),
          deriveKey,
          expiresAt: Math.floor(Date.now() / 1_000) + ttlSeconds,
          data: { saleId, userId },
          ...keys
        })
      ).pipe(
        Effect.flatMap((challenge) =>
          challenge.signature === undefined
            ? Effect.die(new Error("altcha-lib issued an unsigned challenge"))
            : Effect.succeed<PowChallenge>({
                parameters: challenge.parameters,
                signature: challenge.signature
              })
        )
      )

    const verify = (proof: string | undefined, saleId: SaleId, userId: UserId) => {
      if (proof === undefined || proof.length === 0) return proofOfWorkRequired()
      const decoded = decodeProof(Buffer.from(proof, "base64").toString("utf8"))
      if (Option.isNone(decoded)) return proofOfWorkRejected("invalid")
      const { challenge, solution } = decoded.value
      const now = Date.now()
      // What needs no HMAC first: a stale, foreign or spent challenge is refused for free.
      const expiresAt = (challenge.parameters.expiresAt ?? 0) * 1_000
      if (expiresAt <= now) return proofOfWorkRejected("expired")
      const data = challenge.parameters.data
      if (data?.saleId !== saleId || data.userId !== userId) return proofOfWorkRejected("foreign")
      if (spent.has(challenge.signature)) return proofOfWorkReused()
      if (!solutionHolds(keys, challenge, solution)) return proofOfWorkRejected("invalid")
      spend(challenge.signature, expiresAt, now)
      return undefined
    }

    return ProofOfWork.of({ issue, verify })
  }

  static readonly layer = Layer.effect(
    ProofOfWork,
    Effect.map(sharedSecret, (secret) => ProofOfWork.make(secret))
  )
}

import { createChallenge, randomInt, verifySolution } from "altcha-lib"
import { deriveKey } from "altcha-lib/algorithms/pbkdf2"
import { Context, Effect, Layer, Option, Schema } from "effect"
import { createHmac } from "node:crypto"
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

// What the `Proof-Of-Work` header carries once base64-decoded: the challenge and its solution.
const Proof = Schema.fromJsonString(
  Schema.Struct({
    challenge: PowChallenge,
    solution: Schema.Struct({
      counter: Schema.Int,
      derivedKey: Schema.String,
      time: Schema.optionalKey(Schema.Finite)
    })
  })
)
const decodeProof = Schema.decodeUnknownOption(Proof)

/**
 * Proofs of work with ALTCHA (`altcha-lib`): a challenge is bound to one buyer and one sale
 * (in its signed `data`) and expires; a purchase carries it solved. Checking a solution is two
 * HMACs (the challenge's signature, and the derived key's against the key signature made at
 * issue), no key derivation and no database read. Every node signs and checks with keys
 * derived from the deployment's shared secret, so any node checks what another issued.
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
    readonly verify: (
      proof: string | undefined,
      saleId: SaleId,
      userId: UserId
    ) => Promise<ApiError | undefined>
  }
>()("mincommerce/http/ProofOfWork") {
  static readonly make = (secret: Uint8Array, options: { readonly ttlSeconds?: number } = {}) => {
    const ttlSeconds = options.ttlSeconds ?? challengeTtlSeconds
    const derived = (label: string) => createHmac("sha256", secret).update(label).digest("hex")
    const hmacSignatureSecret = derived("mincommerce proof-of-work challenge")
    const hmacKeySignatureSecret = derived("mincommerce proof-of-work key")

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
    const spend = (signature: string, expiresAt: number, now: number): boolean => {
      if (spent.has(signature)) return false
      sweep(now)
      spent.set(signature, expiresAt)
      return true
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
          hmacSignatureSecret,
          hmacKeySignatureSecret
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

    const verify = async (proof: string | undefined, saleId: SaleId, userId: UserId) => {
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
      const result = await verifySolution({
        challenge,
        solution,
        deriveKey,
        hmacSignatureSecret,
        hmacKeySignatureSecret
      }).catch(() => undefined)
      if (result?.verified !== true)
        return proofOfWorkRejected(result?.expired === true ? "expired" : "invalid")
      // Two purchases with one solution may pass the check above together: one spends it.
      return spend(challenge.signature, expiresAt, Date.now()) ? undefined : proofOfWorkReused()
    }

    return ProofOfWork.of({ issue, verify })
  }

  static readonly layer = Layer.effect(
    ProofOfWork,
    Effect.map(sharedSecret, (secret) => ProofOfWork.make(secret))
  )
}

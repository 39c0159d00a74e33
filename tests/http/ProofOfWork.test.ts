import { solveChallenge, verifySolution } from "altcha-lib"
import { deriveKey } from "altcha-lib/algorithms/pbkdf2"
import { Effect } from "effect"
import { assert, describe, it } from "vitest"
import type { SaleId, UserId } from "../../src/domain/Ids.ts"
import {
  powKeys,
  ProofOfWork,
  solutionHolds,
  type PowChallenge,
  type PowSolution
} from "../../src/http/ProofOfWork.ts"

const secret = new TextEncoder().encode("a test secret, long enough for HS256 use")
const keys = powKeys(secret)
const saleId = "00000000-0000-4000-8000-00000000000a" as SaleId
const userId = "00000000-0000-4000-8000-00000000000b" as UserId

const solved = async () => {
  const challenge = await Effect.runPromise(ProofOfWork.make(secret).issue(saleId, userId, 8))
  const solution = await solveChallenge({ challenge, deriveKey })
  assert.isNotNull(solution)
  return { challenge, solution: solution as PowSolution }
}

/** The library's own verdict on a challenge and solution, with the node's keys. */
const libraryVerdict = async (challenge: PowChallenge, solution: PowSolution) =>
  (await verifySolution({ challenge, solution, deriveKey, ...keys }).catch(() => undefined))?.verified ===
  true

describe("the node's check of a solution", () => {
  it("agrees with altcha-lib's verifySolution on a solution and on every kind of tampering", async () => {
    const { challenge, solution } = await solved()
    const p = challenge.parameters
    const cases: Array<[string, PowChallenge, PowSolution]> = [
      ["as solved", challenge, solution],
      ["another signature", { ...challenge, signature: "00".repeat(32) }, solution],
      ["a cheaper cost", { ...challenge, parameters: { ...p, cost: 1 } }, solution],
      ["another buyer", { ...challenge, parameters: { ...p, data: { saleId, userId: saleId } } }, solution],
      [
        "a later expiry",
        { ...challenge, parameters: { ...p, expiresAt: (p.expiresAt ?? 0) + 3_600 } },
        solution
      ],
      ["no key signature", { ...challenge, parameters: { ...p, keySignature: "ab" } }, solution],
      ["a wrong key", challenge, { ...solution, derivedKey: "00".repeat(32) }],
      ["an upper-case key", challenge, { ...solution, derivedKey: solution.derivedKey.toUpperCase() }],
      ["a short key", challenge, { ...solution, derivedKey: solution.derivedKey.slice(0, 8) }],
      ["a key that is not hex", challenge, { ...solution, derivedKey: "zz" }]
    ]
    for (const [name, c, s] of cases)
      assert.strictEqual(solutionHolds(keys, c, s), await libraryVerdict(c, s), name)
    assert.isTrue(solutionHolds(keys, challenge, solution))
    assert.isFalse(
      solutionHolds(powKeys(new TextEncoder().encode("another deployment's secret")), challenge, solution)
    )
  })

  it("spends a solution once per node, and refuses it for another buyer or sale", async () => {
    const { challenge, solution } = await solved()
    const proof = Buffer.from(JSON.stringify({ challenge, solution })).toString("base64")
    const node = ProofOfWork.make(secret)
    assert.strictEqual(
      node.verify(proof, saleId, saleId as unknown as UserId)?.error.code,
      "proof_of_work_foreign"
    )
    assert.strictEqual(
      node.verify(proof, userId as unknown as SaleId, userId)?.error.code,
      "proof_of_work_foreign"
    )
    assert.isUndefined(node.verify(proof, saleId, userId))
    assert.strictEqual(node.verify(proof, saleId, userId)?.error.code, "proof_of_work_reused")
    assert.strictEqual(node.verify(undefined, saleId, userId)?.error.code, "proof_of_work_required")
    assert.strictEqual(node.verify("e30=", saleId, userId)?.error.code, "proof_of_work_invalid")
  })
})

/**
 * `npm run bench:pow`: what a sale's proof of work costs, measured with the node's own
 * ProofOfWork (altcha-lib) in this process, one core:
 *
 * - the buyer's side: wall and CPU time to solve challenges at a difficulty, with ALTCHA's solver
 *   and Node's native PBKDF2 (a farm's script; a browser's Web Crypto is of the same order);
 * - the node's side: time to issue a challenge (one key derivation, on libuv's thread pool) and
 *   to check a solution (two HMACs), per operation.
 *
 * Options: --difficulty N (default: the admin console's suggestion), --challenges N.
 */
import { solveChallenge } from "altcha-lib"
import { deriveKey } from "altcha-lib/algorithms/pbkdf2"
import { Effect } from "effect"
import { parseArgs } from "node:util"
import type { SaleId, UserId } from "../src/domain/Ids.ts"
import { powAlgorithm, powCost, ProofOfWork, type PowChallenge } from "../src/http/ProofOfWork.ts"

const { values: args } = parseArgs({
  options: { difficulty: { type: "string" }, challenges: { type: "string" } }
})
// The admin console's suggestion (web/src/admin/NewSale.tsx).
const difficulty = Number(args.difficulty ?? 2_000)
const challenges = Number(args.challenges ?? 20)

const pow = ProofOfWork.make(new TextEncoder().encode("bench secret, long enough for HMAC use"))
const saleId = "00000000-0000-4000-8000-000000000001" as SaleId
const userId = "00000000-0000-4000-8000-000000000002" as UserId

const cpuMillis = (since: NodeJS.CpuUsage) => {
  const used = process.cpuUsage(since)
  return (used.user + used.system) / 1_000
}

const issueOne = (): Promise<PowChallenge> => Effect.runPromise(pow.issue(saleId, userId, difficulty))

const solve = async (challenge: PowChallenge) => {
  const solution = await solveChallenge({ challenge, deriveKey })
  if (solution === null) throw new Error("the solver gave up")
  return Buffer.from(JSON.stringify({ challenge, solution })).toString("base64")
}

console.log(`proof of work: ${powAlgorithm}, ${powCost} iterations per derivation, difficulty ${difficulty}`)

const issueStart = performance.now()
const issued: Array<PowChallenge> = []
for (let i = 0; i < challenges; i++) issued.push(await issueOne())
const issueMillis = (performance.now() - issueStart) / challenges

const solveTimes: Array<number> = []
const proofs: Array<string> = []
const solveCpu = process.cpuUsage()
for (const challenge of issued) {
  const start = performance.now()
  proofs.push(await solve(challenge))
  solveTimes.push(performance.now() - start)
}
const solveCpuMillis = cpuMillis(solveCpu) / challenges
solveTimes.sort((a, b) => a - b)
const mean = solveTimes.reduce((sum, t) => sum + t, 0) / solveTimes.length

// Each round checks every solution on a node of its own (a solution is spent once checked).
const secret = new TextEncoder().encode("bench secret, long enough for HMAC use")
const rounds = 500
const checkAll = () => {
  const node = ProofOfWork.make(secret)
  const refusals = proofs.map((proof) => node.verify(proof, saleId, userId))
  if (refusals.some((refusal) => refusal !== undefined)) throw new Error("a solution did not verify")
}
// Warm-up: the first rounds measure the JIT, not the check.
for (let round = 0; round < 50; round++) checkAll()
const verifyCpu = process.cpuUsage()
const verifyStart = performance.now()
for (let round = 0; round < rounds; round++) checkAll()
const verifyWall = (performance.now() - verifyStart) / (rounds * proofs.length)
const verifyCpuMillis = cpuMillis(verifyCpu) / (rounds * proofs.length)

const ms = (value: number) => `${value.toFixed(value < 10 ? 2 : 0)} ms`
console.log(
  `solve (per challenge, ${challenges} challenges): mean ${ms(mean)}, median ${ms(solveTimes[Math.floor(solveTimes.length / 2)] ?? 0)}, max ${ms(solveTimes.at(-1) ?? 0)}`
)
console.log(
  `solve CPU per challenge: ${ms(solveCpuMillis)} (a farm pays this per purchase attempt and account)`
)
console.log(
  `node: issue ${ms(issueMillis)} per challenge; verify ${(verifyWall * 1_000).toFixed(0)} µs wall, ${(verifyCpuMillis * 1_000).toFixed(0)} µs CPU per solution `
)

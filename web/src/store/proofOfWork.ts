import { solveChallenge } from "altcha-lib"
import { deriveKey } from "altcha-lib/algorithms/web/pbkdf2"
import { api } from "../api.ts"

/**
 * Proves the buyer spent a little work on this purchase: asks the node for a challenge bound
 * to the buyer and the sale, solves it with ALTCHA's solver (PBKDF2 through Web Crypto, which
 * runs natively off the page's thread), and packs it as the purchase's `Proof-Of-Work` header
 * wants: base64 of `{ challenge, solution }`. Undefined when the solver gave up (its timeout).
 */
export const proveFor = async (token: string, saleId: string): Promise<string | undefined> => {
  const challenge = await api.challenge(token, saleId)
  const solution = await solveChallenge({ challenge, deriveKey })
  if (solution === null) return undefined
  return btoa(JSON.stringify({ challenge, solution }))
}

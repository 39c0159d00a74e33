import { createSigner } from "fast-jwt"
import type { UserId } from "../src/domain/Ids.ts"

/** The HS256 secret the bench shares with every server it starts. */
export const benchSecret = "bench secret, shared with the servers the bench starts"

/**
 * One session token per buyer, signed as a MinCommerce node signs them (HS256, claims sub,
 * email, iat, exp), valid for two hours.
 */
export const signTokens = (users: ReadonlyArray<UserId>, secret = benchSecret): Array<string> => {
  const sign = createSigner({ key: Buffer.from(secret), algorithm: "HS256", expiresIn: 2 * 3_600_000 })
  return users.map((userId, i) => sign({ sub: userId, email: `buyer-${i}@example.test` }))
}

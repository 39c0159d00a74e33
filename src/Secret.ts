import { Effect, Option, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as Settings from "./Settings.ts"

/**
 * The secret the nodes of one deployment share: JWT_SECRET (32 bytes at least, checked with
 * the settings), or, unset, one made once per data folder (so tokens survive restarts without
 * configuration). It signs session tokens, and a key derived from it admits nodes to each
 * other's forward port.
 */
export const sharedSecret = Effect.gen(function* () {
  const { jwtSecret } = yield* Settings.authSettings
  return Option.isSome(jwtSecret)
    ? new TextEncoder().encode(Redacted.value(jwtSecret.value))
    : persistedSecret(yield* Settings.dataDir)
})

const persistedSecret = (dataDir: string): Uint8Array => {
  const file = join(dataDir, "jwt-secret")
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true })
    writeFileSync(file, randomBytes(32).toString("hex"), { mode: 0o600 })
  }
  return new TextEncoder().encode(readFileSync(file, "utf8").trim())
}

import { Layer } from "effect"
import { Accounts } from "../storage/Accounts.ts"
import { AdminRole } from "./AdminRole.ts"
import { AuthLimits } from "./AuthLimits.ts"
import { IdentityProvider } from "./IdentityProvider.ts"
import { Passwords } from "./Passwords.ts"
import { Tokens } from "./Tokens.ts"

/**
 * Who a request is from and what they may do: accounts and their passwords, the node's tokens,
 * the shop's identity provider when one is set, sign-in limits and the admin role. Tokens.layer
 * is the same layer the purchase route uses, so both share one instance (and its cache of
 * provider tokens).
 */
export const Identity = Layer.mergeAll(AuthLimits.layer, AdminRole.layer, IdentityProvider.layer).pipe(
  Layer.provideMerge(Layer.mergeAll(Accounts.layer, Passwords.layer, Tokens.layer))
)

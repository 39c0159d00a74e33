import { Effect, Layer, Redacted } from "effect"
import { Authentication, CurrentUser, ErrorAnswers } from "./Api.ts"
import { isApiError, NotSignedIn } from "./ApiErrors.ts"
import { IdentityProvider } from "./IdentityProvider.ts"
import { errorAnswer, toServerResponse } from "./JsonAnswer.ts"
import { Tokens } from "./Tokens.ts"

/**
 * The buyer of every signed-in request comes from its bearer token, checked here: the node's
 * own tokens and provider tokens seen before synchronously, a provider token seen for the first
 * time against the provider's keys.
 */
export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.gen(function* () {
    const tokens = yield* Tokens
    const provider = yield* IdentityProvider
    const rejected = new NotSignedIn({
      error: { code: "unauthorized", message: "Missing, invalid or expired token" }
    })
    return Authentication.of({
      bearer: (effect, { credential }) => {
        const token = Redacted.value(credential)
        const session = tokens.verify(token)
        if (session !== undefined) return Effect.provideService(effect, CurrentUser, session)
        return provider.verify(token).pipe(
          Effect.flatMap((verified) =>
            verified === undefined ? Effect.fail(rejected) : Effect.succeed(verified)
          ),
          Effect.flatMap((verified) => Effect.provideService(effect, CurrentUser, verified))
        )
      }
    })
  })
)

/** Every API error is answered with the bytes, status and `Retry-After` its table entry gives. */
export const ErrorAnswersLive = Layer.succeed(ErrorAnswers, (effect) =>
  Effect.catch(effect, (error) =>
    isApiError(error) ? Effect.succeed(toServerResponse(errorAnswer(error))) : Effect.fail(error)
  )
)

import { Effect, Layer, Redacted } from "effect"
import { Authentication, CurrentUser, ErrorAnswers } from "./Api.ts"
import { isApiError, NotSignedIn } from "./ApiErrors.ts"
import { errorAnswer, toServerResponse } from "./JsonAnswer.ts"
import { Tokens } from "./Tokens.ts"

/** The buyer of every signed-in request comes from its bearer token, checked here. */
export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.gen(function* () {
    const tokens = yield* Tokens
    const rejected = new NotSignedIn({
      error: { code: "unauthorized", message: "Missing, invalid or expired token" }
    })
    return Authentication.of({
      bearer: (effect, { credential }) => {
        const session = tokens.verify(Redacted.value(credential))
        return session === undefined
          ? Effect.fail(rejected)
          : Effect.provideService(effect, CurrentUser, session)
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

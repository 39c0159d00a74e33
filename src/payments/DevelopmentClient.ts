import { Effect, flow, Redacted, Schedule, Schema } from "effect"
import { HttpClient, HttpClientRequest, HttpClientResponse } from "effect/http"
import { PaymentIntent, Refund, type IntentRequest } from "../domain/Payments.ts"
import { paths, ProblemBody, WebhookBody } from "./DevelopmentProtocol.ts"
import { MalformedWebhook, NothingToRefund, ProviderRefused, ProviderUnreachable } from "./PaymentErrors.ts"
import type { PaymentProvider, WebhookHeaders } from "./PaymentProvider.ts"
import { signatureHeader, verify } from "./WebhookSignature.ts"

export interface DevelopmentClientOptions {
  /** Where the development provider listens, e.g. `http://127.0.0.1:4100`. */
  readonly url: string
  /** The key the node presents on server-to-server calls. */
  readonly key: Redacted.Redacted<string>
  /** The secret the provider signs its webhooks with. */
  readonly webhookSecret: Redacted.Redacted<Uint8Array>
  readonly toleranceSeconds: number
}

const decodeEvent = Schema.decodeUnknownEffect(WebhookBody)
const readProblem = HttpClientResponse.schemaBodyJson(ProblemBody)

const firstValue = (value: string | ReadonlyArray<string> | undefined): string | undefined =>
  typeof value === "string" ? value : value?.[0]

/**
 * The node's side of the development provider, over HTTP: the implementation behind
 * `PaymentProvider.development`. A real provider's module has this same shape: its own
 * requests for `createIntent` and `refund`, its own signature scheme in `verifyWebhook`.
 */
export const makeDevelopmentClient = (options: DevelopmentClientOptions) =>
  Effect.gen(function* () {
    const client = (yield* HttpClient.HttpClient).pipe(
      HttpClient.mapRequest(
        flow(
          HttpClientRequest.prependUrl(options.url),
          HttpClientRequest.bearerToken(options.key),
          HttpClientRequest.acceptJson
        )
      ),
      // Both calls are idempotent at the provider (one intent per order, one refund per
      // intent), so a lost answer or a 5xx is safely asked again, a few times.
      HttpClient.retryTransient({ schedule: Schedule.exponential("100 millis"), times: 3 })
    )

    /** A 2xx decoded as `success`, a 4xx as ProviderRefused, anything else as unreachable. */
    const read = <A>(
      operation: string,
      response: HttpClientResponse.HttpClientResponse,
      success: Schema.Decoder<A>
    ): Effect.Effect<A, ProviderUnreachable | ProviderRefused> => {
      if (response.status >= 500)
        return Effect.fail(
          new ProviderUnreachable({ operation, cause: new Error(`status ${response.status}`) })
        )
      if (response.status >= 400)
        return readProblem(response).pipe(
          Effect.map((body) => body.error),
          Effect.orElseSucceed(() => "no reason given"),
          Effect.flatMap((problem) =>
            Effect.fail(new ProviderRefused({ operation, status: response.status, problem }))
          )
        )
      return HttpClientResponse.schemaBodyJson(success)(response).pipe(
        Effect.mapError(
          (cause) =>
            new ProviderRefused({
              operation,
              status: response.status,
              problem: `unreadable answer: ${cause}`
            })
        )
      )
    }

    const call = <A>(
      operation: string,
      request: HttpClientRequest.HttpClientRequest,
      success: Schema.Decoder<A>
    ) =>
      client.execute(request).pipe(
        Effect.timeout("10 seconds"),
        Effect.mapError((cause) => new ProviderUnreachable({ operation, cause })),
        Effect.flatMap((response) => read(operation, response, success))
      )

    const createIntent = Effect.fn("PaymentProvider.createIntent")(function* (request: IntentRequest) {
      yield* Effect.annotateCurrentSpan({ orderId: request.orderId })
      return yield* call(
        "createIntent",
        HttpClientRequest.post(paths.intents).pipe(HttpClientRequest.bodyJsonUnsafe(request)),
        PaymentIntent
      )
    })

    const refund = Effect.fn("PaymentProvider.refund")(function* (request: {
      readonly intentId: string
      readonly reason: string
    }) {
      yield* Effect.annotateCurrentSpan({ intentId: request.intentId })
      return yield* call(
        "refund",
        HttpClientRequest.post(paths.refund(request.intentId)).pipe(
          HttpClientRequest.bodyJsonUnsafe({ reason: request.reason })
        ),
        Refund
      ).pipe(
        Effect.catchIf(
          (error) => error._tag === "ProviderRefused" && error.status === 409,
          () => Effect.fail(new NothingToRefund({ intentId: request.intentId }))
        )
      )
    })

    const verifyWebhook = Effect.fnUntraced(function* (
      headers: WebhookHeaders,
      rawBody: string | Uint8Array,
      nowMillis: number
    ) {
      yield* verify({
        secret: Redacted.value(options.webhookSecret),
        header: firstValue(headers[signatureHeader]),
        body: rawBody,
        nowMillis,
        toleranceSeconds: options.toleranceSeconds
      })
      const text = typeof rawBody === "string" ? rawBody : Buffer.from(rawBody).toString("utf8")
      return yield* decodeEvent(text).pipe(
        Effect.mapError((error) => new MalformedWebhook({ problem: error.message }))
      )
    })

    return { createIntent, refund, verifyWebhook } satisfies PaymentProvider["Service"]
  })

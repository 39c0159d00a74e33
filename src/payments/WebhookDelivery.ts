import { Clock, Data, Duration, Effect, Redacted, Schedule, Schema } from "effect"
import { HttpClient, HttpClientRequest } from "effect/http"
import type { PaymentEvent } from "../domain/Payments.ts"
import { WebhookBody } from "./DevelopmentProtocol.ts"
import { sign, signatureHeader } from "./WebhookSignature.ts"

/** How hard the development provider tries to hand an event to the node. */
export interface DeliveryOptions {
  /** Attempts in all, the first included; after the last the event is given up (logged). */
  readonly attempts: number
  /** The wait before the second attempt; each later wait doubles, up to `maxDelay`. */
  readonly firstDelay: Duration.Input
  readonly maxDelay: Duration.Input
  /** How long one attempt may take before it counts as failed. */
  readonly attemptTimeout: Duration.Input
}

export const defaultDelivery: DeliveryOptions = {
  attempts: 10,
  firstDelay: "250 millis",
  maxDelay: "30 seconds",
  attemptTimeout: "10 seconds"
}

/** The node answered something other than a 2xx, or nothing in time. */
class NotAccepted extends Data.TaggedError("NotAccepted")<{ readonly why: string }> {}

const encodeBody = Schema.encodeSync(WebhookBody)

/**
 * Sends `event` to `url` until the node answers 2xx, with a capped exponential backoff. Each
 * attempt is signed at the time it is sent, so a retry an hour later is still fresh; the body
 * and the event id stay the same, which is what lets the node apply the event once. Resolves
 * with whether the node took it, and after how many attempts.
 */
export const deliver = (options: {
  readonly url: string
  readonly secret: Redacted.Redacted<Uint8Array>
  readonly delivery: DeliveryOptions
}) =>
  Effect.fnUntraced(function* (event: PaymentEvent) {
    const client = yield* HttpClient.HttpClient
    const body = encodeBody(event)
    let attempts = 0
    const attempt = Effect.gen(function* () {
      attempts += 1
      const now = yield* Clock.currentTimeMillis
      const request = HttpClientRequest.post(options.url).pipe(
        HttpClientRequest.setHeader(signatureHeader, sign(Redacted.value(options.secret), now, body)),
        HttpClientRequest.bodyText(body, "application/json")
      )
      const response = yield* client.execute(request).pipe(
        Effect.timeout(options.delivery.attemptTimeout),
        Effect.mapError((cause) => new NotAccepted({ why: String(cause) }))
      )
      if (response.status < 200 || response.status >= 300)
        return yield* new NotAccepted({ why: `status ${response.status}` })
    })
    const backoff = Schedule.min([
      Schedule.exponential(options.delivery.firstDelay),
      Schedule.spaced(options.delivery.maxDelay)
    ])
    return yield* attempt.pipe(
      Effect.retry({ schedule: backoff, times: Math.max(0, options.delivery.attempts - 1) }),
      Effect.map(() => ({ delivered: true, attempts })),
      Effect.catchTag("NotAccepted", (error) =>
        Effect.logWarning("webhook given up: the node never accepted it").pipe(
          Effect.annotateLogs({ eventId: event.eventId, attempts, last: error.why }),
          Effect.as({ delivered: false, attempts })
        )
      )
    )
  })

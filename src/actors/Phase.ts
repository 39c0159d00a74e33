/** Why an actor stopped: asked to (drained and flushed), fenced by a newer owner, or failed. */
export type StopReason = "stopped" | "fenced" | "failed"

/**
 * The life of a sale's actor. Every change goes through `transition`, so this table is the
 * whole lifecycle:
 *
 * | phase         | stop      | relinquish    | fence / fail   | drained          |
 * | ------------- | --------- | ------------- | -------------- | ---------------- |
 * | Running       | Stopping  | Relinquishing | Halted         | –                |
 * | Stopping      | –         | Relinquishing | Halted         | Stopped(stopped) |
 * | Relinquishing | –         | –             | Halted         | Stopped(stopped) |
 * | Halted(r)     | –         | –             | – (first wins) | Stopped(r)       |
 * | Stopped(r)    | –         | –             | –              | –                |
 *
 * "drained" means: nothing queued, no order pending, the committer finished. Only Running
 * admits new purchases; Running and Stopping decide what is queued; the others refuse it.
 */
export type Phase =
  | { readonly _tag: "Running" }
  /** Asked to stop: decides what was queued, commits what is staged, then stops. */
  | { readonly _tag: "Stopping" }
  /** Lost its lease: refuses what is queued, undecided; commits what was decided. */
  | { readonly _tag: "Relinquishing" }
  /** Fenced by a newer owner, or unable to commit: refuses everything until drained. */
  | { readonly _tag: "Halted"; readonly reason: "fenced" | "failed" }
  | { readonly _tag: "Stopped"; readonly reason: StopReason }

export type PhaseEvent = "stop" | "relinquish" | "fence" | "fail" | "drained"

export const running: Phase = { _tag: "Running" }
const stopping: Phase = { _tag: "Stopping" }
const relinquishing: Phase = { _tag: "Relinquishing" }
const fenced: Phase = { _tag: "Halted", reason: "fenced" }
const failed: Phase = { _tag: "Halted", reason: "failed" }

const halt = (event: "fence" | "fail"): Phase => (event === "fence" ? fenced : failed)

/** The one place phases change. An event that does not apply to a phase leaves it as it is. */
export const transition = (phase: Phase, event: PhaseEvent): Phase => {
  switch (phase._tag) {
    case "Running":
      if (event === "stop") return stopping
      if (event === "relinquish") return relinquishing
      return event === "drained" ? phase : halt(event)
    case "Stopping":
    case "Relinquishing":
      if (event === "relinquish") return relinquishing
      if (event === "fence" || event === "fail") return halt(event)
      return event === "drained" ? { _tag: "Stopped", reason: "stopped" } : phase
    case "Halted":
      return event === "drained" ? { _tag: "Stopped", reason: phase.reason } : phase
    case "Stopped":
      return phase
  }
}

/** New purchases enter the mailbox only while running; in any other phase they are refused at once. */
export const admits = (phase: Phase): boolean => phase._tag === "Running"

/** Purchases already queued are decided while running or stopping, and refused otherwise. */
export const decides = (phase: Phase): boolean => phase._tag === "Running" || phase._tag === "Stopping"

/** The reason a refused purchase is given: retry elsewhere after a fence, else retry later. */
export const refusalReason = (phase: Phase): "fenced" | "stopping" =>
  (phase._tag === "Halted" || phase._tag === "Stopped") && phase.reason === "fenced" ? "fenced" : "stopping"

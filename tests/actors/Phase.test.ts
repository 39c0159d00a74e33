import { describe, expect, it } from "vitest"
import fc from "fast-check"
import * as Phase from "../../src/actors/Phase.ts"

const events: ReadonlyArray<Phase.PhaseEvent> = ["stop", "relinquish", "fence", "fail", "drained"]
const after = (...steps: ReadonlyArray<Phase.PhaseEvent>) => steps.reduce(Phase.transition, Phase.running)

describe("Phase.transition", () => {
  it("drains a stop or a relinquish to a plain stop", () => {
    expect(after("stop", "drained")).toEqual({ _tag: "Stopped", reason: "stopped" })
    expect(after("relinquish", "drained")).toEqual({ _tag: "Stopped", reason: "stopped" })
    expect(after("stop", "relinquish")).toEqual({ _tag: "Relinquishing" })
    expect(after("relinquish", "stop")).toEqual({ _tag: "Relinquishing" })
  })

  it("keeps the first halt, whatever comes after, and stops for its reason", () => {
    expect(after("fence", "fail", "stop", "relinquish", "drained")).toEqual({
      _tag: "Stopped",
      reason: "fenced"
    })
    expect(after("stop", "fail", "fence", "drained")).toEqual({ _tag: "Stopped", reason: "failed" })
  })

  it("never drains a running actor: it must be asked to stop first", () => {
    expect(after("drained")).toEqual(Phase.running)
  })

  it("admits purchases only while running, decides queued ones only while running or stopping", () => {
    expect(Phase.admits(Phase.running)).toBe(true)
    expect(Phase.admits(after("stop"))).toBe(false)
    expect(Phase.decides(after("stop"))).toBe(true)
    expect(Phase.decides(after("relinquish"))).toBe(false)
    expect(Phase.decides(after("fence"))).toBe(false)
    expect(Phase.refusalReason(after("fence"))).toBe("fenced")
    expect(Phase.refusalReason(after("fail"))).toBe("stopping")
    expect(Phase.refusalReason(after("relinquish"))).toBe("stopping")
  })

  it("never leaves Stopped, and never goes back to Running, under any events", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...events), { maxLength: 30 }), (steps) => {
        let phase = Phase.running
        let stoppedAs: Phase.Phase | undefined
        for (const event of steps) {
          const next = Phase.transition(phase, event)
          if (phase._tag !== "Running") expect(next._tag).not.toBe("Running")
          if (stoppedAs !== undefined) expect(next).toEqual(stoppedAs)
          if (next._tag === "Stopped") stoppedAs ??= next
          phase = next
        }
      })
    )
  })
})

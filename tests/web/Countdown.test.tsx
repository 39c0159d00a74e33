// @vitest-environment jsdom
import { act, cleanup, render, screen } from "@testing-library/react"
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest"
import { Countdown } from "../../web/src/store/Countdown.tsx"
import { formatCountdown } from "../../web/src/store/time.ts"

describe("formatCountdown", () => {
  it("shows minutes and seconds, hours when there are any, and days past a day", () => {
    expect(formatCountdown(5_000)).toBe("00:05")
    expect(formatCountdown(65_000)).toBe("01:05")
    expect(formatCountdown(3_600_000 + 2 * 60_000 + 3_000)).toBe("01:02:03")
    expect(formatCountdown(2 * 86_400_000 + 3_600_000)).toBe("2d 01:00:00")
  })

  it("rounds a part of a second up and never goes below zero", () => {
    expect(formatCountdown(4_001)).toBe("00:05")
    expect(formatCountdown(1)).toBe("00:01")
    expect(formatCountdown(0)).toBe("00:00")
    expect(formatCountdown(-10_000)).toBe("00:00")
  })
})

describe("<Countdown>", () => {
  beforeEach(() => {
    vi.useFakeTimers()
    // Mid-second, as a page is opened at any instant.
    vi.setSystemTime(new Date("2026-12-01T09:59:57.400Z"))
  })
  afterEach(() => {
    cleanup()
    vi.useRealTimers()
  })

  it("ticks down each second and calls onElapsed once at zero", () => {
    const onElapsed = vi.fn()
    render(<Countdown to={Date.parse("2026-12-01T10:00:00.000Z")} label="Starts in" onElapsed={onElapsed} />)
    const timer = screen.getByRole("timer")
    expect(timer.textContent).toBe("00:03")
    expect(screen.getByText("Starts in")).toBeTruthy()

    act(() => vi.advanceTimersByTime(1_000))
    expect(timer.textContent).toBe("00:02")
    act(() => vi.advanceTimersByTime(1_000))
    expect(timer.textContent).toBe("00:01")
    expect(onElapsed).not.toHaveBeenCalled()

    act(() => vi.advanceTimersByTime(1_000))
    expect(timer.textContent).toBe("00:00")
    expect(onElapsed).toHaveBeenCalledTimes(1)

    act(() => vi.advanceTimersByTime(5_000))
    expect(timer.textContent).toBe("00:00")
    expect(onElapsed).toHaveBeenCalledTimes(1)
  })

  it("states the time left in a machine-readable duration", () => {
    render(<Countdown to={Date.now() + 89_500} label="Ends in" />)
    expect(screen.getByRole("timer").getAttribute("datetime")).toBe("PT90S")
    expect(screen.getByRole("timer").textContent).toBe("01:30")
  })

  it("is already at zero, and says so once, for a time in the past", () => {
    const onElapsed = vi.fn()
    render(<Countdown to={Date.now() - 1_000} label="Starts in" onElapsed={onElapsed} />)
    expect(screen.getByRole("timer").textContent).toBe("00:00")
    expect(onElapsed).toHaveBeenCalledTimes(1)
  })
})

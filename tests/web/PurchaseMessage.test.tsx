// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen } from "@testing-library/react"
import { afterEach, describe, expect, it, vi } from "vitest"
import { ApiError, parseRetryAfter } from "../../web/src/api.ts"
import { describeOutcome, purchaseOutcome, type PurchaseOutcome } from "../../web/src/store/outcome.ts"
import { PurchaseMessage } from "../../web/src/store/PurchaseMessage.tsx"
import { usePurchase } from "../../web/src/store/usePurchase.ts"

const orderId = "0b7e7a35-9d0c-4a55-8f5c-2a8f4f0f2c11"
const saleId = "5f1a3c3e-1f0e-4a8e-9b0a-6f3f2a1d9e77"

const apiError = (status: number, code: string, details?: unknown, retryAfter?: number) =>
  new ApiError(status, code, "message from the API", details, retryAfter)

describe("purchase outcomes in plain words", () => {
  const cases: ReadonlyArray<readonly [string, Parameters<typeof purchaseOutcome>[0], string]> = [
    [
      "201",
      { ok: { orderId, saleId, status: "purchased", alreadyPurchased: false } },
      `Purchased! Your order id is ${orderId}.`
    ],
    [
      "200 already purchased",
      { ok: { orderId, saleId, status: "purchased", alreadyPurchased: true } },
      `You already bought this one. Your order id is ${orderId}.`
    ],
    ["409 sold_out", { error: apiError(409, "sold_out") }, "Sold out: every unit has been sold."],
    [
      "409 not started",
      { error: apiError(409, "sale_not_active", { reason: "not_started" }) },
      "The sale has not started yet."
    ],
    ["409 ended", { error: apiError(409, "sale_not_active", { reason: "ended" }) }, "The sale is over."],
    [
      "409 cancelled",
      { error: apiError(409, "sale_not_active", { reason: "cancelled" }) },
      "This sale was cancelled."
    ],
    [
      "429",
      { error: apiError(429, "rate_limited", undefined, 4) },
      "Too many tries from you; trying again in 4 s."
    ],
    ["503", { error: apiError(503, "overloaded", undefined, 2) }, "The shop is busy; trying again in 2 s."],
    ["401", { error: apiError(401, "unauthorized") }, "Your session has expired. Sign in again to buy."],
    [
      "a network failure",
      { error: new TypeError("Failed to fetch") },
      "Something went wrong: The shop could not be reached. Check your connection and try again."
    ]
  ]

  for (const [name, result, words] of cases)
    it(`${name}: "${words}"`, () => {
      render(<PurchaseMessage outcome={purchaseOutcome(result)} />)
      expect(screen.getByRole("status").textContent).toBe(words)
      cleanup()
    })

  it("counts a pending retry down, and says when it is retrying now", () => {
    const busy: PurchaseOutcome = { kind: "retry", seconds: 3, reason: "busy" }
    expect(describeOutcome(busy, 1)).toBe("The shop is busy; trying again in 1 s.")
    expect(describeOutcome(busy, 0)).toBe("The shop is busy; trying again now.")
  })

  it("reads Retry-After as seconds or as a date, never under a second", () => {
    const now = Date.parse("2026-12-01T10:00:00Z")
    expect(parseRetryAfter("3", now)).toBe(3)
    expect(parseRetryAfter("0", now)).toBe(1)
    expect(parseRetryAfter("Tue, 01 Dec 2026 10:00:05 GMT", now)).toBe(5)
    expect(parseRetryAfter(null, now)).toBeUndefined()
    expect(parseRetryAfter("soon", now)).toBeUndefined()
  })
})

function BuyButton(props: { readonly onPurchased: () => void }) {
  const { buy, busy, outcome, secondsLeft } = usePurchase("token", saleId, null, props.onPurchased)
  return (
    <>
      <button type="button" onClick={buy} disabled={busy}>
        Buy
      </button>
      <PurchaseMessage outcome={outcome} secondsLeft={secondsLeft} />
    </>
  )
}

const answer = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } })

describe("Buy after a 503", () => {
  afterEach(() => {
    cleanup()
    vi.useRealTimers()
    vi.unstubAllGlobals()
  })

  it("waits out Retry-After, counting down, then retries by itself and shows the order", async () => {
    vi.useFakeTimers()
    const fetch = vi
      .fn<typeof globalThis.fetch>()
      .mockResolvedValueOnce(
        answer(503, { error: { code: "overloaded", message: "busy" } }, { "retry-after": "2" })
      )
      .mockResolvedValueOnce(answer(201, { orderId, saleId, status: "purchased", alreadyPurchased: false }))
    vi.stubGlobal("fetch", fetch)
    const onPurchased = vi.fn()
    render(<BuyButton onPurchased={onPurchased} />)

    fireEvent.click(screen.getByRole("button", { name: "Buy" }))
    await act(() => vi.advanceTimersByTimeAsync(0))
    expect(screen.getByRole("status").textContent).toBe("The shop is busy; trying again in 2 s.")
    expect(screen.getByRole("button", { name: "Buy" })).toHaveProperty("disabled", true)
    expect(fetch).toHaveBeenCalledTimes(1)

    await act(() => vi.advanceTimersByTimeAsync(1_100))
    expect(screen.getByRole("status").textContent).toBe("The shop is busy; trying again in 1 s.")
    expect(fetch).toHaveBeenCalledTimes(1)

    await act(() => vi.advanceTimersByTimeAsync(1_000))
    expect(fetch).toHaveBeenCalledTimes(2)
    expect(screen.getByRole("status").textContent).toBe(`Purchased! Your order id is ${orderId}.`)
    expect(onPurchased).toHaveBeenCalledTimes(1)
    const [path, init] = fetch.mock.calls[1]!
    expect(path).toBe(`/api/sales/${saleId}/purchases`)
    expect(init?.method).toBe("POST")
  })
})

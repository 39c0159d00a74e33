// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen } from "@testing-library/react"
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest"
import type { OrderDetail } from "../../web/src/api.ts"
import { conversionWords } from "../../web/src/admin/LiveCheckout.tsx"
import { Checkout } from "../../web/src/store/Checkout.tsx"
import {
  buttonForOrder,
  checkoutWords,
  followedOrder,
  forgetReturnInAddress,
  returnedOrderId,
  type CheckoutView
} from "../../web/src/store/checkout.ts"
import { describeOutcome, purchaseOutcome } from "../../web/src/store/outcome.ts"

const orderId = "0b7e7a35-9d0c-4a55-8f5c-2a8f4f0f2c11"
const saleId = "5f1a3c3e-1f0e-4a8e-9b0a-6f3f2a1d9e77"
const start = Date.parse("2026-12-01T09:59:57.400Z")
const payBy = "2026-12-01T10:00:00.000Z"

const order = (status: OrderDetail["status"], changes: Partial<OrderDetail> = {}): OrderDetail => ({
  orderId,
  saleId,
  userId: "u-1",
  status,
  priceCents: 1_200,
  currency: "USD",
  createdAt: "2026-12-01T09:59:50.000Z",
  payBy,
  paidAt: null,
  ...changes
})

const view = (changes: Partial<CheckoutView> = {}): CheckoutView => ({
  now: start,
  checking: false,
  unanswered: false,
  returned: false,
  repeated: false,
  ...changes
})

// The browser tests run in UTC and en-US; so do these words.
const hhmm = new Date(payBy).toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" })

describe("a held order in plain words", () => {
  it("says paid, expired, cancelled and refunded as the buyer needs to hear them", () => {
    expect(checkoutWords(order("paid"), view()).text).toBe(`Paid — the order is yours. Order id ${orderId}.`)
    expect(checkoutWords(order("expired"), view()).text).toBe(
      `Your hold expired at ${hhmm} before it was paid; the unit went back on sale.`
    )
    expect(checkoutWords(order("cancelled"), view()).text).toBe(
      "You cancelled this order; the unit went back on sale."
    )
    expect(checkoutWords(order("refunded"), view()).text).toBe(
      "Your payment arrived after the hold ended; it has been refunded."
    )
    expect(checkoutWords(order("paid"), view()).tone).toBe("good")
    expect(checkoutWords(order("expired"), view()).tone).toBe("bad")
  })

  it("a reserved order: pay before the hold ends; checking after the payment page; not heard yet", () => {
    expect(checkoutWords(order("reserved"), view()).text).toMatch(
      /^Reserved for you until .*: pay before then/
    )
    expect(checkoutWords(order("reserved"), view({ returned: true, checking: true })).text).toBe(
      "Checking your payment…"
    )
    expect(checkoutWords(order("reserved"), view({ returned: true })).text).toMatch(
      /^We have not heard from the payment yet\. .*you can still pay while time remains\.$/
    )
    expect(checkoutWords(order("reserved"), view({ now: Date.parse(payBy), checking: true })).text).toBe(
      `Your hold ended at ${hhmm}; checking whether a payment arrived…`
    )
  })

  it("a lapsed order met again through Buy says that the sale sells once per buyer", () => {
    expect(checkoutWords(order("expired"), view({ repeated: true })).text).toMatch(
      /went back on sale\. One order per buyer in this sale, so it cannot be bought again\.$/
    )
  })

  it("the purchase answer of a hold sale is a reservation", () => {
    const outcome = purchaseOutcome({
      ok: { orderId, saleId, status: "reserved", alreadyPurchased: false, payBy }
    })
    expect(outcome).toEqual({ kind: "reserved", orderId, payBy, again: false })
    expect(describeOutcome(outcome)).toMatch(/^Reserved for you until /)
  })

  it("the paid conversion reads as a percentage, a dash before any hold settled", () => {
    expect(conversionWords(null)).toBe("–")
    expect(conversionWords(1)).toBe("100 %")
    expect(conversionWords(1 / 3)).toBe("33.3 %")
  })
})

describe("the order a sale's card follows", () => {
  const reserved = { kind: "reserved", orderId, payBy, again: false } as const
  const other = "9c1d2e3f-0000-4000-8000-000000000001"

  it("the order Buy answered with in a sale with holds, before the one back from paying or the listed one", () => {
    expect(
      followedOrder({
        outcome: reserved,
        holds: true,
        returnedOrderId: other,
        wonOrderId: undefined,
        purchasedOrderId: other
      })
    ).toEqual({ orderId, returned: false, repeated: false })
    expect(
      followedOrder({
        outcome: undefined,
        holds: true,
        returnedOrderId: other,
        wonOrderId: undefined,
        purchasedOrderId: orderId
      })
    ).toEqual({ orderId: other, returned: true, repeated: false })
    expect(
      followedOrder({
        outcome: undefined,
        holds: true,
        returnedOrderId: undefined,
        wonOrderId: undefined,
        purchasedOrderId: orderId
      })
    ).toEqual({ orderId, returned: false, repeated: false })
    // A draw's win, held for payment.
    expect(
      followedOrder({
        outcome: { kind: "entered", drawAt: payBy },
        holds: true,
        returnedOrderId: undefined,
        wonOrderId: orderId,
        purchasedOrderId: other
      })
    ).toEqual({ orderId, returned: false, repeated: false })
    // A second press answered with a lapsed order.
    expect(
      followedOrder({
        outcome: { kind: "already_purchased", orderId },
        holds: true,
        returnedOrderId: undefined,
        wonOrderId: undefined,
        purchasedOrderId: undefined
      })
    ).toEqual({ orderId, returned: false, repeated: true })
  })

  it("none in a sale without holds: a purchase there is final and said as before", () => {
    expect(
      followedOrder({
        outcome: { kind: "purchased", orderId },
        holds: false,
        returnedOrderId: undefined,
        wonOrderId: orderId,
        purchasedOrderId: orderId
      })
    ).toBeUndefined()
  })

  it("Buy says Reserved or Purchased for a live order, and comes back after a lapse unless refused once", () => {
    expect(buttonForOrder(undefined, false)).toBe("Reserved")
    expect(buttonForOrder("reserved", false)).toBe("Reserved")
    expect(buttonForOrder("paid", false)).toBe("Purchased")
    expect(buttonForOrder("expired", false)).toBeUndefined()
    expect(buttonForOrder("cancelled", true)).toBe("Hold lapsed")
  })
})

describe("the payment provider's return address", () => {
  it("is read once, then dropped from the address bar", () => {
    history.replaceState(null, "", `/?order=${orderId}#top`)
    expect(returnedOrderId()).toBe(orderId)
    forgetReturnInAddress()
    expect(location.pathname + location.search + location.hash).toBe("/#top")
    // Read once per page load: a remount after the address was cleaned still knows it.
    expect(returnedOrderId()).toBe(orderId)
  })
})

const answer = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } })

describe("<Checkout>", () => {
  beforeEach(() => {
    vi.useFakeTimers()
    vi.setSystemTime(start)
  })
  afterEach(() => {
    cleanup()
    vi.useRealTimers()
    vi.unstubAllGlobals()
  })

  const status = () => screen.getByTestId("checkout-status").textContent

  it("counts down the time to pay, then reads the order again and says it expired", async () => {
    const fetch = vi
      .fn<typeof globalThis.fetch>()
      .mockResolvedValueOnce(answer(200, order("reserved")))
      .mockResolvedValueOnce(answer(200, order("reserved")))
      .mockResolvedValue(answer(200, order("expired")))
    vi.stubGlobal("fetch", fetch)
    const onOrder = vi.fn()
    render(<Checkout token="t" orderId={orderId} returned={false} repeated={false} onOrder={onOrder} />)
    await act(() => vi.advanceTimersByTimeAsync(0))
    expect(screen.getByRole("timer").textContent).toBe("00:03")
    expect(screen.getByText("Pay within")).toBeTruthy()
    expect(screen.getByRole("button", { name: "Pay" })).toBeTruthy()
    expect(screen.getByRole("button", { name: "Cancel my order" })).toBeTruthy()
    expect(fetch).toHaveBeenCalledTimes(1)

    await act(() => vi.advanceTimersByTimeAsync(1_000))
    expect(screen.getByRole("timer").textContent).toBe("00:02")
    expect(fetch).toHaveBeenCalledTimes(1)

    // At zero: the buttons go, the order is read again (still reserved once), then expired.
    await act(() => vi.advanceTimersByTimeAsync(1_700))
    expect(screen.queryByRole("button", { name: "Pay" })).toBeNull()
    expect(status()).toBe(`Your hold ended at ${hhmm}; checking whether a payment arrived…`)
    await act(() => vi.advanceTimersByTimeAsync(500))
    expect(status()).toBe(`Your hold expired at ${hhmm} before it was paid; the unit went back on sale.`)
    expect(fetch).toHaveBeenCalledTimes(3)
    expect(onOrder).toHaveBeenLastCalledWith(order("expired"))
    expect(fetch.mock.calls[0]![0]).toBe(`/api/orders/${orderId}`)
  })

  it("back from the payment page: reads every 500 ms while reserved, then says paid", async () => {
    const fetch = vi
      .fn<typeof globalThis.fetch>()
      .mockResolvedValueOnce(answer(200, order("reserved")))
      .mockResolvedValueOnce(answer(200, order("reserved")))
      .mockResolvedValue(answer(200, order("paid", { paidAt: "2026-12-01T09:59:58.000Z" })))
    vi.stubGlobal("fetch", fetch)
    render(
      <Checkout token="t" orderId={orderId} returned={true} repeated={false} onOrder={() => undefined} />
    )
    await act(() => vi.advanceTimersByTimeAsync(0))
    expect(status()).toBe("Checking your payment…")
    await act(() => vi.advanceTimersByTimeAsync(499))
    expect(fetch).toHaveBeenCalledTimes(1)
    await act(() => vi.advanceTimersByTimeAsync(501))
    expect(fetch).toHaveBeenCalledTimes(3)
    expect(status()).toBe(`Paid — the order is yours. Order id ${orderId}.`)
    expect(screen.queryByRole("button", { name: "Pay" })).toBeNull()
    await act(() => vi.advanceTimersByTimeAsync(5_000))
    expect(fetch).toHaveBeenCalledTimes(3)
  })

  it("back from the payment page with no news for fifteen seconds: says so, and Pay stays while time remains", async () => {
    vi.setSystemTime(Date.parse(payBy) - 60_000)
    const fetch = vi.fn<typeof globalThis.fetch>(() => Promise.resolve(answer(200, order("reserved"))))
    vi.stubGlobal("fetch", fetch)
    render(
      <Checkout token="t" orderId={orderId} returned={true} repeated={false} onOrder={() => undefined} />
    )
    await act(() => vi.advanceTimersByTimeAsync(15_500))
    expect(status()).toMatch(/^We have not heard from the payment yet\./)
    expect(screen.getByRole("button", { name: "Pay" })).toBeTruthy()
    const reads = fetch.mock.calls.length
    expect(reads).toBeGreaterThanOrEqual(30)
    expect(reads).toBeLessThanOrEqual(32)
    await act(() => vi.advanceTimersByTimeAsync(5_000))
    expect(fetch.mock.calls.length).toBe(reads)
  })

  it("back from the payment page after the hold lapsed: a late payment's refund still shows; a decline stops in three seconds", async () => {
    const late = vi
      .fn<typeof globalThis.fetch>()
      .mockResolvedValueOnce(answer(200, order("expired")))
      .mockResolvedValueOnce(answer(200, order("expired")))
      .mockResolvedValue(answer(200, order("refunded")))
    vi.stubGlobal("fetch", late)
    render(
      <Checkout token="t" orderId={orderId} returned={true} repeated={false} onOrder={() => undefined} />
    )
    await act(() => vi.advanceTimersByTimeAsync(0))
    expect(status()).toMatch(/^Your hold expired at /)
    await act(() => vi.advanceTimersByTimeAsync(1_000))
    expect(status()).toBe("Your payment arrived after the hold ended; it has been refunded.")
    await act(() => vi.advanceTimersByTimeAsync(5_000))
    expect(late).toHaveBeenCalledTimes(3)
    cleanup()

    const declined = vi.fn<typeof globalThis.fetch>(() => Promise.resolve(answer(200, order("expired"))))
    vi.stubGlobal("fetch", declined)
    render(
      <Checkout token="t" orderId={orderId} returned={true} repeated={false} onOrder={() => undefined} />
    )
    await act(() => vi.advanceTimersByTimeAsync(10_000))
    expect(status()).toMatch(/^Your hold expired at /)
    expect(declined.mock.calls.length).toBeGreaterThanOrEqual(6)
    expect(declined.mock.calls.length).toBeLessThanOrEqual(8)
  })

  it("Cancel my order gives the unit back and says so", async () => {
    const fetch = vi
      .fn<typeof globalThis.fetch>()
      .mockResolvedValueOnce(answer(200, order("reserved")))
      .mockResolvedValueOnce(answer(200, order("cancelled")))
    vi.stubGlobal("fetch", fetch)
    render(
      <Checkout token="t" orderId={orderId} returned={false} repeated={false} onOrder={() => undefined} />
    )
    await act(() => vi.advanceTimersByTimeAsync(0))
    fireEvent.click(screen.getByRole("button", { name: "Cancel my order" }))
    await act(() => vi.advanceTimersByTimeAsync(0))
    expect(status()).toBe("You cancelled this order; the unit went back on sale.")
    const [path, init] = fetch.mock.calls[1]!
    expect(path).toBe(`/api/orders/${orderId}/cancel`)
    expect(init?.method).toBe("POST")
    expect(screen.queryByRole("button", { name: "Cancel my order" })).toBeNull()
  })

  it("Pay refused because the order moved on: the order is read again and says what it is now", async () => {
    const fetch = vi
      .fn<typeof globalThis.fetch>()
      .mockResolvedValueOnce(answer(200, order("reserved")))
      .mockResolvedValueOnce(
        answer(409, {
          error: { code: "order_not_payable", message: "not payable", details: { status: "expired" } }
        })
      )
      .mockResolvedValue(answer(200, order("expired")))
    vi.stubGlobal("fetch", fetch)
    render(
      <Checkout token="t" orderId={orderId} returned={false} repeated={false} onOrder={() => undefined} />
    )
    await act(() => vi.advanceTimersByTimeAsync(0))
    fireEvent.click(screen.getByRole("button", { name: "Pay" }))
    await act(() => vi.advanceTimersByTimeAsync(0))
    expect(fetch.mock.calls[1]![0]).toBe(`/api/orders/${orderId}/pay`)
    expect(status()).toBe(`Your hold expired at ${hhmm} before it was paid; the unit went back on sale.`)
    expect(screen.queryByRole("alert")).toBeNull()
  })
})

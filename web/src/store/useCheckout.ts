import { useCallback, useEffect, useRef, useState } from "react"
import { api, ApiError, type OrderDetail } from "../api.ts"

/** While an order is reserved after paying (or at payBy), it is read again this often, this long. */
export const checkMillis = 500
export const checkForMillis = 15_000
/**
 * Back from the payment page with a hold that had lapsed, the payment's news may still be on its
 * way (it turns the order refunded): read again this long before taking the lapse as final.
 */
export const latePaymentMillis = 3_000

/**
 * One held order: read when shown, read again every half second while its news is awaited
 * (back from the payment page, or its hold just ran out) until it is no longer reserved or
 * fifteen seconds have passed; paid (the browser goes to the provider's page) or cancelled.
 */
export const useCheckout = (
  token: string,
  orderId: string,
  returned: boolean,
  onOrder: (order: OrderDetail) => void
): {
  readonly order: OrderDetail | undefined
  readonly checking: boolean
  readonly unanswered: boolean
  readonly acting: "pay" | "cancel" | undefined
  readonly problem: string | undefined
  /** Reads the order again, for up to fifteen seconds while it stays reserved. */
  readonly check: () => void
  readonly pay: () => void
  readonly cancel: () => void
} => {
  const [order, setOrder] = useState<OrderDetail | undefined>(undefined)
  // Each round of reading: how long to keep asking while the order stays reserved (0: once),
  // and whether it follows a payment.
  const [round, setRound] = useState<{
    readonly serial: number
    readonly forMillis: number
    readonly afterPayment: boolean
  }>({ serial: 0, forMillis: returned ? checkForMillis : 0, afterPayment: returned })
  const [checking, setChecking] = useState(returned)
  const [unanswered, setUnanswered] = useState(false)
  const [acting, setActing] = useState<"pay" | "cancel" | undefined>(undefined)
  const [problem, setProblem] = useState<string | undefined>(undefined)
  const told = useRef(onOrder)
  useEffect(() => {
    told.current = onOrder
  })

  const show = useCallback((next: OrderDetail) => {
    setOrder(next)
    told.current(next)
  }, [])

  useEffect(() => {
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const started = Date.now()
    const until = started + round.forMillis
    const lateUntil = round.afterPayment ? started + latePaymentMillis : started
    const read = async () => {
      let next: OrderDetail | undefined
      try {
        next = await api.order(token, orderId)
      } catch (failure) {
        if (stopped) return
        if (failure instanceof ApiError && failure.code === "order_not_found") {
          setProblem("This order is not one of yours.")
          setChecking(false)
          return
        }
      }
      if (stopped) return
      if (next !== undefined) {
        setProblem(undefined)
        show(next)
      }
      const now = Date.now()
      // A read that failed (the node unreachable) is tried again within the round too.
      const awaited =
        next === undefined ||
        next.status === "reserved" ||
        ((next.status === "expired" || next.status === "cancelled") && now < lateUntil)
      if (awaited && now < until) {
        timer = setTimeout(() => void read(), checkMillis)
        return
      }
      setChecking(false)
      setUnanswered(next?.status === "reserved" && round.forMillis > 0)
      if (next === undefined) setProblem("The shop could not be reached. Check again in a moment.")
    }
    void read()
    return () => {
      stopped = true
      if (timer !== undefined) clearTimeout(timer)
    }
  }, [token, orderId, round, show])

  const check = useCallback(() => {
    setChecking(true)
    setUnanswered(false)
    setRound((previous) => ({ serial: previous.serial + 1, forMillis: checkForMillis, afterPayment: false }))
  }, [])

  const refused = useCallback((failure: unknown, doing: string) => {
    setActing(undefined)
    if (failure instanceof ApiError && failure.status === 409) {
      // The order moved on (paid, expired, cancelled): what it is now says why.
      setRound((previous) => ({ serial: previous.serial + 1, forMillis: 0, afterPayment: false }))
      return
    }
    setProblem(
      failure instanceof ApiError
        ? `Could not ${doing}: ${failure.message}`
        : `Could not ${doing}. Try again.`
    )
  }, [])

  const pay = useCallback(() => {
    setActing("pay")
    setProblem(undefined)
    api.payOrder(token, orderId).then(
      // The page is left for the provider's; it sends the buyer back here with ?order=.
      ({ checkoutUrl }) => window.location.assign(checkoutUrl),
      (failure: unknown) => refused(failure, "start the payment")
    )
  }, [token, orderId, refused])

  const cancel = useCallback(() => {
    setActing("cancel")
    setProblem(undefined)
    api.cancelOrder(token, orderId).then(
      (next) => {
        setActing(undefined)
        setUnanswered(false)
        show(next)
      },
      (failure: unknown) => refused(failure, "cancel the order")
    )
  }, [token, orderId, refused, show])

  return { order, checking, unanswered, acting, problem, check, pay, cancel }
}

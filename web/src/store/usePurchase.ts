import { useCallback, useEffect, useRef, useState } from "react"
import { api } from "../api.ts"
import { purchaseOutcome, type PurchaseOutcome } from "./outcome.ts"
import { proveFor } from "./proofOfWork.ts"
import { useNow } from "./time.ts"

// Automatic retries after 429/503 before the buyer is asked to press again.
const maxRetries = 5

/**
 * Buying one unit of a sale: the outcome in plain terms and, after a 429 or 503, an automatic
 * retry once `Retry-After` has passed. A sale with a proof-of-work difficulty first gets a
 * challenge solved (`proving` meanwhile), afresh for each attempt: a solution is spent once
 * checked, so an answer that comes after (a busy owner's 503) needs a new one.
 */
export const usePurchase = (
  token: string | undefined,
  saleId: string,
  powDifficulty: number | null,
  onPurchased: () => void
): {
  readonly buy: () => void
  readonly busy: boolean
  readonly proving: boolean
  readonly outcome: PurchaseOutcome | undefined
  readonly secondsLeft: number | undefined
} => {
  const [outcome, setOutcome] = useState<PurchaseOutcome | undefined>(undefined)
  const [busy, setBusy] = useState(false)
  const [proving, setProving] = useState(false)
  const [retryAt, setRetryAt] = useState<number | undefined>(undefined)
  const retries = useRef(0)
  const purchased = useRef(onPurchased)
  useEffect(() => {
    purchased.current = onPurchased
  })

  const attempt = useCallback(async () => {
    if (token === undefined) return
    setBusy(true)
    setRetryAt(undefined)
    let next: PurchaseOutcome
    try {
      let proof: string | undefined
      if (powDifficulty !== null) {
        setProving(true)
        proof = await proveFor(token, saleId).finally(() => setProving(false))
      }
      next = purchaseOutcome({ ok: await api.purchase(token, saleId, proof) })
    } catch (error) {
      next = purchaseOutcome({ error })
    }
    if (next.kind === "retry") {
      if (retries.current < maxRetries) {
        retries.current++
        setOutcome(next)
        setRetryAt(Date.now() + next.seconds * 1_000)
        return // still busy: the retry below takes over
      }
      next = { kind: "failed", message: "the shop stayed busy. Press Buy to try again." }
    }
    retries.current = 0
    setOutcome(next)
    setBusy(false)
    if (next.kind === "purchased" || next.kind === "already_purchased" || next.kind === "reserved")
      purchased.current()
  }, [token, saleId, powDifficulty])

  useEffect(() => {
    if (retryAt === undefined) return
    const timer = setTimeout(() => void attempt(), Math.max(0, retryAt - Date.now()))
    return () => clearTimeout(timer)
  }, [retryAt, attempt])

  const now = useNow(1_000, retryAt ?? 0)
  const secondsLeft = retryAt === undefined ? undefined : Math.max(0, Math.ceil((retryAt - now) / 1_000))

  const buy = useCallback(() => {
    if (busy) return
    retries.current = 0
    void attempt()
  }, [busy, attempt])

  return { buy, busy, proving, outcome, secondsLeft }
}

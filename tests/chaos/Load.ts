import type { OrderId, SaleId, UserId } from "../../src/domain/Ids.ts"
import { sleep } from "../support/PrivateServices.ts"
import type { History, Operation } from "./History.ts"
import type { BuyerPlan } from "./Schedule.ts"

export interface Buyer {
  readonly userId: UserId
  readonly token: string
}

export interface LoadOptions {
  readonly urls: ReadonlyArray<string>
  readonly saleId: SaleId
  readonly buyers: ReadonlyArray<Buyer>
  readonly plans: ReadonlyArray<BuyerPlan>
  readonly history: History
  /** Milliseconds since the run began. */
  readonly clock: () => number
  /** New buyers per second. */
  readonly arrivalsPerSecond: number
  /** Buyers being served at once; a later arrival waits for a free slot. */
  readonly concurrency: number
  readonly requestTimeoutMillis: number
  /** Attempts of one buyer before giving up without a definite answer. */
  readonly maxAttempts: number
  /** No request is sent after this (run clock); read as the run goes, since faults take their own time. */
  readonly until: () => number
  /** Called after each answer, with how many buyers have finished. */
  readonly onProgress?: (finished: number) => void
}

/** One purchase request, recorded in the history. */
export const purchase = async (
  options: Pick<LoadOptions, "urls" | "saleId" | "history" | "clock" | "requestTimeoutMillis">,
  buyerIndex: number,
  buyer: Buyer,
  node: number
): Promise<Operation> => {
  const sentAt = options.clock()
  const base = { buyer: buyerIndex, userId: buyer.userId, node, sentAt }
  let operation: Operation
  try {
    const response = await fetch(`${options.urls[node]!}/api/sales/${options.saleId}/purchases`, {
      method: "POST",
      headers: { authorization: `Bearer ${buyer.token}` },
      signal: AbortSignal.timeout(options.requestTimeoutMillis)
    })
    const text = await response.text()
    let body: { orderId?: OrderId; alreadyPurchased?: boolean; error?: { code?: string } } = {}
    try {
      body = JSON.parse(text) as typeof body
    } catch {
      // a proxy's or a dying server's non-JSON answer: its status decides
    }
    const answeredAt = options.clock()
    const status = response.status
    if (status >= 200 && status < 300 && body.orderId !== undefined)
      operation = {
        ...base,
        answeredAt,
        outcome: "ok",
        status,
        orderId: body.orderId,
        repeat: status === 200 || body.alreadyPurchased === true
      }
    else if (status >= 400 && status < 500 && status !== 408 && status !== 429)
      operation = { ...base, answeredAt, outcome: "failed", status, code: body.error?.code ?? "no_code" }
    else operation = { ...base, answeredAt, outcome: "unknown", status, code: body.error?.code ?? "no_code" }
  } catch (error) {
    const name = error instanceof Error ? (error.name === "TypeError" ? "connection" : error.name) : "error"
    operation = { ...base, answeredAt: options.clock(), outcome: "unknown", status: 0, code: name }
  }
  options.history.add(operation)
  return operation
}

/**
 * Buyers arriving at a steady rate, spread round-robin over the nodes. A buyer sends its
 * copies at once to different nodes, then retries an unknown answer at the next node (backing
 * off) until it gets a definite one; some buy again after an ok, as a buyer who reloads does.
 */
export const runLoad = async (options: LoadOptions) => {
  const nodes = options.urls.length
  let next = 0
  let finished = 0
  const start = options.clock()
  const serve = async (index: number) => {
    const buyer = options.buyers[index]!
    const plan = options.plans[index % options.plans.length]!
    let node = index % nodes
    let definite: Operation | undefined
    for (let attempt = 0; attempt < options.maxAttempts && options.clock() < options.until(); attempt++) {
      const copies = attempt === 0 ? plan.copies : 1
      const answers = await Promise.all(
        Array.from({ length: copies }, (_, copy) => purchase(options, index, buyer, (node + copy) % nodes))
      )
      node = (node + copies) % nodes
      definite = answers.find((a) => a.outcome === "ok") ?? answers.find((a) => a.outcome === "failed")
      if (definite !== undefined) break
      await sleep(Math.min(1_000, 100 * 2 ** attempt))
    }
    if (definite?.outcome === "ok" && plan.repeatAfterOk && options.clock() < options.until()) {
      await sleep(200 + (index % 5) * 200)
      await purchase(options, index, buyer, (node + 1) % nodes)
    }
  }
  const worker = async () => {
    while (next < options.buyers.length) {
      const index = next++
      const arrival = start + (index * 1_000) / options.arrivalsPerSecond
      const wait = arrival - options.clock()
      if (wait > 0) await sleep(wait)
      if (options.clock() >= options.until()) return
      await serve(index)
      options.onProgress?.(++finished)
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, worker))
  return { arrived: Math.min(next, options.buyers.length), finished }
}

import type { OrderId, UserId } from "../../src/domain/Ids.ts"

/**
 * Every purchase request the load sent and what came back, Jepsen style: `ok` is a 2xx with
 * an order id (the buyer was told "purchased"), `failed` a definite refusal (409: sold out,
 * not active), `unknown` anything that may or may not have taken effect (a timeout, a
 * connection error, a 5xx). Only `ok` and `failed` constrain what PostgreSQL may hold.
 */
export type Outcome = "ok" | "failed" | "unknown"

export interface Operation {
  readonly buyer: number
  readonly userId: UserId
  readonly node: number
  /** Milliseconds since the run began. */
  readonly sentAt: number
  readonly answeredAt: number
  readonly outcome: Outcome
  /** 0: no HTTP answer (connection error or client timeout). */
  readonly status: number
  /** The error code of a refusal or 5xx, or the client error's name. */
  readonly code?: string
  readonly orderId?: OrderId
  /** A 200 "already purchased" rather than a 201. */
  readonly repeat?: boolean
}

export class History {
  readonly operations: Array<Operation> = []
  readonly byOutcome: Record<Outcome, number> = { ok: 0, failed: 0, unknown: 0 }

  add(operation: Operation) {
    this.operations.push(operation)
    this.byOutcome[operation.outcome]++
  }

  /** Answer times of every sale: the first ok of each buyer, in time order. */
  sales(): Array<number> {
    const first = new Map<number, number>()
    for (const op of this.operations)
      if (op.outcome === "ok") first.set(op.buyer, Math.min(first.get(op.buyer) ?? Infinity, op.answeredAt))
    return [...first.values()].sort((a, b) => a - b)
  }

  /** How often each status / code came back, e.g. "503 unavailable": 12. */
  codes(): Map<string, number> {
    const counts = new Map<string, number>()
    for (const op of this.operations) {
      const key =
        `${op.status} ${op.code ?? (op.outcome === "ok" ? (op.repeat ? "repeat" : "created") : "")}`.trim()
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
    return counts
  }
}

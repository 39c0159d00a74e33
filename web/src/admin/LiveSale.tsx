import { useEffect, useState } from "react"
import { api, type Sale, type SaleStats, type Session } from "../api.ts"
import { Chart, type Series } from "./Chart.tsx"
import { LiveCheckout } from "./LiveCheckout.tsx"
import { LiveDraw } from "./LiveDraw.tsx"
import { commitTotals, meanCommitMillis } from "./metrics.ts"

// One reading a second, the last two minutes on screen.
const pollMillis = 1_000
const keep = 120

const reasons: ReadonlyArray<{ readonly key: string } & Series> = [
  { key: "accepted", label: "accepted", color: "#1b7f3b" },
  { key: "already_purchased", label: "already bought", color: "#3366cc" },
  { key: "sold_out", label: "sold out", color: "#c0392b" },
  { key: "not_started", label: "not started", color: "#8e44ad" },
  { key: "ended", label: "ended", color: "#7f8c8d" },
  { key: "cancelled", label: "cancelled", color: "#d35400" }
]

interface Reading {
  readonly at: number
  readonly stats: SaleStats
  readonly commits: { sum: number; count: number } | undefined
}

interface History {
  readonly times: ReadonlyArray<number>
  readonly remaining: ReadonlyArray<number>
  readonly perSecond: ReadonlyArray<number>
  readonly byReason: ReadonlyArray<ReadonlyArray<number>>
  readonly latency: ReadonlyArray<number | null>
  readonly last: Reading | undefined
}

const empty: History = {
  times: [],
  remaining: [],
  perSecond: [],
  byReason: reasons.map(() => []),
  latency: [],
  last: undefined
}

const tail = <A,>(values: ReadonlyArray<A>, next: A): ReadonlyArray<A> => [...values, next].slice(-keep)

/** Adds one reading: rates are the change since the previous reading, per second. */
export const addReading = (history: History, reading: Reading): History => {
  const previous = history.last
  const seconds = previous === undefined ? 1 : Math.max(0.001, (reading.at - previous.at) / 1_000)
  const rate = (now: number, before: number | undefined) =>
    before === undefined ? 0 : Math.max(0, (now - before) / seconds)
  return {
    times: tail(history.times, reading.at / 1_000),
    remaining: tail(history.remaining, reading.stats.remaining),
    perSecond: tail(history.perSecond, rate(reading.stats.committed, previous?.stats.committed)),
    byReason: reasons.map(({ key }, i) =>
      tail(
        history.byReason[i] ?? [],
        rate(
          reading.stats.byOutcome[key] ?? 0,
          previous === undefined ? undefined : (previous.stats.byOutcome[key] ?? 0)
        )
      )
    ),
    latency: tail(history.latency, meanCommitMillis(previous?.commits, reading.commits)),
    last: reading
  }
}

/** A sale watched live: figures and four small charts, refreshed every second. */
export function LiveSale(props: { readonly session: Session; readonly sale: Sale }) {
  const [history, setHistory] = useState<History>(empty)
  const [error, setError] = useState<string | undefined>(undefined)
  const { token } = props.session
  const { saleId } = props.sale

  useEffect(() => {
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const poll = async () => {
      try {
        const [stats, text] = await Promise.all([
          api.saleStats(token, saleId),
          api.metrics().catch(() => undefined)
        ])
        if (stopped) return
        setError(undefined)
        setHistory((h) =>
          addReading(h, {
            at: Date.now(),
            stats,
            commits: text === undefined ? undefined : commitTotals(text)
          })
        )
      } catch (failure) {
        if (!stopped) setError(failure instanceof Error ? failure.message : "Stats are not available")
      }
      if (!stopped) timer = setTimeout(() => void poll(), pollMillis)
    }
    void poll()
    return () => {
      stopped = true
      clearTimeout(timer)
    }
  }, [token, saleId])

  const stats = history.last?.stats
  const latest = (values: ReadonlyArray<number | null>) => values.at(-1) ?? null
  const commitLatency = stats?.commitLatencyMillis ?? null
  return (
    <section className="panel live-sale" aria-labelledby="live-title" data-testid="live-sale">
      <h2 id="live-title">Live: {props.sale.productName}</h2>
      {error === undefined ? null : (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <dl className="figures">
        <div>
          <dt>Remaining</dt>
          <dd className="digits" data-testid="live-remaining">
            {stats === undefined
              ? "–"
              : `${stats.remaining.toLocaleString("en-US")} / ${stats.total.toLocaleString("en-US")}`}
          </dd>
        </div>
        <div>
          <dt>Purchases/s</dt>
          <dd className="digits">{(latest(history.perSecond) ?? 0).toFixed(1)}</dd>
        </div>
        <div>
          <dt>Orders</dt>
          <dd className="digits" data-testid="live-orders">
            {stats?.committed.toLocaleString("en-US") ?? "–"}
          </dd>
        </div>
        <div>
          <dt>Attempts</dt>
          <dd className="digits">{stats?.attempts.toLocaleString("en-US") ?? "–"}</dd>
        </div>
        <div>
          <dt>Commit latency (p50 / p99)</dt>
          <dd className="digits" data-testid="live-commit-latency">
            {commitLatency === null
              ? "–"
              : `${commitLatency.p50.toFixed(1)} / ${commitLatency.p99.toFixed(1)} ms`}
          </dd>
        </div>
      </dl>
      <LiveCheckout sale={props.sale} stats={stats} />
      <LiveDraw sale={props.sale} entries={stats?.byOutcome.entered} />
      <div className="charts">
        <Chart
          title="Remaining units"
          unit="units"
          testId="chart-remaining"
          series={[{ label: "remaining", color: "#1b7f3b" }]}
          times={history.times}
          values={[history.remaining]}
        />
        <Chart
          title="Purchases per second"
          unit="/s"
          testId="chart-rate"
          series={[{ label: "purchases/s", color: "#3366cc" }]}
          times={history.times}
          values={[history.perSecond]}
        />
        <Chart
          title="Outcomes by reason (per second)"
          unit="/s"
          testId="chart-outcomes"
          series={reasons}
          times={history.times}
          values={history.byReason}
        />
        <Chart
          title="Commit latency (mean, this node)"
          unit="ms"
          testId="chart-latency"
          series={[{ label: "ms", color: "#d35400", sparse: true }]}
          times={history.times}
          values={[history.latency]}
        />
      </div>
    </section>
  )
}

/**
 * Loaded into a server the bench starts (`node --import ./bench/probe.ts`), never into the
 * node itself: the server's event-loop delay and garbage collection over a phase. SIGUSR2
 * writes what was seen since the last SIGUSR2 to BENCH_PROBE_FILE as JSON, then starts over.
 * When a `<BENCH_PROBE_FILE>.gc` marker is there, it is removed and the heap is collected in
 * full first, so the resident memory reported is the server's live memory, not whatever
 * garbage the last phase left (which moved a per-watcher figure by a factor of five).
 */
import { existsSync, rmSync, writeFileSync } from "node:fs"
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

export interface ProbeStats {
  /** Event-loop delay percentiles, milliseconds (sampled every 10 ms). */
  readonly loopDelayP50: number
  readonly loopDelayP99: number
  readonly loopDelayMax: number
  /** Garbage collections: how many, their total and longest pause, milliseconds. */
  readonly gcCount: number
  readonly gcTotalMillis: number
  readonly gcMaxMillis: number
  /**
   * The server's CPU time (user + system) over the phase, milliseconds: per request it is the
   * figure least moved by other work on a shared machine, unlike requests per second.
   */
  readonly cpuMillis: number
  /** Resident memory when the stats were written, bytes (after a full collection when asked). */
  readonly rssBytes: number
  /** What of the JavaScript heap is in use then, bytes: the part of `rssBytes` no allocator's slack hides. */
  readonly heapUsedBytes: number
}

const file = process.env.BENCH_PROBE_FILE
if (file !== undefined && file !== "") {
  const delay = monitorEventLoopDelay({ resolution: 10 })
  delay.enable()
  let gc = { count: 0, total: 0, max: 0 }
  let cpu = process.cpuUsage()
  new PerformanceObserver((entries) => {
    for (const entry of entries.getEntries()) {
      gc.count++
      gc.total += entry.duration
      gc.max = Math.max(gc.max, entry.duration)
    }
  }).observe({ entryTypes: ["gc"] })
  // The collector, made for the probe alone at the first request (no flag on the server's
  // command line, and none at all in a run that asks for no collection).
  let collect: ((options?: object) => void) | undefined
  process.on("SIGUSR2", () => {
    if (existsSync(`${file}.gc`)) {
      rmSync(`${file}.gc`)
      if (collect === undefined) {
        setFlagsFromString("--expose-gc")
        collect = runInNewContext("gc") as (options?: object) => void
      }
      // V8's last-resort collection: it also gives the pages it empties back to the system, so
      // the memory read is what the server holds, not what it had mapped before (a fresh node
      // read 154 MB here, where two regular collections left it at 227 MB).
      // Twice: what the first collection's finalizers let go is collected by the second.
      collect({ type: "major", execution: "sync", flavor: "last-resort" })
      collect({ type: "major", execution: "sync", flavor: "last-resort" })
    }
    const stats: ProbeStats = {
      loopDelayP50: delay.percentile(50) / 1e6,
      loopDelayP99: delay.percentile(99) / 1e6,
      loopDelayMax: delay.max / 1e6,
      gcCount: gc.count,
      gcTotalMillis: gc.total,
      gcMaxMillis: gc.max,
      cpuMillis: (() => {
        const used = process.cpuUsage(cpu)
        return (used.user + used.system) / 1_000
      })(),
      rssBytes: process.memoryUsage.rss(),
      heapUsedBytes: process.memoryUsage().heapUsed
    }
    writeFileSync(file, JSON.stringify(stats))
    delay.reset()
    gc = { count: 0, total: 0, max: 0 }
    cpu = process.cpuUsage()
  })
}

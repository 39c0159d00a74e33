import { Effect } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { ProbeStats } from "./probe.ts"

/** A server process the bench started; it is killed (SIGTERM) when the scope closes. */
export interface Served {
  readonly url: string
  readonly pid: number
  /**
   * The server's event-loop delay and GC since the previous call (bench/probe.ts, loaded into
   * every server the bench starts): call it before a phase to start afresh, and after it.
   */
  readonly probe: () => Promise<ProbeStats>
  /**
   * The server's resident memory and JavaScript heap in use after a full garbage collection,
   * bytes (the probe collects): the same state at both ends of a memory comparison. Starts the
   * probe's phase afresh too.
   */
  readonly settledMemory: () => Promise<{ readonly rssBytes: number; readonly heapUsedBytes: number }>
}

const probeScript = new URL("./probe.ts", import.meta.url).pathname

const readProbe = async (pid: number, file: string, collect = false): Promise<ProbeStats> => {
  const before = statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0
  if (collect) writeFileSync(`${file}.gc`, "")
  process.kill(pid, "SIGUSR2")
  for (let i = 0; i < 200; i++) {
    const written = statSync(file, { throwIfNoEntry: false })
    if (written !== undefined && written.mtimeMs !== before && written.size > 0) {
      try {
        return JSON.parse(readFileSync(file, "utf8")) as ProbeStats
      } catch {
        // caught mid-write: read again
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error(`the server ${pid} did not answer the probe`)
}

/**
 * Starts `node <script>` and waits for its "Listening on <url>" line (every MinCommerce node,
 * baseline and the ceiling prints one; PORT=0 lets each pick a free port). BENCH_NODE_ARGS
 * passes flags to it (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"). The process's stderr goes to
 * ours; its stdout is read only until that line, so a chatty node cannot slow the bench.
 */
export const serve = (script: string, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.callback<{ readonly served: Served; readonly stop: () => Promise<void> }>((resume) => {
      const flags = process.env.BENCH_NODE_ARGS?.split(" ").filter((flag) => flag.length > 0) ?? []
      const probeFolder = mkdtempSync(join(tmpdir(), "mincommerce-probe-"))
      const probeFile = join(probeFolder, "stats.json")
      const child = spawn(process.execPath, [...flags, "--import", probeScript, script], {
        env: { ...process.env, ...env, BENCH_PROBE_FILE: probeFile },
        stdio: ["ignore", "pipe", "inherit"]
      })
      let output = ""
      let listening = false
      const exited = new Promise<void>((done) => child.once("exit", () => done()))
      const stop = async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
        await exited
        clearTimeout(timer)
        rmSync(probeFolder, { recursive: true, force: true })
      }
      child.stdout.on("data", (chunk: Buffer) => {
        if (listening) return
        output += chunk.toString()
        const url = /Listening on (http:\/\/[0-9.:]+)/.exec(output)?.[1]
        if (url !== undefined) {
          listening = true
          output = ""
          child.stdout.resume()
          const pid = child.pid ?? 0
          resume(
            Effect.succeed({
              served: {
                url,
                pid,
                probe: () => readProbe(pid, probeFile),
                settledMemory: () =>
                  readProbe(pid, probeFile, true).then(({ rssBytes, heapUsedBytes }) => ({
                    rssBytes,
                    heapUsedBytes
                  }))
              },
              stop
            })
          )
        }
      })
      child.on("exit", (code) => {
        if (!listening)
          resume(Effect.die(new Error(`${script} exited with ${code} before listening:\n${output}`)))
      })
    }),
    ({ stop }) => Effect.promise(stop)
  ).pipe(Effect.map(({ served }) => served))

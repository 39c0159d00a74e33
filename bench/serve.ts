import { Effect } from "effect"
import { spawn } from "node:child_process"

/** A server process the bench started; it is killed (SIGTERM) when the scope closes. */
export interface Served {
  readonly url: string
  readonly pid: number
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
      const child = spawn(process.execPath, [...flags, script], {
        env: { ...process.env, ...env },
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
      }
      child.stdout.on("data", (chunk: Buffer) => {
        if (listening) return
        output += chunk.toString()
        const url = /Listening on (http:\/\/[0-9.:]+)/.exec(output)?.[1]
        if (url !== undefined) {
          listening = true
          output = ""
          child.stdout.resume()
          resume(Effect.succeed({ served: { url, pid: child.pid ?? 0 }, stop }))
        }
      })
      child.on("exit", (code) => {
        if (!listening)
          resume(Effect.die(new Error(`${script} exited with ${code} before listening:\n${output}`)))
      })
    }),
    ({ stop }) => Effect.promise(stop)
  ).pipe(Effect.map(({ served }) => served))

import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync, spawn } from "node:child_process"
import { makeSale } from "./support/Fixtures.ts"
import { isAlive } from "./support/Processes.ts"
import { freshServerStorage } from "./support/TestDatabase.ts"

/** The pids of a process's children, as `ps` sees them. */
const childrenOf = (pid: number): ReadonlyArray<number> => {
  try {
    return execFileSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" })
      .split("\n")
      .map((line) => Number(line.trim()))
      .filter((n) => n > 0)
  } catch {
    return []
  }
}

/**
 * A process manager or container runtime signals the process it started, which for
 * `npm start` is npm. The node must get that signal, drain and exit, not be orphaned.
 */
describe("npm start", () => {
  it.live(
    "SIGTERM sent to npm reaches the node, which drains its sale and exits 0",
    () =>
      Effect.gen(function* () {
        const { url: databaseUrl, storage } = yield* freshServerStorage()
        yield* makeSale(10).pipe(Effect.provideContext(storage))
        // --ignore-scripts skips prestart (the storefront build); the start script still runs.
        const npm = spawn("npm", ["start", "--ignore-scripts", "--silent"], {
          env: {
            ...process.env,
            DATABASE_URL: databaseUrl,
            PORT: "0",
            JWT_SECRET: "npm start test secret, 32 bytes or more"
          },
          stdio: ["ignore", "pipe", "inherit"]
        })
        const npmExited = new Promise<number | null>((done) => npm.on("exit", (code) => done(code)))
        const url = yield* Effect.promise(
          () =>
            new Promise<string>((listening, failed) => {
              let output = ""
              npm.stdout.on("data", (chunk: Buffer) => {
                output += chunk.toString()
                const found = /Listening on (http:\/\/[0-9.:]+)/.exec(output)
                if (found?.[1] !== undefined) listening(found[1])
              })
              void npmExited.then((code) => failed(new Error(`npm exited with ${code} before listening`)))
            })
        )
        const npmPid = npm.pid ?? 0
        // The node is npm's child, or the child of the shell npm starts.
        const nodes = childrenOf(npmPid).flatMap((pid) => [pid, ...childrenOf(pid)])
        assert.isAbove(nodes.length, 0)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const pid of [npmPid, ...nodes]) if (isAlive(pid)) process.kill(pid, "SIGKILL")
          })
        )
        const health = yield* Effect.promise(() => fetch(`${url}/api/health/live`))
        assert.strictEqual(health.status, 200)

        process.kill(npmPid, "SIGTERM")
        const code = yield* Effect.promise(() => npmExited)
        // Every process npm started is gone once npm is: none left orphaned.
        for (let i = 0; i < 100 && nodes.some(isAlive); i++) yield* Effect.sleep("50 millis")
        assert.deepStrictEqual(nodes.filter(isAlive), [])
        assert.strictEqual(code, 0)
        const gone = yield* Effect.promise(() =>
          fetch(`${url}/api/health/live`).then(
            () => "answered",
            () => "gone"
          )
        )
        assert.strictEqual(gone, "gone")
      }).pipe(Effect.scoped),
    60_000
  )
})

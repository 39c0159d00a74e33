import { spawn, spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../..", import.meta.url))

/** Builds web/dist the way `npm start` does: only when it is missing or older than its sources. */
export const buildWebIfStale = (): void => {
  const result = spawnSync(process.execPath, ["--experimental-strip-types", "web/build.ts", "--if-stale"], {
    cwd: root,
    stdio: "inherit",
    timeout: 120_000
  })
  if (result.status !== 0) throw new Error(`web build failed (${result.status ?? result.signal})`)
}

export interface RunningNode {
  readonly url: string
  readonly stop: () => Promise<void>
}

/** A real node process (`node src/main.ts`) on `databaseUrl`; resolves once it listens. */
export const startNode = (databaseUrl: string, timeoutMillis = 30_000): Promise<RunningNode> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["src/main.ts"], {
      cwd: root,
      env: {
        ...process.env,
        DATABASE_URL: databaseUrl,
        PORT: "0",
        JWT_SECRET: "browser test secret, thirty-two bytes or more",
        // Every visitor of the tests comes from one loopback address.
        AUTH_LIMIT_PER_ADDRESS: "0",
        AUTH_SIGNUPS_PER_ADDRESS: "0"
      },
      stdio: ["ignore", "pipe", "inherit"]
    })
    const exited = new Promise<void>((done) => child.on("exit", () => done()))
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000)
      await exited
      clearTimeout(killer)
    }
    const timer = setTimeout(() => {
      void stop()
      reject(new Error(`the node did not listen within ${timeoutMillis} ms`))
    }, timeoutMillis)
    child.on("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`the node exited with ${code} before listening`))
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      const listening = /Listening on (http:\/\/[0-9.:]+)/.exec(output)
      if (listening?.[1] !== undefined) {
        clearTimeout(timer)
        output = ""
        resolve({ url: listening[1], stop })
      }
    })
  })

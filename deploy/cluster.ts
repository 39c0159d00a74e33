/**
 * `npm run cluster`: three MinCommerce nodes on this machine sharing one PostgreSQL and one
 * Redis, on ports 3001-3003 (forwarding on 4001-4003). Node 1 starts first and migrates
 * the database; the other two follow. Ctrl-C stops all three gracefully.
 *
 * DATABASE_URL (default postgres://postgres@127.0.0.1:5432/mincommerce) and REDIS_URL
 * (default redis://127.0.0.1:6379) say where; any other setting is passed through.
 */
import { spawn, type ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"

const nodes = Number(process.env.CLUSTER_NODES ?? 3)
const basePort = Number(process.env.CLUSTER_BASE_PORT ?? 3000)
const env = {
  ...process.env,
  DATABASE_URL: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/mincommerce",
  REDIS_URL: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
  // Every node must verify every other node's tokens.
  JWT_SECRET: process.env.JWT_SECRET ?? randomBytes(32).toString("hex"),
  LOG_FORMAT: process.env.LOG_FORMAT ?? "pretty"
}

const children: Array<ChildProcess> = []
let stopping = false

const start = (index: number) =>
  new Promise<void>((resolve, reject) => {
    const nodeId = `node-${index}`
    const child = spawn(process.execPath, ["src/main.ts"], {
      env: {
        ...env,
        NODE_ID: nodeId,
        PORT: String(basePort + index),
        FORWARD_PORT: String(basePort + 1000 + index)
      },
      stdio: ["ignore", "pipe", "pipe"]
    })
    children.push(child)
    const relay = (chunk: Buffer) => {
      for (const line of chunk.toString().split("\n"))
        if (line.length > 0) process.stdout.write(`[${nodeId}] ${line}\n`)
      if (chunk.toString().includes("Listening on")) resolve()
    }
    child.stdout.on("data", relay)
    child.stderr.on("data", relay)
    child.on("exit", (code) => {
      if (!stopping) {
        console.error(`[${nodeId}] exited with ${code}; stopping the cluster`)
        shutdown(1)
      }
      reject(new Error(`${nodeId} exited with ${code}`))
    })
  })

const shutdown = (code: number) => {
  if (stopping) return
  stopping = true
  for (const child of children) child.kill("SIGTERM")
  Promise.all(
    children.map(
      (child) => new Promise((done) => (child.exitCode === null ? child.once("exit", done) : done(null)))
    )
  ).then(
    () => process.exit(code),
    () => process.exit(code)
  )
}
process.on("SIGINT", () => shutdown(0))
process.on("SIGTERM", () => shutdown(0))

await start(1)
await Promise.all(Array.from({ length: nodes - 1 }, (_, i) => start(i + 2)))
console.log(
  `cluster up: ${Array.from({ length: nodes }, (_, i) => `http://127.0.0.1:${basePort + i + 1}`).join(", ")} ` +
    `(JWT_SECRET shared by all nodes; Ctrl-C stops them)`
)

import { spawn, type ChildProcess } from "node:child_process"
import { createWriteStream, type WriteStream } from "node:fs"
import { join } from "node:path"
import { freePort, waitFor } from "../support/PrivateServices.ts"

/**
 * The chaos suite's node processes. Unlike the cluster harness, each node keeps its id, HTTP
 * port and forward port across restarts, as a deployed node does: buyers keep the same address
 * list, and a restarted node meets the lease its previous life left in Redis.
 */

export interface NodeSettings {
  readonly databaseUrl: string
  readonly redisUrl: string
  readonly redisPrefix: string
  /** JWT_SECRET: signs buyers' tokens and admits nodes to each other's forward port. */
  readonly secret: string
  readonly leaseTtlMillis: number
  /** Unset: the node's own default, the one a deployment gets. */
  readonly forwardTimeoutMillis?: number
  /** Where each node's output is kept (one file per node, appended across restarts). */
  readonly logDir: string
  /** The checkout the nodes run from (`src/main.ts` under it); the working directory if unset. */
  readonly root?: string
}

export interface ChaosNode {
  readonly index: number
  readonly nodeId: string
  readonly url: string
  /** The running process, if any. */
  pid: number | undefined
  /** Set while SIGSTOPped by the suite. */
  stopped: boolean
  /** Exits the suite did not cause: a crash. */
  readonly unexpectedExits: Array<string>
  /** The last lines of output, for a report. */
  readonly tail: Array<string>
}

const tailLength = 200

export const makeNodes = async (count: number, settings: NodeSettings) => {
  const nodes: Array<ChaosNode> = []
  const children = new Map<number, ChildProcess>()
  /** Exits the suite asked for (kill, SIGTERM), so they are not counted as crashes. */
  const expected = new Set<number>()
  const logs = new Map<number, WriteStream>()

  for (let i = 0; i < count; i++) {
    const port = await freePort()
    nodes.push({
      index: i,
      nodeId: `chaos-node-${i + 1}`,
      url: `http://127.0.0.1:${port}`,
      pid: undefined,
      stopped: false,
      unexpectedExits: [],
      tail: []
    })
  }
  const forwardPorts = await Promise.all(nodes.map(() => freePort()))

  const start = async (node: ChaosNode) => {
    if (node.pid !== undefined) return
    const log =
      logs.get(node.index) ?? createWriteStream(join(settings.logDir, `${node.nodeId}.log`), { flags: "a" })
    logs.set(node.index, log)
    const child = spawn(process.execPath, ["src/main.ts"], {
      cwd: settings.root ?? process.cwd(),
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        DATABASE_URL: settings.databaseUrl,
        REDIS_URL: settings.redisUrl,
        REDIS_PREFIX: settings.redisPrefix,
        NODE_ID: node.nodeId,
        PORT: new URL(node.url).port,
        FORWARD_PORT: String(forwardPorts[node.index]),
        JWT_SECRET: settings.secret,
        LEASE_TTL_MS: String(settings.leaseTtlMillis),
        ...(settings.forwardTimeoutMillis === undefined
          ? {}
          : { FORWARD_TIMEOUT_MS: String(settings.forwardTimeoutMillis) }),
        RATE_LIMIT_PER_USER: "0",
        LOG_LEVEL: "Info"
      },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const pid = child.pid!
    node.pid = pid
    node.stopped = false
    children.set(pid, child)
    let pending = ""
    const collect = (chunk: Buffer) => {
      log.write(chunk)
      pending += chunk.toString()
      const lines = pending.split("\n")
      pending = lines.pop() ?? ""
      node.tail.push(...lines)
      if (node.tail.length > tailLength) node.tail.splice(0, node.tail.length - tailLength)
    }
    child.stdout!.on("data", collect)
    child.stderr!.on("data", collect)
    child.on("exit", (code, signal) => {
      children.delete(pid)
      if (node.pid === pid) node.pid = undefined
      log.write(`--- chaos: pid ${pid} exited (${code ?? signal}) ---\n`)
      if (!expected.delete(pid))
        node.unexpectedExits.push(`${node.nodeId} pid ${pid} exited with ${code ?? signal}`)
    })
    const exited = new Promise<void>((done) => child.once("exit", () => done()))
    let gone = false
    void exited.then(() => {
      gone = true
    })
    await waitFor(
      `${node.nodeId} to answer`,
      async () => {
        if (gone) throw new Error(`${node.nodeId} exited while starting:\n${node.tail.slice(-15).join("\n")}`)
        return live(node)
      },
      60_000,
      100
    )
  }

  const live = async (node: ChaosNode): Promise<true | undefined> => {
    try {
      const response = await fetch(`${node.url}/api/health/live`, { signal: AbortSignal.timeout(1_000) })
      await response.arrayBuffer()
      return response.ok || undefined
    } catch {
      return undefined
    }
  }

  const exitOf = (pid: number) => {
    const child = children.get(pid)
    return child === undefined
      ? Promise.resolve()
      : new Promise<void>((done) => {
          child.once("exit", () => done())
        })
  }

  const signal = (node: ChaosNode, name: NodeJS.Signals) => {
    if (node.pid === undefined) return
    try {
      process.kill(node.pid, name)
    } catch {
      // already gone
    }
  }

  /** kill -9; resolves once the process is gone. */
  const kill = async (node: ChaosNode) => {
    const pid = node.pid
    if (pid === undefined) return
    expected.add(pid)
    const gone = exitOf(pid)
    signal(node, "SIGKILL")
    await gone
    node.stopped = false
  }

  /** SIGTERM, as an orchestrator stops a node; SIGKILL if it has not left within `graceMillis`. */
  const terminate = async (node: ChaosNode, graceMillis = 15_000) => {
    const pid = node.pid
    if (pid === undefined) return { graceful: true, millis: 0 }
    expected.add(pid)
    const began = Date.now()
    const gone = exitOf(pid)
    signal(node, "SIGCONT")
    signal(node, "SIGTERM")
    const graceful = await Promise.race([
      gone.then(() => true),
      new Promise<boolean>((done) => setTimeout(() => done(false), graceMillis).unref())
    ])
    if (!graceful) {
      signal(node, "SIGKILL")
      await gone
    }
    return { graceful, millis: Date.now() - began }
  }

  const pause = (node: ChaosNode) => {
    signal(node, "SIGSTOP")
    node.stopped = node.pid !== undefined
  }
  const resume = (node: ChaosNode) => {
    signal(node, "SIGCONT")
    node.stopped = false
  }

  const close = async () => {
    await Promise.all(nodes.map((node) => kill(node)))
    await Promise.all([...logs.values()].map((log) => new Promise<void>((done) => log.end(() => done()))))
  }

  return { nodes, start, kill, terminate, pause, resume, live, close }
}

export type Nodes = Awaited<ReturnType<typeof makeNodes>>

import { execFile, spawn, type ChildProcess } from "node:child_process"
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { promisify } from "node:util"
import { Redis } from "ioredis"
import { freePort, isAlive, sleep, waitFor } from "./Processes.ts"

export { freePort, sleep, waitFor }

/**
 * A PostgreSQL server and a Redis of the test's own, on free loopback ports, that a test
 * may kill, pause and restart: the machine's shared instances serve other test files at the
 * same time and are never a fault's target.
 */

const run = promisify(execFile)

const signal = (pid: number | undefined, name: NodeJS.Signals) => {
  if (pid === undefined) return
  try {
    process.kill(pid, name)
  } catch {
    // already gone
  }
}

/** The newest PostgreSQL installed under /usr/lib/postgresql (or PG_BIN). */
export const postgresBin = (): string => {
  const explicit = process.env.PG_BIN
  if (explicit !== undefined) return explicit
  const root = "/usr/lib/postgresql"
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, "bin", "pg_ctl")))
        .sort((a, b) => Number(b) - Number(a))
    : []
  if (versions[0] === undefined) throw new Error("no PostgreSQL under /usr/lib/postgresql; set PG_BIN")
  return join(root, versions[0], "bin")
}

/**
 * PostgreSQL refuses to run as root: under root (a container, CI) the server runs as the
 * system's `postgres` account (or PG_USER), which then owns the data folder.
 */
const serverAccount = (): { uid: number; gid: number } | undefined => {
  if (process.getuid?.() !== 0) return undefined
  const name = process.env.PG_USER ?? "postgres"
  const entry = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .map((line) => line.split(":"))
    .find((fields) => fields[0] === name)
  if (entry === undefined)
    throw new Error(`running as root and there is no ${name} account to run PostgreSQL as`)
  return { uid: Number(entry[2]), gid: Number(entry[3]) }
}

/** Direct children of `pid` (a postmaster's backends and auxiliary processes). */
const childrenOf = (pid: number): Array<number> => {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim()
    return children === "" ? [] : children.split(/\s+/).map(Number)
  } catch {
    return []
  }
}

export interface PrivatePostgres {
  readonly port: number
  /** postgres://postgres@127.0.0.1:<port>/postgres, trust authentication. */
  readonly url: string
  readonly pid: () => number | undefined
  /** SIGSTOP the postmaster and every backend: the server stops answering, sockets stay open. */
  readonly stop: () => void
  readonly cont: () => void
  /** kill -9 of the postmaster, then a start once the old pid is gone (crash recovery runs). */
  readonly crash: () => Promise<void>
  /** `pg_ctl -m immediate restart`: every backend dies without a checkpoint, then recovery. */
  readonly restartImmediate: () => Promise<void>
  readonly close: () => Promise<void>
}

/** `logFile`: where the server writes its log (kept with a failing run); its own folder if unset. */
export const privatePostgres = async (
  options: { readonly logFile?: string } = {}
): Promise<PrivatePostgres> => {
  const bin = postgresBin()
  const dir = mkdtempSync(join(tmpdir(), "mincommerce-chaos-pg-"))
  const account = serverAccount()
  if (account !== undefined) chownSync(dir, account.uid, account.gid)
  const as = account ?? {}
  const data = join(dir, "data")
  const port = await freePort()

  // fsync off: a kill -9 of PostgreSQL keeps what it wrote in the kernel's cache, which is all a
  // process crash can test; the machine's disk is shared with four other engineers.
  const logFile = options.logFile ?? join(dir, "log")
  if (options.logFile !== undefined && account !== undefined) {
    writeFileSync(logFile, "")
    chownSync(logFile, account.uid, account.gid)
  }
  const settings = [
    `-p ${port}`,
    "-c listen_addresses=127.0.0.1",
    `-c unix_socket_directories=${dir}`,
    "-c fsync=off",
    "-c full_page_writes=off",
    "-c shared_buffers=32MB",
    "-c max_connections=120",
    "-c log_min_messages=warning",
    "-c log_line_prefix='%m [%p] '"
  ].join(" ")
  const pgCtl = (...args: Array<string>) =>
    run(join(bin, "pg_ctl"), ["-D", data, "-l", logFile, "-o", settings, ...args], {
      ...as,
      timeout: 60_000
    })
  const readPid = (): number | undefined => {
    try {
      const pid = Number(readFileSync(join(data, "postmaster.pid"), "utf8").split("\n")[0])
      return pid > 0 && isAlive(pid) ? pid : undefined
    } catch {
      return undefined
    }
  }
  const start = async () => {
    await pgCtl("-w", "-t", "60", "start")
  }
  try {
    await run(
      join(bin, "initdb"),
      ["-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"],
      as
    )
    await start()
  } catch (error) {
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  const everyProcess = () => {
    const pid = readPid()
    return pid === undefined ? [] : [pid, ...childrenOf(pid)]
  }
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    pid: readPid,
    stop: () => {
      for (const pid of everyProcess()) signal(pid, "SIGSTOP")
    },
    cont: () => {
      for (const pid of everyProcess()) signal(pid, "SIGCONT")
    },
    crash: async () => {
      const pid = readPid()
      const all = everyProcess()
      for (const p of all) signal(p, "SIGCONT")
      signal(pid, "SIGKILL")
      // Backends notice their postmaster is gone and exit; a start before then fails on the
      // shared memory they still hold.
      if (pid !== undefined)
        await waitFor("the killed postmaster to be gone", () => !isAlive(pid) || undefined, 20_000)
      await waitFor("the old backends to be gone", () => all.every((p) => !isAlive(p)) || undefined, 20_000)
      await start()
    },
    restartImmediate: async () => {
      for (const p of everyProcess()) signal(p, "SIGCONT")
      await pgCtl("-w", "-t", "60", "-m", "immediate", "restart")
    },
    close: async () => {
      for (const p of everyProcess()) signal(p, "SIGCONT")
      try {
        await pgCtl("-w", "-t", "20", "-m", "immediate", "stop")
      } catch {
        signal(readPid(), "SIGKILL")
      }
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

export interface PrivateRedis {
  readonly port: number
  readonly url: string
  /** SIGKILL; the data is gone (no persistence). */
  readonly kill: () => Promise<void>
  /** A fresh, empty redis-server on the same port. */
  readonly start: () => Promise<void>
  readonly flushAll: () => Promise<void>
  readonly stop: () => void
  readonly cont: () => void
  readonly running: () => boolean
  readonly close: () => Promise<void>
}

/** A redis-server on a free port without persistence: a restart forgets every lease. */
export const privateRedis = async (): Promise<PrivateRedis> => {
  const port = await freePort()
  let child: ChildProcess | undefined
  const ping = async (within: number) => {
    const probe = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => 50 })
    probe.on("error", () => {})
    try {
      await waitFor(
        "redis to answer",
        async () => {
          try {
            if (probe.status === "wait") await probe.connect()
            return (await probe.ping()) === "PONG" || undefined
          } catch {
            return undefined
          }
        },
        within
      )
    } finally {
      probe.disconnect()
    }
  }
  const start = async () => {
    child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
      { stdio: "ignore" }
    )
    await ping(15_000)
  }
  const kill = async () => {
    const running = child
    if (running === undefined) return
    child = undefined
    if (running.exitCode !== null || running.signalCode !== null) return
    const gone = new Promise((done) => running.once("exit", done))
    running.kill("SIGCONT")
    running.kill("SIGKILL")
    await gone
  }
  await start()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    start,
    flushAll: async () => {
      const client = new Redis({ port, host: "127.0.0.1", maxRetriesPerRequest: 1, connectTimeout: 2_000 })
      client.on("error", () => {})
      try {
        await client.flushall()
      } finally {
        client.disconnect()
      }
    },
    stop: () => signal(child?.pid, "SIGSTOP"),
    cont: () => signal(child?.pid, "SIGCONT"),
    running: () => child !== undefined,
    close: async () => {
      await kill()
      await sleep(0)
    }
  }
}

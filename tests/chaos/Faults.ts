import { sleep } from "../support/PrivateServices.ts"
import type { FaultProxy } from "../support/FaultProxy.ts"
import type { PrivatePostgres, PrivateRedis } from "../support/PrivateServices.ts"
import type { ChaosNode, Nodes } from "./Nodes.ts"
import type { Fault } from "./Schedule.ts"

/** What the suite may break: everything here is private to the run. */
export interface Targets {
  readonly nodes: Nodes
  readonly postgres: PrivatePostgres
  /** Between the nodes and PostgreSQL. */
  readonly pgProxy: FaultProxy
  readonly redis: PrivateRedis
  /** The node holding the sale's lease, as Redis says, or the last one it said. */
  readonly owner: () => Promise<ChaosNode | undefined>
  readonly clock: () => number
}

/** One injected fault, as it happened. */
export interface Injected {
  readonly fault: Fault
  /** The node hit, for node faults. */
  readonly nodeId?: string
  /** Run clock: when the fault began and when it was healed (its effect may outlast this). */
  readonly startedAt: number
  readonly healedAt: number
  readonly note?: string
}

const pickNode = async (targets: Targets, fault: Fault): Promise<ChaosNode> => {
  const owner = await targets.owner()
  const all = targets.nodes.nodes
  if (fault.target === "owner" && owner !== undefined) return owner
  const others = all.filter((node) => node !== owner && node.pid !== undefined)
  // Deterministic per fault, so a replay hits the same kind of node.
  return others[fault.holdMillis % Math.max(1, others.length)] ?? all[0]!
}

/**
 * Injects one fault and heals it; resolves when healed. Every wait is bounded by the fault's
 * hold or by a start's own timeout.
 */
export const inject = async (targets: Targets, fault: Fault): Promise<Injected> => {
  const { nodes, postgres, pgProxy, redis, clock } = targets
  const startedAt = clock()
  const done = (extra: { nodeId?: string; note?: string } = {}): Injected => ({
    fault,
    startedAt,
    healedAt: clock(),
    ...extra
  })
  switch (fault.kind) {
    case "node-kill": {
      const node = await pickNode(targets, fault)
      await nodes.kill(node)
      await sleep(fault.holdMillis)
      await nodes.start(node)
      return done({ nodeId: node.nodeId })
    }
    case "node-pause": {
      const node = await pickNode(targets, fault)
      nodes.pause(node)
      await sleep(fault.holdMillis)
      nodes.resume(node)
      return done({ nodeId: node.nodeId })
    }
    case "pg-pause": {
      pgProxy.pause()
      await sleep(fault.holdMillis)
      pgProxy.resume()
      return done()
    }
    case "pg-stop": {
      postgres.stop()
      await sleep(fault.holdMillis)
      postgres.cont()
      return done()
    }
    case "pg-delay": {
      pgProxy.delay(fault.delayMillis)
      await sleep(fault.holdMillis)
      pgProxy.delay(0)
      return done({ note: `${fault.delayMillis} ms per chunk` })
    }
    case "pg-cut": {
      pgProxy.refuse(fault.holdMillis > 0)
      const cut = pgProxy.cut()
      await sleep(fault.holdMillis)
      pgProxy.refuse(false)
      return done({ note: `${cut} connections cut` })
    }
    case "pg-restart": {
      await postgres.restartImmediate()
      return done()
    }
    case "pg-kill": {
      await postgres.crash()
      return done()
    }
    case "redis-kill": {
      await redis.kill()
      await sleep(fault.holdMillis)
      await redis.start()
      return done()
    }
    case "redis-flush": {
      await redis.flushAll()
      return done()
    }
    case "redis-pause": {
      redis.stop()
      await sleep(fault.holdMillis)
      redis.cont()
      return done()
    }
    case "rolling-sigterm": {
      const notes: Array<string> = []
      for (const node of nodes.nodes) {
        const { graceful, millis } = await nodes.terminate(node)
        notes.push(`${node.nodeId} ${graceful ? "left" : "KILLED after grace"} in ${millis} ms`)
        await nodes.start(node)
      }
      return done({ note: notes.join("; ") })
    }
  }
}

/** Undoes anything a fault may have left behind (a run stopped mid-fault). */
export const healAll = async (targets: Targets) => {
  targets.pgProxy.heal()
  targets.postgres.cont()
  if (targets.postgres.pid() === undefined) await targets.postgres.crash()
  targets.redis.cont()
  if (!targets.redis.running()) await targets.redis.start()
  for (const node of targets.nodes.nodes) {
    targets.nodes.resume(node)
    if (node.pid === undefined) await targets.nodes.start(node)
  }
}

import { createServer } from "node:net"

/**
 * Small waits and process checks the multi-process tests share. Nothing here imports the
 * node's own modules, so the fault suite, which talks to nodes only over HTTP and SQL, can use
 * it whatever src/ holds.
 */

/** A port free on loopback right now. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

export const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

/** Waits for `condition` to hold, checking every `every` ms; fails after `within` ms. */
export const waitFor = async <A>(
  what: string,
  condition: () => Promise<A | undefined> | A | undefined,
  within = 15_000,
  every = 25
): Promise<A> => {
  const deadline = Date.now() + within
  while (Date.now() < deadline) {
    const value = await condition()
    if (value !== undefined && value !== false) return value
    await sleep(every)
  }
  throw new Error(`timed out after ${within} ms waiting for ${what}`)
}

/** Whether a process with this pid is still there. */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

import { createConnection, createServer, type Server, type Socket } from "node:net"

/**
 * A loopback TCP proxy that can stall, slow down or cut the connections through it: the
 * kernel here has no netem, and a fault injected between two processes must hit only the
 * test's own traffic. It runs in the test's process; every fault it holds is bounded by the
 * caller, and `heal` undoes them all.
 */
export interface FaultProxy {
  /** The port clients connect to (127.0.0.1). */
  readonly port: number
  /** Bytes stop flowing both ways and new connections wait; nothing is lost or closed. */
  readonly pause: () => void
  /** Bytes flow again; queued connections are opened. */
  readonly resume: () => void
  /** Every chunk is held `millis` before it is passed on (0: none). */
  readonly delay: (millis: number) => void
  /** Resets every open connection at once (both sides see ECONNRESET or an end). */
  readonly cut: () => number
  /** New connections are closed at once while set (a refusing or unreachable server). */
  readonly refuse: (refusing: boolean) => void
  /** Undoes pause, delay and refuse. */
  readonly heal: () => void
  readonly openConnections: () => number
  readonly close: () => Promise<void>
}

interface Link {
  readonly client: Socket
  readonly server: Socket
}

export const startFaultProxy = (target: {
  readonly host?: string
  readonly port: number
}): Promise<FaultProxy> =>
  new Promise((resolve, reject) => {
    const host = target.host ?? "127.0.0.1"
    const links = new Set<Link>()
    let paused = false
    let delayMillis = 0
    let refusing = false
    /** Connections accepted while paused: opened upstream on resume. */
    let waiting: Array<Socket> = []
    /** Chunks held by `pause` or `delay`, in order per direction. */
    const held: Array<() => void> = []

    const pipe = (from: Socket, to: Socket) => {
      // One queue per direction keeps the byte order while chunks are delayed.
      let queue = Promise.resolve()
      from.on("data", (chunk: Buffer) => {
        const send = () => {
          if (!to.destroyed) to.write(chunk)
        }
        if (!paused && delayMillis === 0) {
          queue = queue.then(send)
          return
        }
        const wait = delayMillis
        queue = queue.then(
          () =>
            new Promise<void>((done) => {
              const go = () => {
                if (paused) {
                  held.push(go)
                  return
                }
                send()
                done()
              }
              if (wait > 0) setTimeout(go, wait).unref()
              else go()
            })
        )
      })
      from.on("end", () => void queue.then(() => to.end()))
    }

    const open = (client: Socket) => {
      if (client.destroyed) return
      const server = createConnection({ host, port: target.port })
      const link = { client, server }
      links.add(link)
      const drop = () => {
        links.delete(link)
        client.destroy()
        server.destroy()
      }
      client.on("error", drop)
      server.on("error", drop)
      client.on("close", drop)
      server.on("close", drop)
      pipe(client, server)
      pipe(server, client)
    }

    const proxy: Server = createServer({ allowHalfOpen: true }, (client) => {
      client.on("error", () => client.destroy())
      if (refusing) {
        client.resetAndDestroy()
        return
      }
      if (paused) waiting.push(client)
      else open(client)
    })
    proxy.on("error", reject)
    proxy.listen(0, "127.0.0.1", () => {
      const { port } = proxy.address() as { port: number }
      const resume = () => {
        paused = false
        for (const go of held.splice(0)) go()
        const queued = waiting
        waiting = []
        for (const client of queued) open(client)
      }
      resolve({
        port,
        pause: () => {
          paused = true
        },
        resume,
        delay: (millis) => {
          delayMillis = millis
        },
        cut: () => {
          const count = links.size
          for (const { client, server } of [...links]) {
            client.resetAndDestroy()
            server.resetAndDestroy()
          }
          links.clear()
          for (const client of waiting.splice(0)) client.resetAndDestroy()
          return count
        },
        refuse: (value) => {
          refusing = value
        },
        heal: () => {
          refusing = false
          delayMillis = 0
          resume()
        },
        openConnections: () => links.size,
        close: () =>
          new Promise<void>((done) => {
            for (const { client, server } of links) {
              client.destroy()
              server.destroy()
            }
            for (const client of waiting) client.destroy()
            proxy.close(() => done())
          })
      })
    })
  })

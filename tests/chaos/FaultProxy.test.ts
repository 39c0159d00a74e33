import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { connect, createServer, type Server, type Socket } from "node:net"
import { startFaultProxy, type FaultProxy } from "../support/FaultProxy.ts"

/** An echo server behind the proxy: what goes in comes back, unless the proxy says otherwise. */
let echo: Server
let proxy: FaultProxy

beforeAll(async () => {
  echo = createServer((socket) => {
    socket.on("error", () => {})
    socket.pipe(socket)
  })
  await new Promise<void>((done) => echo.listen(0, "127.0.0.1", () => done()))
  proxy = await startFaultProxy({ port: (echo.address() as { port: number }).port })
})
afterAll(async () => {
  await proxy.close()
  await new Promise<void>((done) => echo.close(() => done()))
})

const open = () =>
  new Promise<Socket>((resolve, reject) => {
    const socket = connect(proxy.port, "127.0.0.1", () => resolve(socket))
    socket.once("error", reject)
  })

/** Sends `text` and resolves with the echo and how long it took, or "none" after `within` ms. */
const roundTrip = (socket: Socket, text: string, within = 1_000) =>
  new Promise<{ reply: string; millis: number } | "none">((resolve) => {
    const began = Date.now()
    const timer = setTimeout(() => resolve("none"), within)
    socket.once("data", (data) => {
      clearTimeout(timer)
      resolve({ reply: data.toString(), millis: Date.now() - began })
    })
    socket.write(text)
  })

describe("FaultProxy", () => {
  it("passes bytes both ways", async () => {
    const socket = await open()
    expect(await roundTrip(socket, "hello")).toMatchObject({ reply: "hello" })
    socket.destroy()
  })

  it("holds bytes while paused and delivers them in order on resume", async () => {
    const socket = await open()
    proxy.pause()
    expect(await roundTrip(socket, "held", 300)).toBe("none")
    const after = new Promise<string>((resolve) => socket.once("data", (d) => resolve(d.toString())))
    proxy.resume()
    expect(await after).toBe("held")
    socket.destroy()
  })

  it("delays each chunk", async () => {
    const socket = await open()
    proxy.delay(150)
    const answer = await roundTrip(socket, "slow")
    proxy.delay(0)
    expect(answer).not.toBe("none")
    if (answer !== "none") expect(answer.millis).toBeGreaterThanOrEqual(290)
    socket.destroy()
  })

  it("cuts open connections and refuses new ones until healed", async () => {
    const socket = await open()
    await roundTrip(socket, "warm")
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()))
    socket.on("error", () => {})
    proxy.refuse(true)
    expect(proxy.cut()).toBe(1)
    await closed
    const refused = await new Promise<boolean>((resolve) => {
      const s = connect(proxy.port, "127.0.0.1")
      s.on("error", () => {})
      s.once("close", () => resolve(true))
    })
    expect(refused).toBe(true)
    proxy.heal()
    const again = await open()
    expect(await roundTrip(again, "back")).toMatchObject({ reply: "back" })
    again.destroy()
  })
})

import { assert, describe, it } from "@effect/vitest"
import { connect, createServer, type Socket } from "node:net"
import { Peers, type ForwardResult } from "../../src/cluster/ForwardClient.ts"
import { listen, type ForwardHandler } from "../../src/cluster/ForwardServer.ts"
import { FrameReader, Reply } from "../../src/cluster/Frames.ts"
import { freePort } from "./Harness.ts"

const send = (peers: Peers, address: string, userId: string) =>
  new Promise<ForwardResult>((resolve) => peers.to(address).send("sale", userId, resolve))

describe("forwarding between nodes", () => {
  it("sends what was queued in one turn as one frame, and gets every answer back", async () => {
    const handler: ForwardHandler = (_sale, userId, requestId, replies) =>
      replies.send(requestId, Reply.Accepted, userId)
    const owner = await listen("127.0.0.1", 0, handler)
    const [ownerHost, ownerPort] = owner.address.split(":")
    // A relay in front of the owner that counts the frames it carries.
    let frames = 0
    let messages = 0
    const relay = createServer((client: Socket) => {
      const upstream = connect(Number(ownerPort), ownerHost)
      const reader = new FrameReader((batch) => {
        frames++
        messages += batch.length / 3
      })
      client.on("data", (chunk: Buffer) => {
        reader.push(chunk)
        upstream.write(chunk)
      })
      upstream.on("data", (chunk: Buffer) => client.write(chunk))
      client.on("close", () => upstream.destroy())
    })
    await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve))
    const counting = { port: (relay.address() as { port: number }).port, close: () => relay.close() }
    const peers = new Peers(2_000)
    try {
      const answers = await Promise.all(
        Array.from({ length: 500 }, (_, i) => send(peers, `127.0.0.1:${counting.port}`, `user-${i}`))
      )
      assert.strictEqual(messages, 500)
      assert.strictEqual(frames, 1)
      answers.forEach((answer, i) =>
        assert.deepStrictEqual(answer, { _tag: "Reply", code: 0, value: `user-${i}` })
      )
    } finally {
      peers.closeAll()
      counting.close()
      await owner.close()
    }
  })

  it("an owner that never answers: every message fails after its timeout, none hangs", async () => {
    const owner = await listen("127.0.0.1", 0, () => {})
    const peers = new Peers(300)
    try {
      const started = Date.now()
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => send(peers, owner.address, `u${i}`))
      )
      const took = Date.now() - started
      assert.isTrue(answers.every((a) => a._tag === "NoAnswer"))
      assert.isBelow(took, 2_000)
    } finally {
      peers.closeAll()
      await owner.close()
    }
  })

  it("no owner listening: fails at once as not sent (safe to retry), and backs off", async () => {
    const address = `127.0.0.1:${await freePort()}`
    const peers = new Peers(1_000)
    try {
      const first = await send(peers, address, "u1")
      assert.deepStrictEqual(first, { _tag: "NotSent" })
      // In backoff: refused at once, without a connection attempt.
      const started = Date.now()
      const second = await send(peers, address, "u2")
      assert.deepStrictEqual(second, { _tag: "NotSent" })
      assert.isBelow(Date.now() - started, 50)
    } finally {
      peers.closeAll()
    }
  })

  it("the owner restarts on the same port: the connection comes back after the backoff", async () => {
    const port = await freePort()
    const handler: ForwardHandler = (_sale, _user, requestId, replies) =>
      replies.send(requestId, Reply.SoldOut, null)
    let owner = await listen("127.0.0.1", port, handler)
    const address = `127.0.0.1:${port}`
    const peers = new Peers(1_000)
    try {
      assert.deepStrictEqual(await send(peers, address, "u1"), {
        _tag: "Reply",
        code: Reply.SoldOut,
        value: null
      })
      await owner.close()
      // The next send finds the connection gone.
      const lost = await send(peers, address, "u2")
      assert.notStrictEqual(lost._tag, "Reply")
      owner = await listen("127.0.0.1", port, handler)
      let answer: ForwardResult = lost
      const deadline = Date.now() + 5_000
      while (answer._tag !== "Reply" && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        answer = await send(peers, address, "u3")
      }
      assert.deepStrictEqual(answer, { _tag: "Reply", code: Reply.SoldOut, value: null })
    } finally {
      peers.closeAll()
      await owner.close()
    }
  })
})

import { assert, describe, it } from "@effect/vitest"
import { randomUUID } from "node:crypto"
import { connect, createServer, type Socket } from "node:net"
import { Peers, type ForwardResult } from "../../src/cluster/ForwardClient.ts"
import { listen, type ForwardHandler } from "../../src/cluster/ForwardServer.ts"
import { encodeFrame, FrameReader, linkKey, proofOf, Reply } from "../../src/cluster/Frames.ts"
import type { SaleId, UserId } from "../../src/domain/Ids.ts"
import { freePort } from "./Harness.ts"

const key = linkKey(new TextEncoder().encode("forwarding test secret"))

const saleId = randomUUID() as SaleId
/** A buyer id per label, stable within the run: the link decodes ids as UUIDs. */
const users = new Map<string, UserId>()
const user = (label: string): UserId => {
  const known = users.get(label)
  if (known !== undefined) return known
  const made = randomUUID() as UserId
  users.set(label, made)
  return made
}

const send = (peers: Peers, address: string, label: string) =>
  new Promise<ForwardResult>((resolve) => peers.to(address).send(saleId, user(label), resolve))

describe("forwarding between nodes", () => {
  it("sends what was queued in one turn as one frame, and gets every answer back", async () => {
    const handler: ForwardHandler = (_sale, userId, requestId, replies) =>
      replies.send(requestId, Reply.Accepted, userId)
    const owner = await listen("127.0.0.1", 0, key, handler)
    const [ownerHost, ownerPort] = owner.address.split(":")
    // A relay in front of the owner that counts the request frames it carries (the caller's
    // first frame is the handshake's proof).
    let proofs = 0
    let frames = 0
    let messages = 0
    const relay = createServer((client: Socket) => {
      const upstream = connect(Number(ownerPort), ownerHost)
      const reader = new FrameReader((batch) => {
        if (proofs === 0) return void proofs++
        frames++
        messages += batch.length
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
    const peers = new Peers(2_000, key)
    try {
      const answers = await Promise.all(
        Array.from({ length: 500 }, (_, i) => send(peers, `127.0.0.1:${counting.port}`, `user-${i}`))
      )
      assert.strictEqual(proofs, 1)
      assert.strictEqual(messages, 500)
      assert.strictEqual(frames, 1)
      answers.forEach((answer, i) =>
        assert.deepStrictEqual<unknown>(answer, { _tag: "Accepted", orderId: user(`user-${i}`) })
      )
    } finally {
      peers.closeAll()
      counting.close()
      await owner.close()
    }
  })

  it("an owner that never answers: every message fails after its timeout, none hangs", async () => {
    const owner = await listen("127.0.0.1", 0, key, () => {})
    const peers = new Peers(300, key)
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
    const peers = new Peers(1_000, key)
    try {
      const first = await send(peers, address, "u1")
      assert.strictEqual(first._tag, "NotSent")
      // In backoff: refused at once, without a connection attempt.
      const started = Date.now()
      const second = await send(peers, address, "u2")
      assert.strictEqual(second._tag, "NotSent")
      assert.isBelow(Date.now() - started, 50)
    } finally {
      peers.closeAll()
    }
  })

  it("the owner restarts on the same port: the connection comes back after the backoff", async () => {
    const port = await freePort()
    const handler: ForwardHandler = (_sale, _user, requestId, replies) =>
      replies.send(requestId, Reply.SoldOut, null)
    let owner = await listen("127.0.0.1", port, key, handler)
    const address = `127.0.0.1:${port}`
    const peers = new Peers(1_000, key)
    try {
      assert.deepStrictEqual(await send(peers, address, "u1"), { _tag: "SoldOut" })
      await owner.close()
      // The next send finds the connection gone.
      const lost = await send(peers, address, "u2")
      assert.isTrue(lost._tag === "NotSent" || lost._tag === "NoAnswer")
      owner = await listen("127.0.0.1", port, key, handler)
      let answer: ForwardResult = lost
      const deadline = Date.now() + 5_000
      while (answer._tag !== "SoldOut" && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50))
        answer = await send(peers, address, "u3")
      }
      assert.deepStrictEqual(answer, { _tag: "SoldOut" })
    } finally {
      peers.closeAll()
      await owner.close()
    }
  })

  it("a peer without the cluster's key is cut off before anything is decided", async () => {
    let handled = 0
    const owner = await listen("127.0.0.1", 0, key, (_sale, _user, requestId, replies) => {
      handled++
      replies.send(requestId, Reply.Accepted, "order")
    })
    const stranger = new Peers(1_000, linkKey(new TextEncoder().encode("another secret")))
    try {
      const answers = await Promise.all([
        send(stranger, owner.address, "u1"),
        send(stranger, owner.address, "u2")
      ])
      // Cut off during the handshake: nothing was sent, so a retry elsewhere is safe.
      assert.deepStrictEqual(
        answers.map((answer) => answer._tag),
        ["NotSent", "NotSent"]
      )
      assert.strictEqual(handled, 0)
    } finally {
      stranger.closeAll()
      await owner.close()
    }
  })

  it("a raw client that sends purchases without answering the challenge gets nothing decided", async () => {
    let handled = 0
    const owner = await listen("127.0.0.1", 0, key, () => {
      handled++
    })
    const [host, port] = owner.address.split(":")
    try {
      const closed = await new Promise<{ readonly challenges: number; readonly acks: number }>((resolve) => {
        let challenges = 0
        let acks = 0
        const socket = connect(Number(port), host, () => {
          // A request frame, then a wrong proof, then a right one: all in one write, all refused.
          socket.write(
            Buffer.concat([
              encodeFrame([[1, saleId, user("u1")]]),
              encodeFrame([Buffer.alloc(32)]),
              encodeFrame([proofOf(key, Buffer.alloc(16)), [2, saleId, user("u2")]])
            ])
          )
        })
        const reader = new FrameReader((frame) => {
          if (frame[0] instanceof Uint8Array) challenges++
          if (frame[0] === true) acks++
        })
        socket.on("data", (chunk: Buffer) => reader.push(chunk))
        socket.on("error", () => {})
        socket.on("close", () => resolve({ challenges, acks }))
      })
      assert.deepStrictEqual(closed, { challenges: 1, acks: 0 })
      assert.strictEqual(handled, 0)
    } finally {
      await owner.close()
    }
  })

  it("a proven peer's frame that does not decode (a cast would take it) ends the link, nothing decided", async () => {
    let handled = 0
    const owner = await listen("127.0.0.1", 0, key, (_sale, _user, requestId, replies) => {
      handled++
      replies.send(requestId, Reply.SoldOut, null)
    })
    const [host, port] = owner.address.split(":")
    try {
      const closed = await new Promise<boolean>((resolve) => {
        const socket = connect(Number(port), host)
        let step = 0
        const reader = new FrameReader((frame) => {
          if (step++ === 0) return void socket.write(encodeFrame([proofOf(key, frame[0] as Uint8Array)]))
          // Proven: a request whose buyer is a number, beside a well-formed one.
          socket.write(
            encodeFrame([
              [1, saleId, 42],
              [2, saleId, user("u1")]
            ])
          )
        })
        socket.on("data", (chunk: Buffer) => reader.push(chunk))
        socket.on("error", () => {})
        socket.on("close", () => resolve(true))
      })
      assert.isTrue(closed)
      assert.strictEqual(handled, 0)
    } finally {
      await owner.close()
    }
  })
})

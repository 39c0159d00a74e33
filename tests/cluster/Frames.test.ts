import { assert, describe, it } from "@effect/vitest"
import { encodeFrame, FrameReader, outcomeReply, replyOutcome } from "../../src/cluster/Frames.ts"
import type { OrderId } from "../../src/domain/Ids.ts"
import type { Outcome } from "../../src/domain/Outcome.ts"

describe("node-to-node frames", () => {
  it("reads back every frame whatever the chunk boundaries", () => {
    const frames = Array.from({ length: 50 }, (_, f) =>
      Array.from({ length: (f * 37) % 900 }, (_, i) => [f * 1_000 + i, `sale-${f}`, `user-${i}`]).flat()
    )
    const bytes = Buffer.concat(frames.map(encodeFrame))
    for (const chunkSize of [1, 3, 4, 5, 64, 1_000, 65_536, bytes.length]) {
      const read: Array<ReadonlyArray<unknown>> = []
      const reader = new FrameReader((messages) => read.push(messages))
      for (let offset = 0; offset < bytes.length; offset += chunkSize)
        reader.push(bytes.subarray(offset, offset + chunkSize))
      assert.deepStrictEqual(read, frames, `chunks of ${chunkSize} bytes`)
    }
  })

  it("refuses a frame over the size limit instead of buffering it", () => {
    const reader = new FrameReader(() => {})
    const header = Buffer.alloc(4)
    header.writeUInt32BE(1 << 30, 0)
    assert.throws(() => reader.push(header))
  })

  it("carries every outcome there and back", () => {
    const outcomes: Array<Outcome> = [
      { _tag: "Accepted", orderId: "7b0c3f3e-9b1a-4d47-8a65-0c1e6f2b9d11" as OrderId },
      { _tag: "AlreadyPurchased", orderId: "0f6f0a4e-2c2d-4f7b-9b1e-3d5c7a9e1b22" as OrderId },
      {
        _tag: "Accepted",
        orderId: "7b0c3f3e-9b1a-4d47-8a65-0c1e6f2b9d12" as OrderId,
        payBy: 1_790_000_300_000
      },
      {
        _tag: "AlreadyPurchased",
        orderId: "0f6f0a4e-2c2d-4f7b-9b1e-3d5c7a9e1b23" as OrderId,
        payBy: 1_790_000_300_000
      },
      { _tag: "AlreadyPurchased", orderId: "0f6f0a4e-2c2d-4f7b-9b1e-3d5c7a9e1b24" as OrderId, lapsed: true },
      { _tag: "SoldOut" },
      { _tag: "NotStarted", startsAt: 1_790_000_000_000 },
      { _tag: "Ended" },
      { _tag: "Cancelled" },
      {
        _tag: "Entered",
        entryId: "2a6f0a4e-2c2d-4f7b-9b1e-3d5c7a9e1b33" as OrderId,
        enteredAt: 1_790_000_000_123,
        drawAt: 1_790_000_600_000
      },
      { _tag: "NotDrawn", place: 42 }
    ]
    for (const outcome of outcomes) {
      const [code, value] = outcomeReply(outcome)
      assert.deepStrictEqual(replyOutcome(code, value), outcome)
    }
  })
})

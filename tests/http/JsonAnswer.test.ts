import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import {
  errorTable,
  invalidRequest,
  NotReady,
  PurchaseUnavailable,
  rateLimited,
  SaleNotFound,
  saleNotFound,
  SoldOut
} from "../../src/http/ApiErrors.ts"
import { errorAnswer } from "../../src/http/JsonAnswer.ts"
import { purchaseAnswer } from "../../src/http/PurchaseAnswer.ts"
import * as Domain from "../../src/domain/Errors.ts"
import type { SaleId } from "../../src/domain/Ids.ts"

const saleId = "0b7e6c52-8f0a-4f7e-9d55-3c1a2b4d5e6f" as SaleId

describe("an error's answer", () => {
  it("is the bytes the HttpApi's schema encodes, with the table's status", () => {
    const errors = [
      [SoldOut, new SoldOut({ error: { code: "sold_out", message: "Every unit is sold" } })],
      [
        PurchaseUnavailable,
        new PurchaseUnavailable({
          error: { code: "unavailable", message: "m", details: { reason: "fenced", retryAfterSeconds: 1 } }
        })
      ],
      [
        NotReady,
        new NotReady({
          error: { code: "database_unreachable", message: "m", details: { retryAfterSeconds: 1 } }
        })
      ]
    ] as const
    for (const [kind, error] of errors) {
      const answer = errorAnswer(error)
      expect(answer.body).toBe(JSON.stringify(Schema.encodeUnknownSync(kind)(error)))
      expect(answer.status).toBe(errorTable[error._tag].status)
    }
    const notFound = saleNotFound(saleId)
    expect(errorAnswer(notFound).body).toBe(JSON.stringify(Schema.encodeUnknownSync(SaleNotFound)(notFound)))
  })

  it("carries Retry-After, whole seconds and at least one, exactly where the table says", () => {
    expect(errorAnswer(rateLimited(2.2)).retryAfter).toBe("3")
    expect(errorAnswer(rateLimited(0)).retryAfter).toBe("1")
    expect(errorAnswer(invalidRequest("bad")).retryAfter).toBeUndefined()
    for (const reply of [
      new Domain.Overloaded({ saleId, retryAfterSeconds: 0.5 }),
      new Domain.PurchaseUnavailable({ saleId, reason: "no_owner", retryAfterSeconds: 2 })
    ]) {
      const answer = purchaseAnswer(saleId, reply)
      expect("error" in answer && errorAnswer(answer).status).toBe(503)
      expect("error" in answer && errorAnswer(answer).retryAfter).toMatch(/^[12]$/)
    }
    const soldOut = purchaseAnswer(saleId, { _tag: "SoldOut" })
    expect("error" in soldOut && errorAnswer(soldOut)).toEqual({
      status: 409,
      body: JSON.stringify({ _tag: "SoldOut", error: { code: "sold_out", message: "Every unit is sold" } }),
      retryAfter: undefined
    })
  })
})

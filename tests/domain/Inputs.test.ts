import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { Email, Instant, Line, Paragraphs } from "../../src/domain/Inputs.ts"

// What the checked inputs accept and refuse, as plain functions: nothing a real shop would send
// is refused, nothing PostgreSQL would refuse or alter gets through.
const accepts = <S extends Schema.Top>(schema: S) => Schema.is(Schema.toType(schema))

describe("Inputs", () => {
  it("Line: any language and emoji, no control characters, not blank", () => {
    const name = accepts(Line(200))
    for (const ok of ["Limited sneaker", "Žluťoučký kůň", "限定スニーカー", "Sneaker 👟 (42)", "x"])
      expect(name(ok)).toBe(true)
    for (const bad of [
      "",
      "   ",
      "a\u0000b",
      "a\nb",
      "a\tb",
      "a\u001b[2J",
      "a\u007f",
      "a\ud800",
      "x".repeat(201)
    ])
      expect(name(bad), JSON.stringify(bad)).toBe(false)
  })

  it("Paragraphs: line breaks and tabs, no other control characters", () => {
    const description = accepts(Paragraphs(2_000))
    for (const ok of ["", "One line", "Two\nlines\r\nand\ta tab"]) expect(description(ok)).toBe(true)
    for (const bad of ["a\u0000", "a\u0007", "\udc00", "x".repeat(2_001)])
      expect(description(bad)).toBe(false)
  })

  it("Email: one @, no spaces or control characters", () => {
    const email = accepts(Email)
    for (const ok of ["ann@example.test", "o'brien+sale@exämple.test"]) expect(email(ok)).toBe(true)
    for (const bad of ["ann", "a b@example.test", "ann@example.test\u0000", " ann@example.test", "a@b@c"])
      expect(email(bad), JSON.stringify(bad)).toBe(false)
  })

  it("Instant: ISO-8601 with a zone, years 2000 to 2100", () => {
    const instant = accepts(Instant)
    for (const ok of [
      "2000-01-01T00:00:00Z",
      "2026-12-01T10:00Z",
      "2026-12-01T10:00:00.123+02:00",
      "2100-12-31T23:59:59.999999999Z"
    ])
      expect(instant(ok), ok).toBe(true)
    for (const bad of [
      "-005000-01-01T00:00:00Z",
      "+275760-09-13T00:00:00Z",
      "1999-12-31T23:59:59Z",
      "2101-01-01T00:00:00Z",
      "2026-12-01T10:00:00",
      "2026-12-01",
      "2026-13-01T10:00:00Z",
      "next tuesday",
      "2026-12-01T10:00:00Z\u0000"
    ])
      expect(instant(bad), bad).toBe(false)
  })
})

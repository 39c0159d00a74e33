import { Schema } from "effect"

/**
 * Strings and instants as a client may send them, checked before any work so that nothing
 * PostgreSQL would refuse (or store altered) gets past decoding: PostgreSQL's text cannot hold
 * NUL, a lone UTF-16 surrogate would be stored as U+FFFD, and its timestamps end at year
 * 294276 while JavaScript's Date reaches ±275760. Each failure names its field, so the client
 * gets a 400 with the path instead of a database error.
 */

// C0 controls and DEL, NUL among them: finding them is the point of these two.
// eslint-disable-next-line no-control-regex
const controlCharacters = /[\u0000-\u001f\u007f]/
// The same but for tab and line breaks, which a description may hold.
// eslint-disable-next-line no-control-regex
const controlsButLineBreaks = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/

/** Whether the text holds a C0 control character or DEL (NUL among them). */
export const hasControlCharacter = (text: string): boolean => controlCharacters.test(text)

// With the u flag a surrogate pair is one code point, so this matches only a lone half.
const loneSurrogate = /\p{Cs}/u

const isWellFormed = Schema.makeFilter<string>(
  (text) => !loneSurrogate.test(text) || "Expected well-formed Unicode (no lone surrogates)"
)

const without = (characters: RegExp, what: string) =>
  Schema.makeFilter<string>((text) => !characters.test(text) || `Expected no ${what}`)

/** One line of text of 1 to `maxLength` characters: no control characters, not blank. */
export const Line = (maxLength: number) =>
  Schema.String.check(
    Schema.isMinLength(1),
    Schema.isMaxLength(maxLength),
    without(controlCharacters, "control characters"),
    isWellFormed,
    Schema.makeFilter<string>((text) => text.trim().length > 0 || "Expected some text, not only spaces")
  )

/** Free text up to `maxLength` characters: tabs and line breaks allowed, other control characters not. */
export const Paragraphs = (maxLength: number) =>
  Schema.String.check(
    Schema.isMaxLength(maxLength),
    without(controlsButLineBreaks, "control characters but tabs and line breaks"),
    isWellFormed
  )

/** An email address as a sign-in name: one `@`, no spaces or control characters, at most 254 characters. */
export const Email = Schema.String.check(
  Schema.isTrimmed(),
  Schema.isMinLength(3),
  Schema.isMaxLength(254),
  without(controlCharacters, "control characters"),
  isWellFormed,
  Schema.isPattern(/^[^@\s]+@[^@\s]+$/)
)

// "2026-12-01T10:00:00Z", "2026-12-01T10:00:00.123+02:00": a four-digit year, a time, a zone.
const isoInstant = /^(\d{4})-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/

/** Sales are scheduled within these years; anything outside is a typo or a probe. */
export const earliestYear = 2000
export const latestYear = 2100

/** An instant as an ISO-8601 string with its zone, e.g. "2026-12-01T10:00:00Z", in years 2000–2100. */
export const Instant = Schema.String.check(
  Schema.isMaxLength(40),
  Schema.makeFilter<string>((text) => {
    const year = isoInstant.exec(text)?.[1]
    if (year === undefined || Number.isNaN(Date.parse(text)))
      return 'Expected an ISO-8601 instant with its zone, e.g. "2026-12-01T10:00:00Z"'
    const y = Number(year)
    return (y >= earliestYear && y <= latestYear) || `Expected a year from ${earliestYear} to ${latestYear}`
  })
)

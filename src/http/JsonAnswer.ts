import { HttpServerResponse } from "effect/http"
import { errorTable, retryAfterSeconds, type ErrorAnswer } from "./ApiErrors.ts"
import { apiHeaderList } from "./ResponseHeaders.ts"

/**
 * An answer as it goes on the wire: status, body bytes and `Retry-After`. Made once, and
 * written either by node:http directly or as an Effect response, so both say the same bytes.
 */
export interface JsonAnswer {
  readonly status: number
  readonly body: string
  /** The `Retry-After` header's value, when the answer has one. */
  readonly retryAfter: string | undefined
}

export const successAnswer = (status: number, value: unknown): JsonAnswer => ({
  status,
  body: JSON.stringify(value),
  retryAfter: undefined
})

/** An API error as the HttpApi's schema encodes it (`{ _tag, error }`), status and header from the table. */
export const errorAnswer = (answer: ErrorAnswer): JsonAnswer => {
  const seconds = retryAfterSeconds(answer)
  return {
    status: errorTable[answer._tag].status,
    body: JSON.stringify({ _tag: answer._tag, error: answer.error }),
    retryAfter: seconds === undefined ? undefined : String(seconds)
  }
}

const json: Readonly<Record<string, string>> = { "content-type": "application/json" }

/** The answer's own headers; the edge adds the security headers and the request id to every answer. */
export const answerHeaders = (answer: JsonAnswer): Readonly<Record<string, string>> =>
  answer.retryAfter === undefined ? json : { ...json, "retry-after": answer.retryAfter }

/**
 * The answer's header block for node:http's `writeHead` as one flat [name, value, …] list, so
 * no header object is built and walked per answer: the security headers, its own and its
 * length. The caller appends the request id.
 */
export const headerList = (answer: JsonAnswer): Array<string> => {
  const list = [
    ...apiHeaderList,
    "content-type",
    "application/json",
    "content-length",
    String(Buffer.byteLength(answer.body))
  ]
  if (answer.retryAfter !== undefined) list.push("retry-after", answer.retryAfter)
  return list
}

export const toServerResponse = (answer: JsonAnswer): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(answer.body, {
    status: answer.status,
    contentType: "application/json",
    headers: answer.retryAfter === undefined ? {} : { "retry-after": answer.retryAfter }
  })

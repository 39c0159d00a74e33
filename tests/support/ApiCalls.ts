import { assert } from "@effect/vitest"
import { Effect } from "effect"
import { admin, baseUrl, grantAdmin, testPassword } from "./ApiNode.ts"

/** The API of the node under test (ApiNode) over real HTTP, as the HTTP tests call it. */

export interface Answer {
  readonly status: number
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- answers are checked field by field
  readonly body: any
  readonly headers: Headers
}

export const call = (
  method: string,
  path: string,
  options: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {}
) =>
  Effect.flatMap(baseUrl, (url) =>
    Effect.promise(async (): Promise<Answer> => {
      const headers: Record<string, string> = { "content-type": "application/json", ...options.headers }
      if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
      const response = await fetch(url + path, {
        method,
        headers,
        body: options.raw ?? (options.body === undefined ? null : JSON.stringify(options.body))
      })
      const text = await response.text()
      return {
        status: response.status,
        body: text === "" ? undefined : JSON.parse(text),
        headers: response.headers
      }
    })
  )

export const adminToken = Effect.gen(function* () {
  const credentials = { email: admin, password: testPassword }
  yield* call("POST", "/api/auth/signup", { body: credentials })
  yield* grantAdmin(admin)
  return (yield* call("POST", "/api/auth/login", { body: credentials })).body.token as string
})

export const expectError = (answer: Answer, status: number, code: string) => {
  assert.strictEqual(answer.status, status, JSON.stringify(answer.body))
  assert.strictEqual(answer.body?.error?.code, code, JSON.stringify(answer.body))
}

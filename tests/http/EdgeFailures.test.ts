import { assert, layer } from "@effect/vitest"
import { Effect, Layer, Logger } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { OpenApi } from "effect/http-api"
import { PrometheusMetrics } from "effect/observability"
import { connect } from "node:net"
import { Api } from "../../src/http/Api.ts"
import { ApiDocs } from "../../src/http/ApiDocs.ts"
import * as NodeServer from "../../src/http/NodeServer.ts"
import { apiHeaders } from "../../src/http/ResponseHeaders.ts"
import { Edge } from "../../src/http/Server.ts"
import { launchBrowser } from "../e2e/support/Browser.ts"

/**
 * What the edge answers when something other than the API's own errors goes wrong: a defect in
 * a handler, a request Node's parser refuses, and the docs page under the node's CSP. The node
 * here is the edge, the docs and one route that dies, on the real NodeServer.
 */

// Every log line the node writes, as JSON.
const logLines: Array<string> = []
const captureLogs = Logger.layer([Logger.map(Logger.formatJson, (line) => logLines.push(line))])

const defectRoute = HttpRouter.add(
  "GET",
  "/test/defect",
  Effect.die(new Error("a defect with a secret stack"))
)
const openApiRoute = HttpRouter.add(
  "GET",
  "/openapi.json",
  Effect.succeed(HttpServerResponse.jsonUnsafe(OpenApi.fromApi(Api)))
)

// A node:http route in front of the framework (as the purchase fast route is) that throws.
const rawRoute: NodeServer.RawRoute = (request) => {
  if (request.url === "/test/raw-defect") throw new Error("a defect in the raw route")
  return false
}

const EdgeNode = HttpRouter.serve(Layer.mergeAll(Edge, ApiDocs, defectRoute, openApiRoute), {
  disableLogger: true
}).pipe(
  Layer.provideMerge(
    NodeServer.layer({
      route: rawRoute,
      listen: { port: 0, host: "127.0.0.1" },
      configure: (server) => {
        server.headersTimeout = 1_000
        server.requestTimeout = 1_500
      }
    })
  ),
  Layer.provide(captureLogs)
)

const port = Effect.map(HttpServer.HttpServer, (server) =>
  server.address._tag === "InetAddressV4" || server.address._tag === "InetAddressV6" ? server.address.port : 0
)

const assertEdgeHeaders = (headers: Headers | Record<string, string>) => {
  const get = (name: string) => (headers instanceof Headers ? headers.get(name) : headers[name])
  for (const [name, value] of Object.entries(apiHeaders)) assert.strictEqual(get(name), value, name)
  assert.match(get("x-request-id") ?? "", /^[A-Za-z0-9._-]{1,64}$/)
  assert.match(get("content-type") ?? "", /^application\/json/)
}

/** Sends raw bytes and reads until the server closes: status, headers, body. */
const rawExchange = (portNumber: number, bytes: string, options: { readonly keepOpen?: boolean } = {}) =>
  Effect.promise(
    () =>
      new Promise<{ status: number; headers: Record<string, string>; body: string }>((resolve, reject) => {
        const socket = connect(portNumber, "127.0.0.1", () =>
          options.keepOpen === true ? socket.write(bytes) : socket.end(bytes)
        )
        let text = ""
        socket.setEncoding("utf8")
        socket.on("data", (chunk: string) => (text += chunk))
        socket.on("error", reject)
        socket.on("close", () => {
          const [head = "", body = ""] = text.split("\r\n\r\n")
          const [statusLine = "", ...lines] = head.split("\r\n")
          const headers: Record<string, string> = {}
          for (const line of lines) {
            const colon = line.indexOf(":")
            headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
          }
          resolve({ status: Number(statusLine.split(" ")[1]), headers, body })
        })
      })
  )

/** What the docs test touches in the page. */
interface BrowserPage {
  violations: Array<string>
  readonly document: {
    readonly body: { readonly innerText: string }
    readonly addEventListener: (
      type: "securitypolicyviolation",
      listener: (event: { readonly violatedDirective: string; readonly blockedURI: string }) => void
    ) => void
  }
}

const metricsText = PrometheusMetrics.format()

const countOf = (text: string, labels: RegExp) => {
  const line = text
    .split("\n")
    .find((l) => l.startsWith("mincommerce_http_requests_total{") && labels.test(l))
  return line === undefined ? 0 : Number(line.split(" ").at(-1))
}

layer(EdgeNode, { timeout: 60_000, excludeTestServices: true })("the edge's answers to failures", (it) => {
  it.effect("a defect in a handler: JSON 500 with the request id, an error-level log line, a count", () =>
    Effect.gen(function* () {
      const url = `http://127.0.0.1:${yield* port}`
      const before = countOf(yield* metricsText, /route="\/test\/defect",status="500"/)
      const response = yield* Effect.promise(() =>
        fetch(`${url}/test/defect`, { headers: { "x-request-id": "defect-probe-1" } })
      )
      const text = yield* Effect.promise(() => response.text())
      assert.strictEqual(response.status, 500)
      assertEdgeHeaders(response.headers)
      assert.strictEqual(response.headers.get("x-request-id"), "defect-probe-1")
      const body = JSON.parse(text) as { error: { code: string; message: string; details: unknown } }
      assert.strictEqual(body.error.code, "internal_error")
      assert.deepStrictEqual(body.error.details, { requestId: "defect-probe-1" })
      assert.notInclude(text, "secret stack")
      assert.notInclude(text, "    at ")
      const logged = logLines
        .map(
          (line) =>
            JSON.parse(line) as { level: string; annotations: Record<string, unknown>; cause?: string }
        )
        .filter((line) => line.annotations.requestId === "defect-probe-1")
      assert.strictEqual(logged.length, 1)
      assert.strictEqual(logged[0]!.level, "ERROR")
      assert.include(logged[0]!.cause ?? "", "a defect with a secret stack")
      const after = countOf(yield* metricsText, /route="\/test\/defect",status="500"/)
      assert.strictEqual(after, before + 1)
    })
  )

  it.effect(
    "a defect thrown by the node:http route: JSON 500 with the request id and an error-level log line",
    () =>
      Effect.gen(function* () {
        const url = `http://127.0.0.1:${yield* port}`
        const response = yield* Effect.promise(() =>
          fetch(`${url}/test/raw-defect`, { headers: { "x-request-id": "raw-defect-1" } })
        )
        const text = yield* Effect.promise(() => response.text())
        assert.strictEqual(response.status, 500)
        assertEdgeHeaders(response.headers)
        assert.strictEqual(response.headers.get("x-request-id"), "raw-defect-1")
        assert.strictEqual((JSON.parse(text) as { error: { code: string } }).error.code, "internal_error")
        assert.notInclude(text, "raw route")
        yield* Effect.promise(async () => {
          for (let tries = 0; tries < 50 && !logLines.some((line) => line.includes("raw-defect-1")); tries++)
            await new Promise((resolve) => setTimeout(resolve, 20))
        })
        const logged = logLines
          .map((line) => JSON.parse(line) as { level: string; annotations: Record<string, unknown> })
          .filter((line) => line.annotations.requestId === "raw-defect-1")
        assert.deepStrictEqual(
          logged.map((line) => line.level),
          ["ERROR"]
        )
      })
  )

  it.effect("Node's parser refusals are JSON errors with the security headers and a request id", () =>
    Effect.gen(function* () {
      const portNumber = yield* port
      const before = countOf(yield* metricsText, /method="unparsed",route="unmatched",status="400"/)
      const malformed = yield* rawExchange(portNumber, "GET /\x01 HTTP/1.1 garbage\r\n\r\n")
      assert.strictEqual(malformed.status, 400)
      assertEdgeHeaders(malformed.headers)
      assert.strictEqual(
        (JSON.parse(malformed.body) as { error: { code: string } }).error.code,
        "invalid_request"
      )

      const notHttp = yield* rawExchange(portNumber, "HELLO\r\n\r\n")
      assert.strictEqual(notHttp.status, 400)
      assertEdgeHeaders(notHttp.headers)

      const bigHeaders = yield* rawExchange(
        portNumber,
        `GET / HTTP/1.1\r\nhost: x\r\nx-filler: ${"a".repeat(20_000)}\r\n\r\n`
      )
      assert.strictEqual(bigHeaders.status, 431)
      assertEdgeHeaders(bigHeaders.headers)
      assert.strictEqual(
        (JSON.parse(bigHeaders.body) as { error: { code: string } }).error.code,
        "headers_too_large"
      )

      const after = countOf(yield* metricsText, /method="unparsed",route="unmatched",status="400"/)
      assert.strictEqual(after, before + 2)

      // Headers sent and never finished: the header timeout's 408, in the same shape.
      const started = Date.now()
      const dripped = yield* rawExchange(portNumber, "GET / HTTP/1.1\r\nhost: x\r\nx-slow: a", {
        keepOpen: true
      })
      assert.strictEqual(dripped.status, 408)
      assertEdgeHeaders(dripped.headers)
      assert.strictEqual(
        (JSON.parse(dripped.body) as { error: { code: string } }).error.code,
        "request_timeout"
      )
      assert.isBelow(Date.now() - started, 5_000)
    })
  )

  it.effect("/docs uses only same-origin scripts, which the CSP allows", () =>
    Effect.gen(function* () {
      const url = `http://127.0.0.1:${yield* port}`
      const page = yield* Effect.promise(() => fetch(`${url}/docs`))
      const html = yield* Effect.promise(() => page.text())
      assert.strictEqual(page.status, 200)
      const csp = page.headers.get("content-security-policy") ?? ""
      assert.include(csp.split(";"), "script-src 'self'", "scripts: same origin only, no inline")
      const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)]
      assert.isAbove(scripts.length, 0)
      for (const [, attributes = "", content = ""] of scripts) {
        assert.isTrue(content.trim() === "", "no inline script")
        const src = /src="([^"]+)"/.exec(attributes)?.[1] ?? ""
        assert.match(src, /^\/[^/]/, "a same-origin path")
        const script = yield* Effect.promise(() => fetch(url + src))
        assert.strictEqual(script.status, 200, src)
        assert.match(script.headers.get("content-type") ?? "", /javascript/)
        yield* Effect.promise(() => script.arrayBuffer())
      }
    })
  )

  it.effect("/docs renders in Chromium without a CSP violation", () =>
    Effect.gen(function* () {
      const url = `http://127.0.0.1:${yield* port}`
      const seen = yield* Effect.promise(async () => {
        const browser = await launchBrowser()
        try {
          const page = await browser.newPage()
          const console: Array<string> = []
          page.on("console", (message) => console.push(message.text()))
          // Functions, not strings: Playwright evaluates a string with eval, which this CSP blocks.
          // This file is compiled without the DOM's types, hence the view of the page below.
          await page.addInitScript(() => {
            const view = globalThis as unknown as BrowserPage
            view.violations = []
            view.document.addEventListener("securitypolicyviolation", (event) =>
              view.violations.push(`${event.violatedDirective} ${event.blockedURI}`)
            )
          })
          await page.goto(`${url}/docs`)
          // Scalar fills the page once its script ran and the spec loaded.
          await page.waitForFunction(
            () =>
              (globalThis as unknown as BrowserPage).document.body.innerText.includes("Flash-sale purchases"),
            undefined,
            { timeout: 20_000 }
          )
          const violations = await page.evaluate(() => (globalThis as unknown as BrowserPage).violations)
          return { violations, console }
        } finally {
          await browser.close()
        }
      })
      // Scalar's bundle probes once whether eval is allowed (`try { new Function("") }`) and
      // works without it; that probe is the one report the CSP may make, and nothing is blocked.
      const probe = "script-src eval"
      assert.deepStrictEqual(
        seen.violations.filter((violation) => violation !== probe),
        [],
        "no inline script or other origin blocked"
      )
      assert.deepStrictEqual(
        seen.console.filter(
          (line) => /Content Security Policy/i.test(line) && !/Evaluating a string as JavaScript/.test(line)
        ),
        []
      )
    })
  )
})

import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"

/**
 * `GET /docs`: the Scalar API reference over `/openapi.json`. Effect's own docs page inlines its
 * scripts, which the node's CSP (`script-src 'self'`) blocks; here the page names two
 * same-origin scripts instead, so the one CSP serves every page.
 */

// Scalar's browser bundle as Effect ships it for its docs page (a module the package does not
// export by name, so it is loaded from beside the public one).
const loadScalar = Effect.promise(async () => {
  const beside = new URL("./internal/httpApiScalar.js", import.meta.resolve("effect/http-api/HttpApiScalar"))
  const module = (await import(beside.href)) as { readonly javascript: string }
  return module.javascript
})

const page = `<!doctype html>
<html>
  <head>
    <meta charset="utf-8" />
    <title>MinCommerce API</title>
    <meta name="viewport" content="width=device-width, initial-scale=1" />
  </head>
  <body>
    <div id="api-reference-container"></div>
    <script src="/docs/scalar.js"></script>
    <script src="/docs/start.js"></script>
  </body>
</html>
`

const start = `window.Scalar.createApiReference(document.getElementById("api-reference-container"), {
  _integration: "html",
  url: "/openapi.json"
})
`

// The bundle changes only with the effect package, but its URL does not: revalidate daily.
const scriptCache = "public, max-age=86400"

export const ApiDocs = Layer.effectDiscard(
  Effect.gen(function* () {
    const router = yield* HttpRouter.HttpRouter
    const scalar = yield* loadScalar
    const javascript = (body: string) =>
      HttpServerResponse.text(body, {
        contentType: "text/javascript; charset=utf-8",
        headers: { "cache-control": scriptCache }
      })
    yield* router.add("GET", "/docs", Effect.succeed(HttpServerResponse.html(page)))
    yield* router.add("GET", "/docs/scalar.js", Effect.succeed(javascript(scalar)))
    yield* router.add("GET", "/docs/start.js", Effect.succeed(javascript(start)))
  })
)

import { Effect, Layer } from "effect"
import { HttpRouter, HttpServerError, HttpServerRequest, HttpStaticServer } from "effect/http"
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { NotReady } from "./ApiErrors.ts"
import { errorAnswer, toServerResponse } from "./JsonAnswer.ts"

/** Where `vite build` writes the storefront and admin console (web/vite.config.ts). */
export const webDist = fileURLToPath(new URL("../../web/dist", import.meta.url))

// Vite names every file under /assets after a hash of its content: a new build is a new URL,
// so browsers and proxies may keep these for a year. index.html names the current ones and
// must be revalidated on every load.
const hashedAssets = "public, max-age=31536000, immutable"
const pages = "no-cache"

const notBuilt = toServerResponse(
  errorAnswer(
    new NotReady({
      error: {
        code: "web_not_built",
        message:
          "The web app is not built yet: run `npm run build:web` (npm start does it when web/dist is missing).",
        details: { retryAfterSeconds: 60 }
      }
    })
  )
)

/**
 * The built web app at `/`: files from web/dist, and index.html for any other GET outside
 * `/api` (the app routes by path). Unknown `/api` paths stay the API's JSON 404.
 */
export const StaticAssets = Layer.effectDiscard(
  Effect.gen(function* () {
    const router = yield* HttpRouter.HttpRouter
    const built = existsSync(`${webDist}/index.html`)
    if (!built) yield* Effect.logWarning("web/dist is missing: the storefront is not served", { webDist })
    const assets = yield* HttpStaticServer.make({
      root: webDist,
      index: undefined,
      cacheControl: hashedAssets
    })
    const app = yield* HttpStaticServer.make({ root: webDist, spa: true, cacheControl: pages })
    yield* router.add(
      "GET",
      "/*",
      Effect.gen(function* () {
        const request = yield* HttpServerRequest.HttpServerRequest
        const path = new URL(request.url, "http://node").pathname
        if (path === "/api" || path.startsWith("/api/"))
          return yield* new HttpServerError.HttpServerError({
            reason: new HttpServerError.RouteNotFound({ request })
          })
        if (path.startsWith("/assets/")) return yield* assets
        if (!built && !existsSync(`${webDist}/index.html`)) return notBuilt
        return yield* app
      })
    )
  })
)

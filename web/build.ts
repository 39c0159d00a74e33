/**
 * Builds the web app into web/dist with Vite. `--if-stale` builds only when web/dist is
 * missing or older than a source file, so `npm start` stays fast once built.
 */
import { existsSync, readdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const web = fileURLToPath(new URL(".", import.meta.url))
const built = join(web, "dist", "index.html")

const newestSource = (path: string): number => {
  const info = statSync(path)
  if (!info.isDirectory()) return info.mtimeMs
  return readdirSync(path).reduce(
    (newest, name) => Math.max(newest, newestSource(join(path, name))),
    info.mtimeMs
  )
}

export const isStale = (): boolean => {
  if (!existsSync(built)) return true
  const sources = [join(web, "src"), join(web, "index.html"), join(web, "vite.config.ts")]
  return Math.max(...sources.map(newestSource)) > statSync(built).mtimeMs
}

if (!process.argv.includes("--if-stale") || isStale()) {
  // A production build even when started from a test run (vitest sets NODE_ENV=test).
  process.env.NODE_ENV = "production"
  const { build } = await import("vite")
  await build({ configFile: join(web, "vite.config.ts"), logLevel: "warn" })
  console.log(`web app built into ${join(web, "dist")}`)
}

import { readFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { copyOf, dockerfile, execForm, repository, type Stage } from "./Dockerfile.ts"

const stages = dockerfile()
const runtime = stages.at(-1)!
const named = (name: string | undefined): Stage | undefined => stages.find((stage) => stage.name === name)
const runs = (stage: Stage) => stage.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args)
/** A stage's RUN commands, its ancestors' (FROM an earlier stage) first. */
const allRuns = (stage: Stage): ReadonlyArray<string> => {
  const parent = named(stage.base)
  return [...(parent === undefined ? [] : allRuns(parent)), ...runs(stage)]
}

describe("Dockerfile", () => {
  it("is multi-stage, with a slim Node 24 runtime", () => {
    expect(stages.length).toBeGreaterThanOrEqual(3)
    expect(runtime.base).toMatch(/^node:24(\.[\d.]+)?-(slim|bookworm-slim)$/)
  })

  it("installs every dependency from the lockfile, never with npm install", () => {
    const installs = stages.flatMap(runs).filter((command) => /\bnpm (ci|install|i)\b/.test(command))
    expect(installs.length).toBeGreaterThan(0)
    for (const command of installs) expect(command).toMatch(/\bnpm ci\b/)
    for (const stage of stages.filter((stage) => runs(stage).some((command) => /\bnpm ci\b/.test(command))))
      expect(
        stage.instructions.some(
          (i) => i.keyword === "COPY" && copyOf(i).sources.includes("package-lock.json")
        ),
        stage.name
      ).toBe(true)
  })

  it("builds the storefront in a build stage and copies only its output into the runtime", () => {
    const copies = runtime.instructions.filter((i) => i.keyword === "COPY").map(copyOf)
    const web = copies.find((copy) => copy.sources.some((source) => source.endsWith("web/dist")))
    expect(web?.from).toBeDefined()
    expect(allRuns(named(web?.from)!).some((command) => /web\/build\.ts|build:web/.test(command))).toBe(true)
    expect(runs(runtime).some((command) => /build/.test(command))).toBe(false)
  })

  it("has no dev dependencies in the final stage: its node_modules come from an npm ci --omit=dev", () => {
    expect(runs(runtime).some((command) => /\bnpm (ci|install|i)\b/.test(command))).toBe(false)
    const modules = runtime.instructions
      .filter((i) => i.keyword === "COPY")
      .map(copyOf)
      .filter((copy) => copy.sources.some((source) => source.includes("node_modules")))
    expect(modules).toHaveLength(1)
    const installs = allRuns(named(modules[0]!.from)!).filter((command) => /\bnpm ci\b/.test(command))
    expect(installs.length).toBeGreaterThan(0)
    for (const command of installs) expect(command).toMatch(/--omit=dev\b/)
    // The whole build context would bring the checkout's node_modules and sources of dev tools.
    for (const copy of runtime.instructions.filter((i) => i.keyword === "COPY").map(copyOf))
      expect(copy.sources).not.toContain(".")
  })

  it("runs as a non-root user, stops on SIGTERM, starts node directly and checks readiness", () => {
    const keywords = runtime.instructions.map((i) => i.keyword)
    const user = runtime.instructions.findLast((i) => i.keyword === "USER")
    expect(user?.args).toBeDefined()
    expect(user?.args).not.toMatch(/^(root|0)(:|$)/)
    expect(keywords.lastIndexOf("USER")).toBeLessThan(keywords.lastIndexOf("CMD"))
    expect(runtime.instructions.find((i) => i.keyword === "STOPSIGNAL")?.args).toBe("SIGTERM")
    // Exec form, node itself: no shell or npm between the runtime's signal and the node.
    const command = execForm(runtime.instructions.findLast((i) => i.keyword === "CMD"))
    expect(command).toEqual(["node", "src/main.ts"])
    expect(runtime.instructions.some((i) => i.keyword === "ENTRYPOINT")).toBe(false)
    const health = runtime.instructions.find((i) => i.keyword === "HEALTHCHECK")?.args ?? ""
    expect(health).toMatch(/\/api\/health\/ready/)
  })

  it("keeps local state and secrets out of the build context", () => {
    const ignored = readFileSync(join(repository, ".dockerignore"), "utf8")
      .split("\n")
      .map((line) => line.trim())
    for (const path of ["node_modules", ".git", ".env", ".data", "web/dist"]) expect(ignored).toContain(path)
  })
})

import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile, spawn } from "node:child_process"
import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { freshServerDatabase } from "../support/TestDatabase.ts"
import { copyOf, dockerfile, envOf, execForm, repository } from "./Dockerfile.ts"

const stages = dockerfile()
const runtime = stages.at(-1)!
const copies = runtime.instructions.filter((i) => i.keyword === "COPY").map(copyOf)
const modulesStage = stages.find(
  (stage) => stage.name === copies.find((copy) => copy.sources.includes("/app/node_modules"))?.from
)!
// The stage's install command, without what only tidies the image (cleaning the npm cache here
// would empty the machine's).
const install = modulesStage.instructions
  .filter((i) => i.keyword === "RUN")
  .map((i) => i.args.split("&&")[0]!.trim())
  .find((command) => command.startsWith("npm ci"))!

const run = (command: string, cwd: string, timeoutMillis: number) =>
  Effect.callback<void, Error>((resume) => {
    execFile("sh", ["-c", command], { cwd, timeout: timeoutMillis }, (error, _stdout, stderr) =>
      resume(error === null ? Effect.void : Effect.fail(new Error(`${command}: ${error.message}\n${stderr}`)))
    )
  })

/**
 * The image, built where no container engine runs: the runtime stage's files copied from the
 * checkout into an empty folder, its production dependencies installed with the image's own
 * command, and its CMD started with its ENV. A runtime import of a dev dependency fails here.
 */
describe("the image's runtime stage", () => {
  it.live(
    "starts from production dependencies only, answers ready, and exits 0 on SIGTERM",
    () =>
      Effect.gen(function* () {
        const folder = yield* Effect.acquireRelease(
          Effect.sync(() => mkdtempSync(join(tmpdir(), "mincommerce-image-"))),
          (path) => Effect.sync(() => rmSync(path, { recursive: true, force: true }))
        )
        for (const copy of copies.filter((copy) => copy.from === undefined))
          for (const source of copy.sources)
            cpSync(join(repository, source), join(folder, source), { recursive: true })
        if (existsSync(join(repository, "web/dist")))
          cpSync(join(repository, "web/dist"), join(folder, "web/dist"), { recursive: true })
        assert.match(install, /--omit=dev/)
        yield* run(`${install} --loglevel=error`, folder, 45_000)
        for (const devOnly of ["vitest", "vite", "typescript", "node", "@effect/vitest"])
          assert.isFalse(existsSync(join(folder, "node_modules", devOnly)), `${devOnly} installed`)

        const { url: databaseUrl } = yield* freshServerDatabase
        const [command, ...args] = execForm(runtime.instructions.findLast((i) => i.keyword === "CMD"))
        assert.strictEqual(command, "node")
        const node = spawn(process.execPath, args, {
          cwd: folder,
          env: {
            PATH: process.env.PATH,
            ...envOf(runtime.instructions),
            HOST: "127.0.0.1",
            PORT: "0",
            DATA_DIR: join(folder, ".data"),
            DATABASE_URL: databaseUrl,
            JWT_SECRET: "a production start test secret of 32+ bytes"
          },
          stdio: ["ignore", "pipe", "pipe"]
        })
        const exited = new Promise<number | null>((done) => node.on("exit", (code) => done(code)))
        yield* Effect.addFinalizer(() => Effect.sync(() => node.exitCode === null && node.kill("SIGKILL")))
        let output = ""
        node.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()))
        const url = yield* Effect.promise(
          () =>
            new Promise<string>((listening, failed) => {
              node.stdout.on("data", (chunk: Buffer) => {
                output += chunk.toString()
                const found = /Listening on (http:\/\/[0-9.:]+)/.exec(output)
                if (found?.[1] !== undefined) listening(found[1])
              })
              void exited.then((code) =>
                failed(new Error(`node exited with ${code} before listening:\n${output}`))
              )
            })
        )
        const ready = yield* Effect.promise(() => fetch(`${url}/api/health/ready`))
        assert.strictEqual(ready.status, 200)
        node.kill("SIGTERM")
        assert.strictEqual(yield* Effect.promise(() => exited), 0)
      }).pipe(Effect.scoped),
    58_000
  )
})

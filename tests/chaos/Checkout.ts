import { execFileSync } from "node:child_process"
import { mkdtempSync, rmSync, symlinkSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"

/**
 * The node code of one commit, exported to a temporary folder: a chaos run takes minutes,
 * and the working tree may change under it (or not even start) while others edit src/.
 * The folder shares this checkout's node_modules.
 */
export const checkout = (revision: string) => {
  const repo = resolve(".")
  const commit = execFileSync("git", ["rev-parse", "--short", `${revision}^{commit}`], { cwd: repo })
    .toString()
    .trim()
  const root = mkdtempSync(join(tmpdir(), `mincommerce-chaos-src-${commit}-`))
  execFileSync("sh", ["-c", `git archive ${commit} src package.json | tar -x -C "${root}"`], { cwd: repo })
  symlinkSync(join(repo, "node_modules"), join(root, "node_modules"))
  return { commit, root, remove: () => rmSync(root, { recursive: true, force: true }) }
}

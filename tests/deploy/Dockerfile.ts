import { readFileSync } from "node:fs"
import { join } from "node:path"

/** One instruction of a Dockerfile: its keyword (upper case) and its arguments, continuations joined. */
export interface Instruction {
  readonly keyword: string
  readonly args: string
}

export interface Stage {
  readonly name: string
  readonly base: string
  readonly instructions: ReadonlyArray<Instruction>
}

export const repository = join(import.meta.dirname, "../..")

/** The stages of a Dockerfile, in order; enough of the syntax for this repository's file. */
export const stagesOf = (text: string): ReadonlyArray<Stage> => {
  const lines = text
    .replace(/\\\r?\n/g, " ")
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith("#"))
  const stages: Array<{ name: string; base: string; instructions: Array<Instruction> }> = []
  for (const line of lines) {
    const [keyword = "", ...rest] = line.split(/\s+/)
    const args = rest.join(" ")
    if (keyword.toUpperCase() === "FROM") {
      const [base = "", as, name] = args.split(/\s+/)
      stages.push({
        base,
        name: as?.toUpperCase() === "AS" && name !== undefined ? name : String(stages.length),
        instructions: []
      })
      continue
    }
    stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), args })
  }
  return stages
}

export const dockerfile = () => stagesOf(readFileSync(join(repository, "Dockerfile"), "utf8"))

/** The arguments of an exec-form instruction (`CMD ["node", "src/main.ts"]`). */
export const execForm = (instruction: Instruction | undefined): ReadonlyArray<string> => {
  if (instruction === undefined || !instruction.args.startsWith("[")) return []
  return JSON.parse(instruction.args) as ReadonlyArray<string>
}

/** `COPY [--from=stage] [--chown=…] source… destination` as its parts. */
export const copyOf = (instruction: Instruction) => {
  const words = instruction.args.split(/\s+/)
  const from = words.find((word) => word.startsWith("--from="))?.slice("--from=".length)
  const paths = words.filter((word) => !word.startsWith("--"))
  return { from, sources: paths.slice(0, -1), destination: paths.at(-1) ?? "" }
}

/** `ENV A=1 B=2` as a record. */
export const envOf = (instructions: ReadonlyArray<Instruction>): Record<string, string> =>
  Object.fromEntries(
    instructions
      .filter((instruction) => instruction.keyword === "ENV")
      .flatMap((instruction) =>
        instruction.args.split(/\s+/).map((pair) => pair.split("=", 2) as [string, string])
      )
  )

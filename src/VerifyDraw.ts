/**
 * `npm run verify-draw -- <saleId> [--url http://127.0.0.1:3000]`: fetches a draw sale's
 * published draw (GET /api/sales/:saleId/draw) from any node and checks it from its own parts,
 * trusting nothing the node computed: the revealed seed against the commitment published at
 * creation, the entries against their hash, and the winners and waiting list against the draw
 * recomputed from the seed and the entries. Exit 0: it checks out; 1: it does not; 2: usage or
 * no answer; 3: not drawn yet.
 */
import { verify } from "./domain/Draw.ts"

const usage = "usage: npm run verify-draw -- <saleId> [--url http://127.0.0.1:3000]"

/** GET /api/sales/:saleId/draw as it answers. */
interface DrawAnswer {
  readonly drawAt: string
  readonly commitment: string
  readonly drawn: boolean
  readonly seed: string | null
  readonly units: number | null
  readonly entriesHash: string | null
  readonly entries: ReadonlyArray<{ readonly userId: string; readonly entryId: string }> | null
  readonly winners: ReadonlyArray<string> | null
  readonly waitingList: ReadonlyArray<string> | null
}

export interface Verdict {
  readonly code: 0 | 1 | 2 | 3
  readonly lines: ReadonlyArray<string>
}

/** Checks an answer of GET /api/sales/:saleId/draw. */
export const verdictOf = (answer: DrawAnswer): Verdict => {
  const { seed, units, entriesHash, entries, winners, waitingList } = answer
  if (
    !answer.drawn ||
    seed === null ||
    units === null ||
    entriesHash === null ||
    entries === null ||
    winners === null ||
    waitingList === null
  )
    return {
      code: 3,
      lines: [`not drawn yet: draw at ${answer.drawAt}, seed commitment ${answer.commitment}`]
    }
  const problems = verify({
    commitment: answer.commitment,
    seed,
    units,
    entriesHash,
    entries,
    winners,
    waitingList
  })
  const summary = `${entries.length} entries, ${units} units, ${winners.length} winners, ${waitingList.length} on the waiting list`
  return problems.length === 0
    ? {
        code: 0,
        lines: [`the draw checks out: ${summary}`, `seed ${seed}`, `commitment ${answer.commitment}`]
      }
    : { code: 1, lines: [`the draw does NOT check out (${summary}):`, ...problems.map((p) => `- ${p}`)] }
}

export const verifyDraw = async (argv: ReadonlyArray<string>): Promise<Verdict> => {
  const [saleId, flag, url] = argv
  if (
    saleId === undefined ||
    saleId.startsWith("-") ||
    (flag !== undefined && (flag !== "--url" || url === undefined))
  )
    return { code: 2, lines: [usage] }
  const base = (url ?? `http://127.0.0.1:${process.env.PORT ?? "3000"}`).replace(/\/+$/, "")
  try {
    const response = await fetch(`${base}/api/sales/${encodeURIComponent(saleId)}/draw`, {
      signal: AbortSignal.timeout(10_000)
    })
    const body: unknown = await response.json()
    if (!response.ok) return { code: 2, lines: [`${response.status}: ${JSON.stringify(body)}`] }
    return verdictOf(body as DrawAnswer)
  } catch (error) {
    return { code: 2, lines: [`no answer from ${base}: ${String(error)}`] }
  }
}

if (import.meta.main) {
  const verdict = await verifyDraw(process.argv.slice(2))
  for (const line of verdict.lines) (verdict.code === 0 ? console.log : console.error)(line)
  process.exitCode = verdict.code
}

import { createHash, createHmac, randomBytes } from "node:crypto"

/**
 * The draw of a sale in draw mode, as a pure function anyone can run again: the same seed and
 * the same entries always give the same order, whatever order the entries are listed in.
 *
 * - The seed (32 random bytes, hex) is made when the sale is created; only its commitment,
 *   `sha256(seed)`, is published before the draw, and the seed itself after it.
 * - The entries are put in a canonical order (by buyer id) and hashed: `entriesHash`. The
 *   operator committed to the seed before any entry existed, so it could not know this hash.
 * - Each entrant's ticket is `HMAC-SHA256(key = seed, message = entriesHash + ":" + userId)`;
 *   the draw order is the entrants by ticket, lowest first. The first `units` win; the rest
 *   form the waiting list, in that order.
 */

/** One entry as the draw sees it. The entry id is also the order id if the entry wins. */
export interface DrawEntry {
  readonly userId: string
  readonly entryId: string
}

export interface DrawResult {
  /** sha256 (hex) of the entries in canonical order. */
  readonly entriesHash: string
  /** Every entrant, in draw order: winners first, then the waiting list. */
  readonly order: ReadonlyArray<DrawEntry>
  readonly winners: ReadonlyArray<DrawEntry>
  /** Not drawn, in draw order: place 1 is the first to get a unit that comes back. */
  readonly waitingList: ReadonlyArray<DrawEntry>
}

const seedPattern = /^[0-9a-f]{64}$/

/** Whether `text` is a seed as this module makes them: 32 bytes as lowercase hex. */
export const isSeed = (text: string): boolean => seedPattern.test(text)

/** A fresh secret seed: 32 random bytes, hex. */
export const newSeed = (): string => randomBytes(32).toString("hex")

/** What is published at creation: the seed's sha256, hex. */
export const commitmentOf = (seed: string): string =>
  createHash("sha256").update(Buffer.from(seed, "hex")).digest("hex")

const byUser = (a: DrawEntry, b: DrawEntry) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0)

/** The entries in the one order every verifier uses: by buyer id. */
export const canonicalEntries = (entries: ReadonlyArray<DrawEntry>): ReadonlyArray<DrawEntry> =>
  [...entries].sort(byUser)

/** sha256 (hex) over `userId entryId\n` for each entry, in canonical order. */
export const entriesHashOf = (entries: ReadonlyArray<DrawEntry>): string => {
  const hash = createHash("sha256")
  for (const entry of canonicalEntries(entries)) hash.update(`${entry.userId} ${entry.entryId}\n`)
  return hash.digest("hex")
}

/** An entrant's ticket: the lower, the earlier in the draw. */
export const ticketOf = (seed: string, entriesHash: string, userId: string): string =>
  createHmac("sha256", Buffer.from(seed, "hex")).update(`${entriesHash}:${userId}`).digest("hex")

/**
 * The draw over the final entries, for `units` units. One entry per buyer is the caller's to
 * guarantee (the store's primary key does); a list with a buyer twice is refused here.
 */
export const draw = (seed: string, entries: ReadonlyArray<DrawEntry>, units: number): DrawResult => {
  if (!isSeed(seed)) throw new Error("a draw seed is 32 bytes of lowercase hex")
  const canonical = canonicalEntries(entries)
  for (let i = 1; i < canonical.length; i++) {
    if (canonical[i]?.userId === canonical[i - 1]?.userId) throw new Error("a buyer entered twice")
  }
  const entriesHash = entriesHashOf(canonical)
  const ticketed = canonical.map((entry) => ({ entry, ticket: ticketOf(seed, entriesHash, entry.userId) }))
  ticketed.sort((a, b) => (a.ticket < b.ticket ? -1 : a.ticket > b.ticket ? 1 : byUser(a.entry, b.entry)))
  const order = ticketed.map((t) => t.entry)
  const won = Math.max(0, Math.min(units, order.length))
  return { entriesHash, order, winners: order.slice(0, won), waitingList: order.slice(won) }
}

/** A published draw, as GET /api/sales/:saleId/draw shows it once drawn. */
export interface PublishedDraw {
  readonly commitment: string
  readonly seed: string
  readonly units: number
  readonly entriesHash: string
  readonly entries: ReadonlyArray<DrawEntry>
  readonly winners: ReadonlyArray<string>
  readonly waitingList: ReadonlyArray<string>
}

/**
 * Checks a published draw from its own parts: the seed matches the commitment published at
 * creation, the entries match their hash, and the winners and waiting list are exactly what
 * the draw gives. Returns what does not match; empty when the draw checks out.
 */
export const verify = (published: PublishedDraw): ReadonlyArray<string> => {
  const problems: Array<string> = []
  if (!isSeed(published.seed)) return ["the seed is not 32 bytes of lowercase hex"]
  if (commitmentOf(published.seed) !== published.commitment)
    problems.push("the seed does not match the commitment published at the sale's creation")
  const users = new Set(published.entries.map((e) => e.userId))
  if (users.size !== published.entries.length) return [...problems, "a buyer appears twice among the entries"]
  const result = draw(published.seed, published.entries, published.units)
  if (result.entriesHash !== published.entriesHash)
    problems.push("the entries do not match the entries' hash the draw used")
  const same = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) =>
    a.length === b.length && a.every((x, i) => x === b[i])
  if (
    !same(
      result.winners.map((w) => w.userId),
      published.winners
    )
  )
    problems.push("the winners are not those the seed and the entries give")
  if (
    !same(
      result.waitingList.map((w) => w.userId),
      published.waitingList
    )
  )
    problems.push("the waiting list is not the one the seed and the entries give")
  return problems
}

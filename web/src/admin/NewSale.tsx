import { useState, type FormEvent } from "react"
import { api, ApiError, type Sale, type Session } from "../api.ts"
import { fromLocalInput, toLocalInput } from "./times.ts"

/** A difficulty that costs a person about a second in a browser (see the README's measurement). */
export const suggestedDifficulty = 2_000

/**
 * Creates a product and puts it on sale: price, stock, start and end, how units are handed out
 * (first come, or a draw after an entry window) and the purchase rules (a proof-of-work
 * difficulty, and whether only accounts older than the sale may buy) and how long a purchase
 * (or a draw's win) is held for payment, all fixed once the sale exists.
 */
export function NewSale(props: { readonly session: Session; readonly onCreated: (sale: Sale) => void }) {
  const [name, setName] = useState("")
  const [price, setPrice] = useState("49.00")
  const [stock, setStock] = useState("100")
  const [startsAt, setStartsAt] = useState(() =>
    toLocalInput(Math.ceil(Date.now() / 60_000) * 60_000 + 60_000)
  )
  const [endsAt, setEndsAt] = useState(() =>
    toLocalInput(Math.ceil(Date.now() / 60_000) * 60_000 + 3_660_000)
  )
  const [difficulty, setDifficulty] = useState("0")
  const [olderAccountsOnly, setOlderAccountsOnly] = useState(false)
  const [allocation, setAllocation] = useState<"first_come" | "draw">("first_come")
  const [entryWindow, setEntryWindow] = useState("60")
  const [hold, setHold] = useState("0")
  const [repurchaseAfterLapse, setRepurchaseAfterLapse] = useState(false)
  const [message, setMessage] = useState<{ ok: boolean; text: string } | undefined>(undefined)
  const [busy, setBusy] = useState(false)

  const submit = async (event: FormEvent) => {
    event.preventDefault()
    const priceCents = Math.round(Number(price) * 100)
    const units = Number(stock)
    const start = fromLocalInput(startsAt)
    const end = fromLocalInput(endsAt)
    if (!Number.isFinite(priceCents) || priceCents < 0)
      return setMessage({ ok: false, text: "The price must be a number ≥ 0." })
    if (!Number.isInteger(units) || units < 0)
      return setMessage({ ok: false, text: "The stock must be a whole number ≥ 0." })
    if (start === undefined || end === undefined)
      return setMessage({ ok: false, text: "Start and end must be dates." })
    if (Date.parse(end) <= Date.parse(start))
      return setMessage({ ok: false, text: "The sale must end after it starts." })
    const powDifficulty = Number(difficulty)
    if (!Number.isInteger(powDifficulty) || powDifficulty < 0 || powDifficulty > 1_000_000)
      return setMessage({
        ok: false,
        text: "The difficulty must be a whole number from 0 (off) to 1,000,000."
      })
    const entryWindowSeconds = Number(entryWindow)
    if (allocation === "draw" && (!Number.isInteger(entryWindowSeconds) || entryWindowSeconds < 1))
      return setMessage({ ok: false, text: "The entry window must be a whole number of seconds ≥ 1." })
    if (allocation === "draw" && Date.parse(start) + entryWindowSeconds * 1_000 > Date.parse(end))
      return setMessage({ ok: false, text: "The entry window must close before the sale ends." })
    const holdSeconds = Number(hold)
    if (!Number.isInteger(holdSeconds) || holdSeconds < 0 || holdSeconds > 3_600)
      return setMessage({
        ok: false,
        text: "The hold must be a whole number of seconds from 0 (final at purchase) to 3,600."
      })
    if (holdSeconds > 0 && priceCents === 0)
      return setMessage({ ok: false, text: "A sale that holds units for payment needs a price above 0." })
    setBusy(true)
    setMessage(undefined)
    try {
      const { productId } = await api.createProduct(props.session.token, name.trim())
      const sale = await api.createSale(props.session.token, {
        productId,
        priceCents,
        stock: units,
        startsAt: start,
        endsAt: end,
        ...(powDifficulty > 0 ? { powDifficulty } : {}),
        ...(olderAccountsOnly ? { olderAccountsOnly } : {}),
        ...(allocation === "draw" ? { allocation, entryWindowSeconds } : {}),
        ...(holdSeconds > 0 ? { holdSeconds } : {}),
        ...(holdSeconds > 0 && allocation === "first_come" && repurchaseAfterLapse
          ? { repurchaseAfterLapse }
          : {})
      })
      setMessage({ ok: true, text: `Sale of “${sale.productName}” created.` })
      setName("")
      props.onCreated(sale)
    } catch (failure) {
      setMessage({
        ok: false,
        text: failure instanceof ApiError ? failure.message : "Could not create the sale."
      })
    } finally {
      setBusy(false)
    }
  }

  return (
    <form
      className="panel new-sale"
      onSubmit={(event) => void submit(event)}
      aria-labelledby="new-sale-title"
    >
      <h2 id="new-sale-title">New sale</h2>
      <div className="grid">
        <label>
          Product
          <input
            name="product"
            required
            maxLength={200}
            value={name}
            onChange={(e) => setName(e.target.value)}
          />
        </label>
        <label>
          Price (USD)
          <input
            name="price"
            type="number"
            min="0"
            step="0.01"
            required
            value={price}
            onChange={(e) => setPrice(e.target.value)}
          />
        </label>
        <label>
          Stock
          <input
            name="stock"
            type="number"
            min="0"
            step="1"
            required
            value={stock}
            onChange={(e) => setStock(e.target.value)}
          />
        </label>
        <label>
          Starts
          <input
            name="startsAt"
            type="datetime-local"
            step="1"
            required
            value={startsAt}
            onChange={(e) => setStartsAt(e.target.value)}
          />
        </label>
        <label>
          Ends
          <input
            name="endsAt"
            type="datetime-local"
            step="1"
            required
            value={endsAt}
            onChange={(e) => setEndsAt(e.target.value)}
          />
        </label>
        <label>
          Proof of work (0: off)
          <input
            name="powDifficulty"
            type="number"
            min="0"
            max="1000000"
            step="1"
            required
            value={difficulty}
            aria-describedby="pow-hint"
            onChange={(e) => setDifficulty(e.target.value)}
          />
          <small id="pow-hint">
            Key derivations a buyer&apos;s browser does per attempt, at most;{" "}
            {suggestedDifficulty.toLocaleString("en-US")} ≈ 1 s for a person.
          </small>
        </label>
        <label>
          Allocation
          <select
            name="allocation"
            value={allocation}
            aria-describedby="allocation-hint"
            onChange={(e) => setAllocation(e.target.value === "draw" ? "draw" : "first_come")}
          >
            <option value="first_come">First come, first served</option>
            <option value="draw">Draw among everyone who enters</option>
          </select>
          <small id="allocation-hint">
            A draw takes entries from the start for the window below, then picks winners at random.
          </small>
        </label>
        {allocation === "draw" ? (
          <label>
            Entry window (seconds)
            <input
              name="entryWindowSeconds"
              type="number"
              min="1"
              step="1"
              required
              value={entryWindow}
              onChange={(e) => setEntryWindow(e.target.value)}
            />
          </label>
        ) : null}
        <label>
          Hold for payment (seconds, 0 = final at purchase)
          <input
            name="holdSeconds"
            type="number"
            min="0"
            max="3600"
            step="1"
            required
            value={hold}
            aria-describedby="hold-hint"
            onChange={(e) => setHold(e.target.value)}
          />
          <small id="hold-hint">
            {allocation === "draw"
              ? "A winner has this long to pay; an unpaid unit then goes to the waiting list."
              : "A buyer has this long to pay; an unpaid unit then goes back on sale."}
          </small>
        </label>
        {allocation === "draw" ? null : (
          <label className="check">
            <input
              name="repurchaseAfterLapse"
              type="checkbox"
              checked={repurchaseAfterLapse}
              disabled={hold.trim() === "" || Number(hold) === 0}
              onChange={(e) => setRepurchaseAfterLapse(e.target.checked)}
            />
            Allow another purchase after a lapsed hold
          </label>
        )}
        <label className="check">
          <input
            name="olderAccountsOnly"
            type="checkbox"
            checked={olderAccountsOnly}
            onChange={(e) => setOlderAccountsOnly(e.target.checked)}
          />
          Only accounts created before this sale
        </label>
      </div>
      <button type="submit" disabled={busy}>
        Create sale
      </button>
      <p className={message?.ok === false ? "error" : "note"} role="status">
        {message?.text ?? ""}
      </p>
    </form>
  )
}

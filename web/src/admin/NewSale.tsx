import { useState, type FormEvent } from "react"
import { api, ApiError, type Sale, type Session } from "../api.ts"
import { fromLocalInput, toLocalInput } from "./times.ts"

/** Creates a product and puts it on sale: price, stock, start and end. */
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
    setBusy(true)
    setMessage(undefined)
    try {
      const { productId } = await api.createProduct(props.session.token, name.trim())
      const sale = await api.createSale(props.session.token, {
        productId,
        priceCents,
        stock: units,
        startsAt: start,
        endsAt: end
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

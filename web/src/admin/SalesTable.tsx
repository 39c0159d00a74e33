import { useState } from "react"
import { api, ApiError, drawOf, formatPrice, type Sale, type Session } from "../api.ts"
import { formatInstant } from "../store/time.ts"
import { fromLocalInput, toLocalInput } from "./times.ts"

/** A sale's allocation and purchase rules in a few words; "none" when first come without rules. */
const rulesOf = (sale: Sale): string => {
  const draw = drawOf(sale)
  const rules = [
    ...(draw === undefined ? [] : [`draw after ${draw.entryWindowSeconds.toLocaleString("en-US")} s`]),
    ...(sale.holdSeconds > 0 ? [`hold ${sale.holdSeconds.toLocaleString("en-US")} s`] : []),
    ...(sale.powDifficulty === null ? [] : [`proof of work ${sale.powDifficulty.toLocaleString("en-US")}`]),
    ...(sale.accountsCreatedBefore === null ? [] : ["older accounts only"])
  ]
  return rules.length === 0 ? "none" : rules.join(", ")
}

/** One row per sale; before its start a sale can be rescheduled or cancelled. */
export function SalesTable(props: {
  readonly session: Session
  readonly sales: ReadonlyArray<Sale>
  readonly watching: string | undefined
  readonly onWatch: (saleId: string) => void
  readonly onChanged: () => void
}) {
  const [editing, setEditing] = useState<{ saleId: string; startsAt: string; endsAt: string } | undefined>(
    undefined
  )
  const [message, setMessage] = useState<string | undefined>(undefined)

  const act = async (work: () => Promise<unknown>, done: string) => {
    try {
      await work()
      setMessage(done)
      setEditing(undefined)
      props.onChanged()
    } catch (failure) {
      setMessage(failure instanceof ApiError ? failure.message : "The change failed.")
    }
  }

  const reschedule = (saleId: string, startsAt: string, endsAt: string) => {
    const start = fromLocalInput(startsAt)
    const end = fromLocalInput(endsAt)
    if (start === undefined || end === undefined) return setMessage("Start and end must be dates.")
    void act(
      () => api.updateSale(props.session.token, saleId, { startsAt: start, endsAt: end }),
      "Sale rescheduled."
    )
  }

  return (
    <section className="panel" aria-labelledby="sales-title">
      <h2 id="sales-title">Sales</h2>
      <p className="note" role="status">
        {message ?? ""}
      </p>
      <div className="table-scroll">
        <table data-testid="admin-sales">
          <thead>
            <tr>
              <th scope="col">Product</th>
              <th scope="col">Status</th>
              <th scope="col">Price</th>
              <th scope="col">Left</th>
              <th scope="col">Rules</th>
              <th scope="col">Starts</th>
              <th scope="col">Ends</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {props.sales.map((sale) => {
              const edit = editing?.saleId === sale.saleId ? editing : undefined
              return (
                <tr key={sale.saleId} aria-current={props.watching === sale.saleId ? "true" : undefined}>
                  <th scope="row">{sale.productName}</th>
                  <td>
                    <span className={`badge ${sale.status}`}>{sale.status.replace("_", " ")}</span>
                  </td>
                  <td>{formatPrice(sale.priceCents)}</td>
                  <td className="digits">
                    {sale.remaining} / {sale.total}
                  </td>
                  <td>{rulesOf(sale)}</td>
                  {edit === undefined ? (
                    <>
                      <td>{formatInstant(sale.startsAt)}</td>
                      <td>{formatInstant(sale.endsAt)}</td>
                    </>
                  ) : (
                    <>
                      <td>
                        <input
                          type="datetime-local"
                          step="1"
                          aria-label={`New start of ${sale.productName}`}
                          value={edit.startsAt}
                          onChange={(e) => setEditing({ ...edit, startsAt: e.target.value })}
                        />
                      </td>
                      <td>
                        <input
                          type="datetime-local"
                          step="1"
                          aria-label={`New end of ${sale.productName}`}
                          value={edit.endsAt}
                          onChange={(e) => setEditing({ ...edit, endsAt: e.target.value })}
                        />
                      </td>
                    </>
                  )}
                  <td>
                    <div className="actions">
                      <button type="button" onClick={() => props.onWatch(sale.saleId)}>
                        Watch
                      </button>
                      {sale.status !== "upcoming" ? null : edit === undefined ? (
                        <>
                          <button
                            type="button"
                            onClick={() =>
                              setEditing({
                                saleId: sale.saleId,
                                startsAt: toLocalInput(Date.parse(sale.startsAt)),
                                endsAt: toLocalInput(Date.parse(sale.endsAt))
                              })
                            }
                          >
                            Reschedule
                          </button>
                          <button
                            type="button"
                            className="danger"
                            onClick={() => {
                              if (confirm(`Cancel the sale of ${sale.productName}?`))
                                void act(
                                  () => api.cancelSale(props.session.token, sale.saleId),
                                  "Sale cancelled."
                                )
                            }}
                          >
                            Cancel
                          </button>
                        </>
                      ) : (
                        <>
                          <button
                            type="button"
                            onClick={() => reschedule(sale.saleId, edit.startsAt, edit.endsAt)}
                          >
                            Save
                          </button>
                          <button type="button" onClick={() => setEditing(undefined)}>
                            Back
                          </button>
                        </>
                      )}
                    </div>
                  </td>
                </tr>
              )
            })}
          </tbody>
        </table>
      </div>
    </section>
  )
}

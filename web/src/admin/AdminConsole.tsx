import { useCallback, useEffect, useState } from "react"
import { api, type Sale, type Session } from "../api.ts"
import { LiveSale } from "./LiveSale.tsx"
import { NewSale } from "./NewSale.tsx"
import { SalesTable } from "./SalesTable.tsx"

/** Products and sales for admins: create, reschedule, cancel, watch live. */
export function AdminConsole(props: { readonly session: Session | undefined }) {
  const { session } = props
  const [sales, setSales] = useState<ReadonlyArray<Sale>>([])
  const [watching, setWatching] = useState<string | undefined>(undefined)
  const admin = session?.admin === true

  const load = useCallback(() => {
    if (!admin) return
    api.sales().then(setSales, () => undefined)
  }, [admin])
  useEffect(() => {
    load()
    const timer = setInterval(load, 5_000)
    return () => clearInterval(timer)
  }, [load])

  if (session === undefined)
    return (
      <section className="panel" data-testid="admin-denied">
        <h1>Admin console</h1>
        <p>Sign in with an administrator's email to manage sales.</p>
      </section>
    )
  if (!session.admin)
    return (
      <section className="panel" data-testid="admin-denied">
        <h1>Admin console</h1>
        <p role="alert">Not allowed: {session.email} is not an administrator.</p>
      </section>
    )

  const watched = sales.find((sale) => sale.saleId === watching) ?? sales.find((s) => s.status === "active")
  return (
    <div className="admin" data-testid="admin-console">
      <h1 className="visually-hidden">Admin console</h1>
      <NewSale
        session={session}
        onCreated={(sale) => {
          setWatching(sale.saleId)
          load()
        }}
      />
      <SalesTable
        session={session}
        sales={sales}
        watching={watched?.saleId}
        onWatch={setWatching}
        onChanged={load}
      />
      {watched === undefined ? null : <LiveSale key={watched.saleId} session={session} sale={watched} />}
    </div>
  )
}

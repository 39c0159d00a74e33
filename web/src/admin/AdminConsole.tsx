import { useCallback, useEffect, useState } from "react"
import { api, ApiError, type Sale, type Session } from "../api.ts"
import { LiveSale } from "./LiveSale.tsx"
import { NewSale } from "./NewSale.tsx"
import { SalesTable } from "./SalesTable.tsx"

/** How often the console asks the node whether the user is still an admin. */
const roleCheckMillis = 3_000

/**
 * Whether the signed-in user is an admin, as the node says now: asked on opening and every few
 * seconds, so a revoked admin loses the console without signing out. Starts from the session's
 * word, which dates from sign-in.
 */
const useAdminRole = (session: Session | undefined): boolean => {
  const [admin, setAdmin] = useState(session?.admin === true)
  const token = session?.token
  useEffect(() => {
    if (token === undefined) return
    let live = true
    const check = () =>
      api.me(token).then(
        (me) => {
          if (live) setAdmin(me.admin)
        },
        (failure: unknown) => {
          if (live && failure instanceof ApiError && (failure.status === 401 || failure.status === 403))
            setAdmin(false)
        }
      )
    void check()
    const timer = setInterval(() => void check(), roleCheckMillis)
    return () => {
      live = false
      clearInterval(timer)
    }
  }, [token])
  return session !== undefined && admin
}

/** Products and sales for admins: create, reschedule, cancel, watch live. */
export function AdminConsole(props: { readonly session: Session | undefined }) {
  const { session } = props
  const [sales, setSales] = useState<ReadonlyArray<Sale>>([])
  const [watching, setWatching] = useState<string | undefined>(undefined)
  const admin = useAdminRole(session)

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
        <p>Sign in with an administrator's account to manage sales.</p>
      </section>
    )
  if (!admin)
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

import { useEffect, useState, type MouseEvent } from "react"
import { api, onSessionChange, refreshSession, type Session } from "./api.ts"
import { AdminConsole } from "./admin/AdminConsole.tsx"
import { loadSession, saveSession } from "./session.ts"
import { SignIn } from "./SignIn.tsx"
import { Storefront } from "./store/Storefront.tsx"

type Page = "store" | "admin"

const pageOf = (pathname: string): Page => (pathname.replace(/\/+$/, "") === "/admin" ? "admin" : "store")

export function App() {
  const [session, setSession] = useState<Session | undefined>(loadSession)
  const [page, setPage] = useState<Page>(() => pageOf(location.pathname))

  useEffect(() => {
    const onPop = () => setPage(pageOf(location.pathname))
    addEventListener("popstate", onPop)
    return () => removeEventListener("popstate", onPop)
  }, [])

  // A renewed (or lost) session, wherever the refresh happened, replaces the stored one.
  useEffect(
    () =>
      onSessionChange((next) => {
        saveSession(next)
        setSession(next)
      }),
    []
  )

  // Renewed a minute before the access token expires, so a purchase never meets an expired one.
  const expiresAt = session?.expiresAt
  useEffect(() => {
    if (expiresAt === undefined) return
    const timer = setTimeout(() => void refreshSession(), Math.max(0, expiresAt - Date.now() - 60_000))
    return () => clearTimeout(timer)
  }, [expiresAt])

  const go = (target: Page) => (event: MouseEvent<HTMLAnchorElement>) => {
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return
    event.preventDefault()
    history.pushState(null, "", target === "admin" ? "/admin" : "/")
    setPage(target)
  }

  const signIn = (next: Session | undefined) => {
    saveSession(next)
    setSession(next)
  }

  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <a className="brand" href="/" onClick={go("store")}>
          MinCommerce
        </a>
        <nav aria-label="Main">
          <a href="/" onClick={go("store")} aria-current={page === "store" ? "page" : undefined}>
            Shop
          </a>
          {session?.admin === true ? (
            <a href="/admin" onClick={go("admin")} aria-current={page === "admin" ? "page" : undefined}>
              Admin
            </a>
          ) : null}
        </nav>
        {session === undefined ? null : (
          <div className="who">
            <span data-testid="signed-in-as">{session.email}</span>
            <button
              type="button"
              className="link"
              onClick={() => {
                signIn(undefined)
                void api.logout().catch(() => undefined)
              }}
            >
              Sign out
            </button>
          </div>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        {session === undefined ? <SignIn onSignedIn={signIn} /> : null}
        {page === "admin" ? (
          <AdminConsole key={session?.userId ?? "guest"} session={session} />
        ) : (
          <Storefront
            key={session?.userId ?? "guest"}
            session={session}
            onSignedOut={() => signIn(undefined)}
          />
        )}
      </main>
    </>
  )
}

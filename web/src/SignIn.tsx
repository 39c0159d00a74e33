import { useState, type FormEvent } from "react"
import { api, ApiError, type Session } from "./api.ts"

/** Sign in with an email: the first sign-in creates the account. */
export function SignIn(props: { readonly onSignedIn: (session: Session) => void }) {
  const [email, setEmail] = useState("")
  const [error, setError] = useState<string | undefined>(undefined)
  const [busy, setBusy] = useState(false)

  const submit = (event: FormEvent) => {
    event.preventDefault()
    setBusy(true)
    setError(undefined)
    api.login(email.trim()).then(
      (session) => {
        setBusy(false)
        props.onSignedIn(session)
      },
      (failure: unknown) => {
        setBusy(false)
        setError(
          failure instanceof ApiError && failure.status === 400
            ? "That does not look like an email address."
            : failure instanceof ApiError && failure.status === 429
              ? `Too many sign-ins; try again in ${failure.retryAfterSeconds ?? 1} s.`
              : "Could not sign in; try again."
        )
      }
    )
  }

  return (
    <form className="signin panel" onSubmit={submit} aria-labelledby="signin-title">
      <h2 id="signin-title">Sign in to buy</h2>
      <label htmlFor="email">Email</label>
      <div className="row">
        <input
          id="email"
          name="email"
          type="email"
          autoComplete="email"
          required
          value={email}
          onChange={(event) => setEmail(event.target.value)}
          aria-describedby={error === undefined ? undefined : "signin-error"}
        />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
      </div>
      <p id="signin-error" className="error" role="alert">
        {error ?? ""}
      </p>
    </form>
  )
}

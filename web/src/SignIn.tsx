import { useState, type FormEvent } from "react"
import { api, ApiError, type Session } from "./api.ts"

type Mode = "signin" | "signup"

const fieldOf = (failure: ApiError): unknown => {
  const details = failure.details as { path?: ReadonlyArray<unknown> } | undefined
  return details?.path?.[0]
}

/** What went wrong, in plain words. */
export const signInProblem = (failure: unknown, mode: Mode): string => {
  if (!(failure instanceof ApiError)) return "Could not reach the shop; check your connection and try again."
  switch (failure.code) {
    case "invalid_credentials":
      return "That email and password do not match an account. Check them and try again."
    case "email_taken":
      return "An account with this email already exists. Sign in instead."
    case "sign_up_closed":
      return "New accounts cannot be made here: sign in with your shop account."
    case "rate_limited":
      return `Too many attempts. Wait ${failure.retryAfterSeconds ?? 1} seconds and try again.`
  }
  if (failure.status === 400 && fieldOf(failure) === "password")
    return mode === "signup"
      ? "Choose a password of 10 to 128 characters."
      : "That email and password do not match an account. Check them and try again."
  if (failure.status === 400) return "That does not look like an email address."
  return mode === "signup" ? "Could not create the account; try again." : "Could not sign in; try again."
}

/** Sign in with email and password, or create an account. */
export function SignIn(props: { readonly onSignedIn: (session: Session) => void }) {
  const [mode, setMode] = useState<Mode>("signin")
  const [email, setEmail] = useState("")
  const [password, setPassword] = useState("")
  const [error, setError] = useState<string | undefined>(undefined)
  const [busy, setBusy] = useState(false)

  const submit = (event: FormEvent) => {
    event.preventDefault()
    setBusy(true)
    setError(undefined)
    const attempt = mode === "signup" ? api.signUp(email.trim(), password) : api.login(email.trim(), password)
    attempt.then(
      (session) => {
        setBusy(false)
        setPassword("")
        props.onSignedIn(session)
      },
      (failure: unknown) => {
        setBusy(false)
        setError(signInProblem(failure, mode))
      }
    )
  }

  const switchTo = (next: Mode) => {
    setMode(next)
    setError(undefined)
  }

  const title = mode === "signup" ? "Create an account" : "Sign in to buy"
  return (
    <form className="signin panel" onSubmit={submit} aria-labelledby="signin-title">
      <h2 id="signin-title">{title}</h2>
      <label htmlFor="email">Email</label>
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
      <label htmlFor="password">Password</label>
      <div className="row">
        <input
          id="password"
          name="password"
          type="password"
          autoComplete={mode === "signup" ? "new-password" : "current-password"}
          required
          minLength={mode === "signup" ? 10 : undefined}
          maxLength={128}
          value={password}
          onChange={(event) => setPassword(event.target.value)}
          aria-describedby={error === undefined ? undefined : "signin-error"}
        />
        <button type="submit" disabled={busy}>
          {mode === "signup" ? "Create account" : "Sign in"}
        </button>
      </div>
      <p id="signin-error" className="error" role="alert">
        {error ?? ""}
      </p>
      <p className="switch">
        {mode === "signin" ? (
          <>
            New here?{" "}
            <button type="button" className="link" onClick={() => switchTo("signup")}>
              Create an account
            </button>
          </>
        ) : (
          <>
            Have an account?{" "}
            <button type="button" className="link" onClick={() => switchTo("signin")}>
              Sign in
            </button>
          </>
        )}
      </p>
    </form>
  )
}

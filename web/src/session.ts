import type { Session } from "./api.ts"

const key = "mincommerce.session"

/**
 * The signed-in user, kept in this browser (per tab origin) until sign-out. Only the
 * short-lived access token is here; the refresh token is an httpOnly cookie no script reads.
 */
export const loadSession = (): Session | undefined => {
  try {
    const raw = localStorage.getItem(key)
    if (raw === null) return undefined
    const session = JSON.parse(raw) as Partial<Session>
    return typeof session.token === "string" &&
      typeof session.expiresAt === "number" &&
      typeof session.userId === "string" &&
      typeof session.email === "string" &&
      typeof session.admin === "boolean"
      ? (session as Session)
      : undefined
  } catch {
    return undefined
  }
}

export const saveSession = (session: Session | undefined): void => {
  if (session === undefined) localStorage.removeItem(key)
  else localStorage.setItem(key, JSON.stringify(session))
}

import { randomUUID } from "node:crypto"

const hsts = "max-age=31536000; includeSubDomains"

/**
 * The headers Helmet sets by default, on every answer but the API's data (pages, scripts,
 * styles), but for the CSP's `upgrade-insecure-requests`: a node reached over plain HTTP by
 * any name but localhost (a LAN address, the compose file's load balancer) would have the
 * browser ask for its scripts over HTTPS, and the storefront would stay blank. Every asset is
 * same-origin, so there is no mixed content to upgrade; behind TLS, Strict-Transport-Security
 * keeps the browser on HTTPS.
 */
const documentHeaders: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline'",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "origin-agent-cluster": "?1",
  "referrer-policy": "no-referrer",
  "strict-transport-security": hsts,
  "x-content-type-options": "nosniff",
  "x-dns-prefetch-control": "off",
  "x-download-options": "noopen",
  "x-frame-options": "SAMEORIGIN",
  "x-permitted-cross-domain-policies": "none",
  "x-xss-protection": "0"
}

/**
 * The headers of the API's answers (JSON and live events), which a browser never renders as a
 * page: nothing may be framed or run from them, no other origin may embed them, they are never
 * sniffed into another type, and HTTPS stays on. The document headers' other eight govern a
 * rendered page (its scripts, its opener, its referrer) and say nothing here; on a purchase
 * answer they were two thirds of its bytes (637 of about 940), which node:http checks and
 * writes for each answer of a flood. Pages, scripts and styles keep the document headers (a
 * script may run as a worker, whose policy is its own answer's).
 */
export const apiHeaders: Readonly<Record<string, string>> = {
  "content-security-policy": "default-src 'none';frame-ancestors 'none'",
  "cross-origin-resource-policy": "same-origin",
  "strict-transport-security": hsts,
  "x-content-type-options": "nosniff"
}

/** The API headers as one flat [name, value, …] list, for node:http's `writeHead`. */
export const apiHeaderList: ReadonlyArray<string> = Object.entries(apiHeaders).flat()

/** The security headers of an answer of this content type: the API's for data, else a document's. */
export const securityHeadersFor = (contentType: string | undefined): Readonly<Record<string, string>> =>
  contentType !== undefined && dataTypes.test(contentType) ? apiHeaders : documentHeaders

const dataTypes = /^(application\/json|text\/event-stream)\b/

const sane = /^[A-Za-z0-9._-]{1,64}$/

/** The caller's request id when it sent a sane one, else a fresh one. */
export const requestIdFor = (incoming: string | undefined): string =>
  incoming !== undefined && sane.test(incoming) ? incoming : randomUUID()

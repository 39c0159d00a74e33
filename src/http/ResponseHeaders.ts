import { randomUUID } from "node:crypto"

/**
 * The headers Helmet sets by default, on every response, but for the CSP's
 * `upgrade-insecure-requests`: a node reached over plain HTTP by any name but localhost (a LAN
 * address, the compose file's load balancer) would have the browser ask for its scripts over
 * HTTPS, and the storefront would stay blank. Every asset is same-origin, so there is no mixed
 * content to upgrade; behind TLS, Strict-Transport-Security keeps the browser on HTTPS.
 */
export const securityHeaders: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline'",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "origin-agent-cluster": "?1",
  "referrer-policy": "no-referrer",
  "strict-transport-security": "max-age=31536000; includeSubDomains",
  "x-content-type-options": "nosniff",
  "x-dns-prefetch-control": "off",
  "x-download-options": "noopen",
  "x-frame-options": "SAMEORIGIN",
  "x-permitted-cross-domain-policies": "none",
  "x-xss-protection": "0"
}

/** The same headers as one flat [name, value, …] list, for node:http's `writeHead`. */
export const securityHeaderList: ReadonlyArray<string> = Object.entries(securityHeaders).flat()

const sane = /^[A-Za-z0-9._-]{1,64}$/

/** The caller's request id when it sent a sane one, else a fresh one. */
export const requestIdFor = (incoming: string | undefined): string =>
  incoming !== undefined && sane.test(incoming) ? incoming : randomUUID()

import { chromium, type Browser, type BrowserContext } from "playwright-core"

/** Debian's Chromium (`apt-get install chromium`); no browser is downloaded. */
export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium"

/**
 * Headless Chromium. Playwright gives it a fresh temporary profile (user-data-dir) and
 * deletes it on close; the flags keep it from reaching for the network, which this machine
 * does not have beyond loopback.
 */
export const launchBrowser = (extraArgs: ReadonlyArray<string> = []): Promise<Browser> =>
  chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      ...extraArgs
    ],
    timeout: 30_000
  })

/** A separate visitor (own storage), on UTC and en-US so times read the same everywhere. */
export const newVisitor = (
  browser: Browser,
  viewport: { width: number; height: number } = { width: 1100, height: 860 }
): Promise<BrowserContext> => browser.newContext({ timezoneId: "UTC", locale: "en-US", viewport })

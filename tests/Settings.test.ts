import { describe, expect, it } from "vitest"
import { spawnSync } from "node:child_process"
import { mistypedSettings, settingNames } from "../src/Settings.ts"

describe("settings", () => {
  it("names the setting a mistyped variable meant, and leaves other variables alone", () => {
    const env = {
      DATABSE_URL: "postgres://x",
      RATE_LIMIT_PER_USR: "5",
      PORTT: "3000",
      HOME: "/root",
      HOSTNAME: "box",
      PATH: "/usr/bin",
      NODE_ENV: "production",
      PGHOST: "localhost",
      PORT: "3000"
    }
    expect(mistypedSettings(env)).toEqual([
      "DATABSE_URL: not a setting; did you mean DATABASE_URL?",
      "RATE_LIMIT_PER_USR: not a setting; did you mean RATE_LIMIT_PER_USER?",
      "PORTT: not a setting; did you mean PORT?"
    ])
    expect(mistypedSettings(Object.fromEntries(settingNames.map((name) => [name, "1"])))).toEqual([])
  })

  it("refuses to start on a bad value or a mistyped name, listing every problem, before touching anything", () => {
    const started = spawnSync(process.execPath, ["src/main.ts"], {
      env: {
        PATH: process.env.PATH ?? "",
        PORT: "eighty",
        MAILBOX_CAPACITY: "0",
        ADMIN_EMAILS: "boss@example.com",
        JWT_SECRET: "too short a secret",
        // Unreachable on purpose: the check must fail first, without a database.
        DATABASE_URL: "postgres://nobody@127.0.0.1:1/none"
      },
      encoding: "utf8",
      timeout: 30_000
    })
    expect(started.status).toBe(1)
    expect(started.stderr).toContain("MinCommerce cannot start: invalid settings")
    expect(started.stderr).toContain("PORT: Expected a finite number")
    expect(started.stderr).toContain("MAILBOX_CAPACITY: Expected a value greater than or equal to 1")
    expect(started.stderr).toContain("ADMIN_EMAILS: removed: it no longer makes anyone an admin")
    expect(started.stderr).toContain("JWT_SECRET: must be at least 32 bytes")
    expect(started.stderr).not.toContain("too short a secret")
    expect(started.stdout).not.toContain("database:")
  })
})

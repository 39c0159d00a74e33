import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    // Component tests (.tsx) pick jsdom per file with `// @vitest-environment jsdom`.
    include: ["tests/**/*.test.ts", "tests/**/*.test.tsx"],
    testTimeout: 60_000,
    hookTimeout: 60_000
  }
})

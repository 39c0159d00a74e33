import eslint from "@eslint/js"
import reactHooks from "eslint-plugin-react-hooks"
import tseslint from "typescript-eslint"

export default tseslint.config(
  { ignores: ["node_modules", ".data", "bench/results", "web/dist", "coverage"] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "require-yield": "off"
    }
  },
  {
    files: ["web/src/**/*.{ts,tsx}", "tests/web/**/*.{ts,tsx}"],
    ...reactHooks.configs.flat.recommended
  }
)

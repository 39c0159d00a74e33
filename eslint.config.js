import eslint from "@eslint/js"
import reactHooks from "eslint-plugin-react-hooks"
import tseslint from "typescript-eslint"

// The layers of a node, top to bottom: main → http → cluster → actors → payments | storage →
// domain. A module may import any layer below its own and its own layer, never one above nor
// one beside it: payments and storage sit side by side (actors and http use both, neither
// uses the other), so the arrows point one way by construction. Settings and the shared
// secret sit beside main, readable by every layer that needs configuration.
const ranks = [["http"], ["cluster"], ["actors"], ["payments", "storage"], ["domain"]]
const layers = ranks.flat()
const arrows = "main → http → cluster → actors → payments | storage → domain"

const importsAbove = (layer) => {
  const rank = ranks.findIndex((names) => names.includes(layer))
  const above = ranks.slice(0, rank).flat()
  const beside = ranks[rank].filter((name) => name !== layer)
  const refuse = (name, why) => ({
    group: [`../${name}/*`, `../../${name}/*`, `**/src/${name}/*`],
    message: `src/${layer} is ${why} src/${name}: imports point down (${arrows}).`
  })
  return {
    files: [`src/${layer}/**/*.ts`],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            ...above.map((name) => refuse(name, "below")),
            ...beside.map((name) => refuse(name, "beside")),
            {
              group: ["../main.ts", "**/src/main.ts"],
              message: "main.ts wires the layers; nothing imports it."
            }
          ]
        }
      ]
    }
  }
}

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
  ...layers.map(importsAbove),
  {
    // An assertion the compiler cannot check is a guess; the node's code handles the case.
    files: ["src/**/*.ts"],
    rules: { "@typescript-eslint/no-non-null-assertion": "error" }
  },
  {
    files: ["web/src/**/*.{ts,tsx}", "tests/web/**/*.{ts,tsx}"],
    ...reactHooks.configs.flat.recommended
  }
)

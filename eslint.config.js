import eslint from "@eslint/js"
import reactHooks from "eslint-plugin-react-hooks"
import tseslint from "typescript-eslint"

// The layers of a node, top to bottom: main → http → cluster → actors → storage → domain.
// A module may import its own layer and any layer below it, never one above: the arrows
// point one way by construction. Settings and the shared secret sit beside main, readable
// by every layer that needs configuration.
const layers = ["http", "cluster", "actors", "storage", "domain"]

const importsAbove = (layer) => {
  const above = layers.slice(0, layers.indexOf(layer))
  return {
    files: [`src/${layer}/**/*.ts`],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            ...above.map((name) => ({
              group: [`../${name}/*`, `../../${name}/*`, `**/src/${name}/*`],
              message: `src/${layer} is below src/${name}: imports point down (main → http → cluster → actors → storage → domain).`
            })),
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

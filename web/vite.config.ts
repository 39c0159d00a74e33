import react from "@vitejs/plugin-react"
import { fileURLToPath } from "node:url"
import { defineConfig } from "vite"

// The storefront and admin console. `vite` (dev) proxies the API to a node on
// MINCOMMERCE_API (default http://127.0.0.1:3000); `vite build` writes hashed assets to
// web/dist, which the node serves at `/`.
const api = process.env.MINCOMMERCE_API ?? "http://127.0.0.1:3000"

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  plugins: [react()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    // The node's CSP allows scripts from 'self' only: no inline module preload helper.
    modulePreload: { polyfill: false }
  },
  server: {
    port: 5173,
    proxy: {
      "/api": { target: api, changeOrigin: true },
      "/metrics": { target: api, changeOrigin: true }
    }
  }
})

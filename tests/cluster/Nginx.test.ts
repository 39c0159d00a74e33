import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { drive, formatReport, freePort, History, makeCluster, waitFor, type Cluster } from "./Harness.ts"

/**
 * nginx with the repository's own site config (deploy/nginx/mincommerce.conf, byte for
 * byte), in front of the test's node processes: only the two small files it includes (where
 * to listen, which nodes) and the main file around it are the test's.
 */
const startNginx = async (cluster: Cluster) => {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), "mincommerce-nginx-"))
  mkdirSync(join(dir, "conf.d"))
  copyFileSync("deploy/nginx/mincommerce.conf", join(dir, "conf.d", "mincommerce.conf"))
  writeFileSync(join(dir, "conf.d", "mincommerce.listen"), `listen 127.0.0.1:${port};\n`)
  writeFileSync(
    join(dir, "conf.d", "mincommerce.upstreams"),
    cluster.nodes.map((n) => `server ${n.url.replace("http://", "")} max_fails=1 fail_timeout=2s;\n`).join("")
  )
  writeFileSync(
    join(dir, "nginx.conf"),
    [
      process.getuid?.() === 0 ? "user root;" : "",
      "worker_processes 1;",
      `pid ${join(dir, "nginx.pid")};`,
      `error_log ${join(dir, "error.log")} warn;`,
      "daemon off;",
      "events { worker_connections 1024; }",
      "http {",
      "  access_log off;",
      ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((t) => `  ${t}_temp_path ${join(dir, t)};`),
      "  include conf.d/mincommerce.conf;",
      "}"
    ].join("\n")
  )
  const nginx = existsSync("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx"
  const child = spawn(nginx, ["-p", dir, "-c", join(dir, "nginx.conf")], {
    stdio: ["ignore", "ignore", "pipe"]
  })
  let errors = ""
  child.stderr.on("data", (chunk: Buffer) => (errors += chunk.toString()))
  const exited = new Promise((resolve) => child.once("exit", resolve))
  const url = `http://127.0.0.1:${port}`
  await waitFor(`nginx to listen (${errors})`, async () => {
    try {
      return (await fetch(`${url}/api/health/live`)).ok || undefined
    } catch {
      return undefined
    }
  })
  return {
    url,
    stop: async () => {
      child.kill("SIGTERM")
      await exited
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

describe("nginx in front of three nodes", () => {
  it("purchases through the repository's nginx config sell exactly the stock; SSE passes through unbuffered", async () => {
    const stock = 400
    const cluster = await makeCluster({ nodes: 3, saleStocks: [stock], buyers: 700 })
    const nginx = await startNginx(cluster)
    try {
      const saleId = cluster.sales[0]!
      // A watcher through nginx: each event must reach it while the stream stays open.
      const abort = new AbortController()
      const events: Array<{ remaining: number; at: number }> = []
      const response = await fetch(`${nginx.url}/api/sales/${saleId}/events`, { signal: abort.signal })
      assert.strictEqual(response.status, 200)
      const reader = response.body!.getReader()
      const decoder = new TextDecoder()
      const reading = (async () => {
        let text = ""
        try {
          while (true) {
            const chunk = await reader.read()
            if (chunk.done) return
            text += decoder.decode(chunk.value, { stream: true })
            for (const match of text.matchAll(/data: (\{.*\})\n\n/g))
              events.push({
                remaining: (JSON.parse(match[1]!) as { remaining: number }).remaining,
                at: Date.now()
              })
            text = text.slice(text.lastIndexOf("\n\n") + 2)
          }
        } catch {
          // aborted
        }
      })()
      await waitFor("the first event through nginx", () => (events.length > 0 ? true : undefined), 5_000)

      const history = new History()
      const started = Date.now()
      await drive({ targets: () => [nginx.url], saleId, buyers: cluster.users, history, concurrency: 40 })
      const seconds = (Date.now() - started) / 1_000
      const soldOutAt = Date.now()
      const last = await waitFor(
        "the sold-out event through nginx",
        () => events.find((e) => e.remaining === 0),
        5_000
      )
      abort.abort()
      await reading
      const report = await cluster.audit(saleId, history)
      console.log(
        `nginx round robin over 3 nodes: ${cluster.users.length} buyers in ${seconds.toFixed(1)} s, ${history.ok} ok, ` +
          `${history.unknown} unknown; SSE through nginx: ${events.length} events, sold-out event ` +
          `${Math.max(0, last.at - soldOutAt)} ms after the last purchase answer; ` +
          formatReport(report)
      )
      assert.strictEqual(report.broken, 0)
      assert.strictEqual(report.committed, stock)
      assert.isAbove(events.length, 1)
    } finally {
      await nginx.stop()
      await cluster.close()
    }
  }, 240_000)
  it("microcaches the public reads: about one upstream request per URL per second, whatever the crowd", async () => {
    const cluster = await makeCluster({ nodes: 2, saleStocks: [50], buyers: 1 })
    const nginx = await startNginx(cluster)
    try {
      const saleId = cluster.sales[0]!
      const paths = ["/api/flash-sale/status", `/api/sales/${saleId}`]
      // Reads of those routes the nodes themselves answered, from their /metrics.
      const upstream = async () => {
        let total = 0
        for (const node of cluster.nodes) {
          const text = await (await fetch(`${node.url}/metrics`)).text()
          for (const line of text.split("\n")) {
            if (!line.startsWith("mincommerce_http_requests_total{") || !line.includes('method="GET"'))
              continue
            if (!/route="\/api\/(flash-sale\/status|sales\/:id)"/.test(line)) continue
            total += Number(line.slice(line.lastIndexOf(" ") + 1))
          }
        }
        return total
      }
      for (const path of paths) assert.strictEqual((await fetch(`${nginx.url}${path}`)).status, 200)
      const before = await upstream()
      const started = Date.now()
      const caches = new Map<string, number>()
      let answered = 0
      await Promise.all(
        Array.from({ length: 40 }, async (_, client) => {
          for (let i = 0; Date.now() - started < 2_500; i++) {
            const response = await fetch(`${nginx.url}${paths[(client + i) % paths.length]}`)
            await response.arrayBuffer()
            assert.strictEqual(response.status, 200)
            const cache = response.headers.get("x-cache-status") ?? "none"
            caches.set(cache, (caches.get(cache) ?? 0) + 1)
            answered++
          }
        })
      )
      const seconds = (Date.now() - started) / 1_000
      const reached = (await upstream()) - before
      console.log(
        `nginx microcache: ${answered} reads in ${seconds.toFixed(1)} s, ${reached} reached the nodes; ` +
          `cache statuses ${JSON.stringify(Object.fromEntries(caches))}`
      )
      // One refresh per URL per second (each a background update or a locked miss), a second's slack.
      assert.isAtMost(reached, paths.length * (Math.ceil(seconds) + 1))
      assert.isAbove(answered, reached * 20)
      // A buyer's own order and SSE are never cached.
      const events = await fetch(`${nginx.url}/api/sales/${saleId}/events`)
      assert.isNull(events.headers.get("x-cache-status"))
      await events.body?.cancel()
    } finally {
      await nginx.stop()
      await cluster.close()
    }
  }, 240_000)
})

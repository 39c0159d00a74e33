/**
 * The ceiling: a bare node:http server that reads the POST body, parses it as JSON and
 * answers a fixed JSON body. Prints its port, then serves until killed.
 */
import { createServer } from "node:http"

const answer = JSON.stringify({ orderId: "00000000-0000-4000-8000-000000000000", status: "purchased" })

const server = createServer((request, response) => {
  const chunks: Array<Buffer> = []
  request.on("data", (chunk: Buffer) => chunks.push(chunk))
  request.on("end", () => {
    try {
      JSON.parse(Buffer.concat(chunks).toString() || "{}")
      response.writeHead(201, { "content-type": "application/json" })
      response.end(answer)
    } catch {
      response.writeHead(400, { "content-type": "application/json" })
      response.end('{"error":{"code":"invalid_request","message":"bad json"}}')
    }
  })
})
server.listen(0, "127.0.0.1", () => {
  const address = server.address()
  console.log(
    `Listening on http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`
  )
})

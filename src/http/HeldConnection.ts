/**
 * A connection held open by one answer that never ends (a live event stream) needs nothing
 * more of node:http once its headers are out, yet node:http keeps the connection's request
 * parser, whose native buffers are most of what a held connection costs. Node lets the parser
 * go itself only for an upgraded connection; `releaseParser` takes the same steps for ours.
 */
import { createRequire } from "node:module"
import type { IncomingMessage } from "node:http"
import type { Socket } from "node:net"

// node:http's own helper, the one its upgrade path uses: takes the parser off the connection
// (and out of the server's connection list), then pools or closes it.
const { freeParser } = createRequire(import.meta.url)("_http_common") as {
  readonly freeParser: (parser: unknown, request: IncomingMessage | null, socket: Socket | null) => void
}

/** node:http's listeners that feed the connection's bytes to the parser they captured. */
const parserListener = (socket: Socket, event: "data" | "end", name: string) => {
  const found = socket.listeners(event).filter((listener) => listener.name === name)
  return found.length === 1 ? (found[0] as (...args: Array<unknown>) => void) : undefined
}

/**
 * Lets go of the parser of `socket`, whose answer to `request` has sent its headers and keeps
 * writing until the connection closes. Whatever the client sends afterwards is read and dropped,
 * and a client that ends its side is let go. Call it once the parser is done with the request
 * (on a later turn than the request's handler: the parser is still running there). Returns
 * false, having changed nothing, when the connection is not as node:http leaves it (already
 * closed, or a Node whose server is built differently): it then stays as it was, only costlier.
 */
export const releaseParser = (request: IncomingMessage, socket: Socket): boolean => {
  const parser = (socket as Socket & { readonly parser?: unknown }).parser
  if (parser === null || parser === undefined || socket.destroyed) return false
  const onData = parserListener(socket, "data", "bound socketOnData")
  const onEnd = parserListener(socket, "end", "bound socketOnEnd")
  if (onData === undefined || onEnd === undefined) return false
  // A freed parser serves the next connection: nothing of this one may reach it again.
  socket.off("data", onData)
  socket.off("end", onEnd)
  freeParser(parser, request, socket)
  socket.on("end", () => socket.destroy())
  socket.resume()
  return true
}

/** Whether node:http still holds a parser for `socket` (what `releaseParser` lets go). */
export const holdsParser = (socket: Socket): boolean =>
  (socket as Socket & { readonly parser?: unknown }).parser != null

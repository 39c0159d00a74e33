/**
 * Feeds an SSE response body to `feed` as text, chunk by chunk, until the stream ends or is
 * cancelled; returns the cancellation.
 */
export const readEvents = (body: ReadableStream<Uint8Array>, feed: (text: string) => void): (() => void) => {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  void (async () => {
    try {
      while (true) {
        const chunk = await reader.read()
        if (chunk.done) return
        feed(decoder.decode(chunk.value, { stream: true }))
      }
    } catch {
      // cancelled or aborted
    }
  })()
  return () => void reader.cancel().catch(() => {})
}

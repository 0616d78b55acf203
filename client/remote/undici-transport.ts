/**
 * The Node.js HTTP transport: undici's `request` over a keep-alive Agent. Loaded only in Node.js
 * (transport.ts imports it on demand), so that browser bundles never see undici; undici itself is
 * imported on demand too, which keeps this folder free of Node-only imports at the top level.
 */
import { BodySink, contentLength, transportError, type HttpTransport } from './transport.js'

/** `shared`: undici's global dispatcher, which close() and destroy() leave alone. */
type Dispatcher = import('undici').Dispatcher

export async function undiciTransport (shared: boolean): Promise<HttpTransport> {
  const { Agent, getGlobalDispatcher, request } = await import('undici')
  const dispatcher: Dispatcher = shared ? getGlobalDispatcher() : new Agent({ keepAliveTimeout: 10_000 })
  return {
    async send (req) {
      try {
        const res = await request(req.url, {
          method: req.method as import('undici').Dispatcher.HttpMethod,
          headers: req.headers,
          body: req.body as import('undici').Dispatcher.RequestOptions['body'],
          signal: req.signal,
          dispatcher,
        })
        const headers: Record<string, string> = {}
        for (const [name, value] of Object.entries(res.headers)) {
          if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value
        }
        const length = contentLength(headers)
        if (req.into === undefined || length === null || req.into.byteLength < length) {
          // A fresh buffer: undici's own collector (its chunks joined once, no stream events on the way),
          // then the count checked as the sink would.
          const sink = new BodySink(length, req.url)
          sink.add(new Uint8Array(await res.body.arrayBuffer()))
          return { status: res.statusCode, url: req.url, headers, bytes: sink.finish() }
        }
        // The caller's buffer: each chunk copied to its place as it comes ('data' events), and a body
        // longer than its Content-Length stopped at the first excess chunk.
        const sink = new BodySink(length, req.url, req.into)
        await new Promise<void>((resolve, reject) => {
          res.body.on('data', (chunk: Uint8Array) => {
            try {
              sink.add(chunk)
            } catch (err) {
              res.body.destroy()
              reject(err)
            }
          })
          res.body.once('end', resolve)
          res.body.once('error', reject)
        })
        return { status: res.statusCode, url: req.url, headers, bytes: sink.finish() }
      } catch (err) {
        throw transportError(req, err)
      }
    },
    async close () {
      if (!shared) await dispatcher.close()
    },
    async destroy () {
      if (!shared) await dispatcher.destroy()
    },
  }
}

/*
 * A KAR service for the integration tests, in the style of KAR's `greeter` example.
 * Run it under `kar run -service NAME ... -- node service.js [--h2c]`.
 * Python twins with the same routes: ../python/service_flask.py, ../python/service_asgi.py.
 *
 * Routes (paths as the service receives them):
 *   POST   /helloJson      {"name":N}        -> 200 application/json {"greetings":"Hello N"}
 *   POST   /helloText      N (raw text)      -> 200 text/plain "Hello N"
 *   POST   /incr           JSON number n     -> 200 application/json n+1
 *   GET    /whoami                           -> 200 text/plain "<GREETER_TAG or 'js'>"
 *   GET    /protocol                         -> 200 text/plain HTTP version of the request: "1.1" or "2"
 *   GET    /item/:id                         -> 200 application/json {"id":id,"method":"GET"}
 *   HEAD   /item/:id                         -> 200, no body
 *   PUT    /item/:id      any body          -> 201 application/json {"id":id,"method":"PUT","body":text}
 *   DELETE /item/:id                         -> 204
 *   POST   /echo          any body          -> 200, the body verbatim, the request's Content-Type (none if none)
 *   POST   /raw           any body          -> 200 "raw:<body>" with NO Content-Type header
 *   POST   /empty                            -> 200, empty body, no Content-Type
 *   GET    /status/:code                     -> <code> text/plain "status <code>"
 *   GET    /query                            -> 200 application/json {"query":"<raw query string>"}
 *   POST   /record/:key   any body          -> 200 text/plain "recorded"; remembers body under key
 *   GET    /recorded/:key[?timeout_ms=T]     -> 200 text/plain body recorded under key, waiting up to
 *                                               T ms (default 20000) for it; 404 "not recorded" after
 *   GET    /recorded                         -> 200 application/json [keys recorded so far]
 */

// spdy (behind sys.h2c) uses APIs Node 20 deprecates; the warnings would only be noise.
process.noDeprecation = true

const express = require('express')
const { sys } = require('kar-sdk')

const tag = process.env.GREETER_TAG || 'js'
const app = express()

// Every body as raw bytes, whatever its Content-Type: the routes decide how to read it.
app.use(express.raw({ type: () => true, limit: '64mb' }))
const bodyOf = req => (Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0))
const textOf = req => bodyOf(req).toString('utf8')

app.post('/helloJson', (req, res) => {
  const { name } = JSON.parse(textOf(req))
  res.json({ greetings: `Hello ${name}` })
})

app.post('/helloText', (req, res) => {
  res.type('text/plain').send(`Hello ${textOf(req)}`)
})

app.post('/incr', (req, res) => {
  res.json(JSON.parse(textOf(req)) + 1)
})

app.get('/whoami', (req, res) => {
  res.type('text/plain').send(tag)
})

app.get('/protocol', (req, res) => {
  // spdy reports HTTP/2 requests as httpVersion 1.1 with isSpdy set.
  res.type('text/plain').send(req.isSpdy ? '2' : req.httpVersion)
})

app.head('/item/:id', (req, res) => {
  res.status(200).end()
})

app.get('/item/:id', (req, res) => {
  res.json({ id: req.params.id, method: 'GET' })
})

app.put('/item/:id', (req, res) => {
  res.status(201).json({ id: req.params.id, method: 'PUT', body: textOf(req) })
})

app.delete('/item/:id', (req, res) => {
  res.status(204).end()
})

app.post('/echo', (req, res) => {
  const type = req.get('Content-Type')
  if (type) res.set('Content-Type', type)
  res.end(bodyOf(req))
})

app.post('/raw', (req, res) => {
  // res.end writes no Content-Type (res.send would add one).
  res.end(`raw:${textOf(req)}`)
})

app.post('/empty', (req, res) => {
  res.status(200).end()
})

app.get('/status/:code', (req, res) => {
  const code = Number(req.params.code)
  res.status(code).type('text/plain').send(`status ${code}`)
})

app.get('/query', (req, res) => {
  const i = req.originalUrl.indexOf('?')
  res.json({ query: i < 0 ? '' : req.originalUrl.slice(i + 1) })
})

// Tells leave no reply: they record what they got, and callers wait for it here.
const recorded = new Map()
const waiters = new Map()

app.post('/record/:key', (req, res) => {
  const key = req.params.key
  recorded.set(key, textOf(req))
  for (const wake of waiters.get(key) || []) wake()
  waiters.delete(key)
  res.type('text/plain').send('recorded')
})

app.get('/recorded', (req, res) => {
  res.json([...recorded.keys()])
})

app.get('/recorded/:key', (req, res) => {
  const key = req.params.key
  const reply = () => {
    if (recorded.has(key)) res.type('text/plain').send(recorded.get(key))
    else res.status(404).type('text/plain').send('not recorded')
  }
  if (recorded.has(key)) return reply()
  const timer = setTimeout(() => {
    waiters.set(key, (waiters.get(key) || []).filter(w => w !== wake))
    reply()
  }, Number(req.query.timeout_ms || 20000))
  const wake = () => { clearTimeout(timer); reply() }
  waiters.set(key, [...(waiters.get(key) || []), wake])
})

const port = Number(process.env.KAR_APP_PORT)
const host = process.env.KAR_APP_HOST || '127.0.0.1'
const h2c = process.argv.includes('--h2c')
// sys.h2c serves HTTP/1.1 and h2c prior knowledge on one port (spdy).
const server = h2c ? sys.h2c(app) : app
server.listen(port, host, () => {
  console.log(`service ${tag} listening on ${host}:${port} (${h2c ? 'HTTP/1.1 + h2c' : 'HTTP/1.1'})`)
})

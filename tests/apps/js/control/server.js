/*
 * The component of tests/tests/control.rs: plain node:http, no SDK. Run it under
 * `kar run -service ctl -actors Bench -- node control/server.js`.
 *
 *   POST /hang                              (service) never answers
 *   POST /ok                                (service) answers "ok"
 *   POST /kar/impl/v1/actor/Bench/I/hang    never answers
 *   POST /kar/impl/v1/actor/Bench/I/echo    [x] answers {"value": x}
 *   HEAD, GET, DELETE of the actor paths    answer 200 (type check, activation,
 *                                           deactivation)
 *
 * Prints "control server listening on PORT" once it listens, then one line per
 * method received: "control: hang <path>", "control: echo <x>".
 */

const http = require('http')

const port = Number(process.env.KAR_APP_PORT)

const server = http.createServer((req, res) => {
  let body = ''
  req.on('data', chunk => { body += chunk })
  req.on('end', () => {
    const path = req.url.split('?')[0]
    if (req.method === 'POST' && path.endsWith('/hang')) {
      console.log(`control: hang ${path}`)
      return // never answers
    }
    if (req.method === 'POST' && path.startsWith('/kar/impl/v1/actor/') && path.endsWith('/echo')) {
      const [x] = JSON.parse(body || '[null]')
      console.log(`control: echo ${x}`)
      res.writeHead(200, { 'Content-Type': 'application/kar+json' })
      return res.end(JSON.stringify({ value: x }))
    }
    if (req.method === 'POST' && path === '/ok') {
      res.writeHead(200, { 'Content-Type': 'text/plain' })
      return res.end('ok')
    }
    if (path.startsWith('/kar/impl/v1/actor/')) {
      res.writeHead(200)
      return res.end()
    }
    res.writeHead(404)
    res.end()
  })
})

server.listen(port, '127.0.0.1', () => {
  console.log(`control server listening on ${port}`)
})

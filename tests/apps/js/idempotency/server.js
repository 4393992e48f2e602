/*
 * The component of tests/tests/idempotency.rs: plain node:http, no SDK.
 * Run it under `kar run -service S -actors Counter -- node idempotency/server.js`.
 *
 *   POST /work BODY                           a handler run (service)
 *   POST /kar/impl/v1/actor/Counter/ID/work   a handler run (actor method)
 *   POST /release                             lets every held run reply
 *
 * Each run prints "idem: ran <service|actor ID> <nonce>" as it starts, where the nonce
 * is fresh for every run, and replies with that nonce (an actor method wrapped as
 * {"value": ...}): equal replies come from one run. A run whose body contains "hold"
 * waits for the next /release before replying. Prints "idempotency server listening
 * on PORT" once it listens.
 */

const http = require('http')
const crypto = require('crypto')

const port = Number(process.env.KAR_APP_PORT)
let held = []

function reply (res, status, type, body) {
  res.writeHead(status, { 'Content-Type': type })
  res.end(body)
}

async function run (what, body) {
  const nonce = crypto.randomUUID()
  console.log(`idem: ran ${what} ${nonce}`)
  if (body.includes('hold')) {
    await new Promise(resolve => held.push(resolve))
  }
  return { nonce, what, body }
}

const server = http.createServer((req, res) => {
  const chunks = []
  req.on('data', chunk => chunks.push(chunk))
  req.on('end', async () => {
    const body = Buffer.concat(chunks).toString()
    const path = req.url.split('?')[0]
    const actor = path.match(/^\/kar\/impl\/v1\/actor\/Counter\/([^/]+)(\/work)?$/)
    if (req.method === 'HEAD' && path === '/kar/impl/v1/actor/Counter') {
      return reply(res, 200, 'text/plain', '')
    }
    if (actor && !actor[2]) {
      // Activation (GET) and deactivation (DELETE).
      return reply(res, 200, 'text/plain', 'OK')
    }
    if (req.method === 'POST' && actor) {
      const result = await run(`actor ${actor[1]}`, body)
      return reply(res, 200, 'application/kar+json', JSON.stringify({ value: result }))
    }
    if (req.method === 'POST' && path === '/work') {
      return reply(res, 200, 'application/json', JSON.stringify(await run('service', body)))
    }
    if (req.method === 'POST' && path === '/release') {
      const n = held.length
      held.forEach(resolve => resolve())
      held = []
      return reply(res, 200, 'text/plain', `released ${n}`)
    }
    reply(res, 404, 'text/plain', `no route ${req.method} ${path}`)
  })
})

server.listen(port, '127.0.0.1', () => {
  console.log(`idempotency server listening on ${port}`)
})

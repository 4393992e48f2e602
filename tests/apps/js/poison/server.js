/*
 * The poison service of tests/tests/poison.rs: plain node:http, no SDK.
 * Run it under `kar run -service S -- node poison/server.js`.
 *
 *   POST /good N   answers "good N"
 *   POST /crash    the poison: the process exits with code 3 at once, unless
 *                  POISON_FIXED=1 (the "fixed" release), which answers "survived"
 *
 * Prints "poison server listening on PORT (fixed BOOL)" once it listens, and one line
 * per /crash received ("poison: crashing ..." or "poison: /crash handled ...").
 */

const http = require('http')

const fixed = process.env.POISON_FIXED === '1'
const port = Number(process.env.KAR_APP_PORT)

function json (res, value) {
  res.writeHead(200, { 'Content-Type': 'application/json' })
  res.end(JSON.stringify(value))
}

const server = http.createServer((req, res) => {
  let body = ''
  req.on('data', chunk => { body += chunk })
  req.on('end', () => {
    if (req.url === '/crash') {
      if (!fixed) {
        // Pipes are synchronous on Linux: the line is out before the exit.
        console.log(`poison: crashing on /crash (pid ${process.pid})`)
        process.exit(3)
      }
      console.log(`poison: /crash handled by a fixed component (pid ${process.pid})`)
      return json(res, 'survived')
    }
    if (req.url === '/good') {
      return json(res, `good ${body}`)
    }
    res.writeHead(404)
    res.end()
  })
})

server.listen(port, '127.0.0.1', () => {
  console.log(`poison server listening on ${port} (fixed ${fixed})`)
})

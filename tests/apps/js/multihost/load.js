/*
 * A steady load of service calls, for the live-host figure of tests/tests/multihost.rs.
 * Run it under `kar run -app APP -- node multihost/load.js DURATION_MS CONCURRENCY`:
 * CONCURRENCY loops call `greeter/helloText` (tests/apps/js/service.js) through this
 * component's sidecar for DURATION_MS, each checking its reply. Then writes to $LOAD_OUT
 * (too big for stdout: Node drops what the pipe did not take when the process exits)
 *   {"start":<CLOCK_MONOTONIC ns>,"done":[[<ns since start>, <latency ms>], ...],
 *    "failed":["<reason>", ...]}
 * It prints "load started" once the first call is answered, and "load done".
 */
const fs = require('fs')
const [durationMs, concurrency] = process.argv.slice(2).map(Number)
const url = `http://127.0.0.1:${process.env.KAR_RUNTIME_PORT}/kar/v1/service/greeter/call/helloText`

async function call (n) {
  const response = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: `n${n}` })
  const text = await response.text()
  if (response.status !== 200 || text !== `Hello n${n}`) throw new Error(`${response.status} ${text}`)
}

async function main () {
  // The first call also waits until the service has joined.
  await call(0)
  console.log('load started')
  const start = process.hrtime.bigint()
  const done = []
  const failed = []
  let next = 1
  const loop = async () => {
    while (Number(process.hrtime.bigint() - start) / 1e6 < durationMs) {
      const sent = process.hrtime.bigint()
      try {
        await call(next++)
        const now = process.hrtime.bigint()
        done.push([Number(now - start), Number(now - sent) / 1e6])
      } catch (err) {
        failed.push(String(err && err.message))
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, loop))
  fs.writeFileSync(process.env.LOAD_OUT, JSON.stringify({ start: String(start), done, failed }))
  console.log('load done')
  process.exit(0)
}

main().catch(err => {
  console.log(`FAIL ${err && err.stack}`)
  process.exit(1)
})

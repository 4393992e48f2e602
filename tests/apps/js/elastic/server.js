/*
 * The elastic-mesh server (tests/tests/elastic.rs), written with the published kar-sdk
 * (1.3.10). Run it under `kar run -actors Counter -- node elastic/server.js` with
 * ELASTIC_LOG_DIR set. Every replica appends to $ELASTIC_LOG_DIR/lifecycle.log, each
 * line in one O_APPEND write (lines of concurrent processes never interleave, and the
 * file order is the order in which the writes happened on this machine):
 *
 *   A <id> <pid>    Counter <id> was activated in process <pid>
 *   D <id> <pid>    ... deactivated
 *   E <id> <pid>    a request of Counter <id> entered its method
 *   X <id> <pid>    ... and left it
 *
 * Actor type Counter:
 *   incr()   reads its count from the actor state, writes count + 1, answers it
 *   get()    answers its count
 *   relay(other, ms)   sleeps ms, then calls Counter(other).incr() in its session;
 *                      answers that reply
 *
 * Prints `elastic server listening ... pid N` once it serves.
 */

// spdy (behind sys.h2c) uses APIs Node 20 deprecates; the warnings would only be noise.
process.noDeprecation = true

const fs = require('fs')
const path = require('path')
const express = require('express')
const { actor, sys } = require('kar-sdk')

const logDir = process.env.ELASTIC_LOG_DIR
if (!logDir) {
  console.error('ELASTIC_LOG_DIR must be set')
  process.exit(2)
}
const logFd = fs.openSync(path.join(logDir, 'lifecycle.log'), 'a')

function record (ev, id) {
  fs.writeSync(logFd, `${ev} ${id} ${process.pid}\n`)
}

class Counter {
  activate () { record('A', this.kar.id) }
  deactivate () { record('D', this.kar.id) }

  async incr () {
    record('E', this.kar.id)
    const count = (await actor.state.get(this, 'count')) || 0
    await actor.state.set(this, 'count', count + 1)
    record('X', this.kar.id)
    return count + 1
  }

  async relay (other, ms) {
    record('E', this.kar.id)
    await new Promise(resolve => setTimeout(resolve, ms))
    const count = await actor.call(this, actor.proxy('Counter', other), 'incr')
    record('X', this.kar.id)
    return count
  }

  async get () {
    return (await actor.state.get(this, 'count')) || 0
  }
}

const app = express()
app.use(sys.actorRuntime({ Counter }))

const port = Number(process.env.KAR_APP_PORT)
const host = process.env.KAR_APP_HOST || '127.0.0.1'
sys.h2c(app).listen(port, host, () => {
  console.log(`elastic server listening on ${host}:${port} pid ${process.pid}`)
})

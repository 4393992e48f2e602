/*
 * The fault-injection server (tests/tests/faults.rs), written with the published kar-sdk
 * (1.3.10). Run it under `kar run -h2c [-service S] [-actors T,...] -- node faults/server.js`
 * with FAULTS_LOG_DIR set: every handler appends its own records to
 * $FAULTS_LOG_DIR/records.jsonl, one JSON object per line, written with O_APPEND in one
 * write (so the records of concurrent processes never interleave within a line):
 *
 *   {ev, what, key, pid, attempt, mono, wall, ...}
 *     ev       enter | exit | effect | tick | event
 *     what     the handler (slow, f, g, a, b, c, tick, event)
 *     attempt  1 + the number of `enter` records of (what, key) already in the file
 *     mono     CLOCK_MONOTONIC in ns (a decimal string; shared by every process of the
 *              machine, so the test compares it with its own kill times)
 *     wall     Date.now()
 *
 * The slow handlers sleep `ms` on their first entry into (what, key) and `retryMs`
 * (default: ms) on later ones, so that a test can make the interrupted attempt long and
 * its retry short.
 *
 * Service route (any service name):
 *   POST /slow {key, ms, retryMs}   enter, sleeps, writes its side effect, exit;
 *                                   answers {key, pid, attempt}
 * Actor types:
 *   F.f(key, gMs, retryMs)    calls G(key).g(key, gMs, retryMs) in its session;
 *                             answers {f, g}
 *   G.g(key, ms, retryMs)     enter, sleeps, effect, exit; answers {key, pid, attempt}
 *   A.a(key, ms, retryMs) -> tail call B(key).b -> tail call C(key).c (each logs
 *                             enter/exit)
 *   C.c(key, ms, retryMs)     enter, sleeps, effect, exit; answers {key, pid, attempt}
 *   Ticker.tick(key)          a reminder's target: records `tick`
 *   Sub.subscribe(topic)      subscribes the instance (method onEvent) to topic
 *   Sub.onEvent(event)        records `event` with seq = event.data.seq
 *
 * Prints `faults server listening ... pid N` once it serves.
 */

// spdy (behind sys.h2c) uses APIs Node 20 deprecates; the warnings would only be noise.
process.noDeprecation = true

const fs = require('fs')
const path = require('path')
const express = require('express')
const { actor, events, sys } = require('kar-sdk')

const logDir = process.env.FAULTS_LOG_DIR
if (!logDir) {
  console.error('FAULTS_LOG_DIR must be set')
  process.exit(2)
}
const logFile = path.join(logDir, 'records.jsonl')

function record (ev, what, key, extra = {}) {
  const line = JSON.stringify({
    ev,
    what,
    key,
    pid: process.pid,
    mono: process.hrtime.bigint().toString(),
    wall: Date.now(),
    ...extra
  })
  fs.appendFileSync(logFile, `${line}\n`, { flag: 'a' })
}

// The attempt marker of a new entry into (what, key): the app's own count of earlier
// entries, read from the shared record file.
function nextAttempt (what, key) {
  let text = ''
  try {
    text = fs.readFileSync(logFile, 'utf8')
  } catch (err) {
    if (err.code !== 'ENOENT') throw err
  }
  let entries = 0
  for (const line of text.split('\n')) {
    if (!line) continue
    const r = JSON.parse(line)
    if (r.ev === 'enter' && r.what === what && r.key === key) entries++
  }
  return entries + 1
}

function enter (what, key) {
  const attempt = nextAttempt(what, key)
  record('enter', what, key, { attempt })
  return attempt
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// The body of every slow handler: enter, sleep, side effect, exit.
async function slowWork (what, key, ms, retryMs = ms) {
  const attempt = enter(what, key)
  await sleep(attempt === 1 ? ms : retryMs)
  record('effect', what, key, { attempt })
  record('exit', what, key, { attempt })
  return { key, pid: process.pid, attempt }
}

class F {
  async f (key, gMs, retryMs) {
    const attempt = enter('f', key)
    const g = await actor.call(this, actor.proxy('G', key), 'g', key, gMs, retryMs)
    record('exit', 'f', key, { attempt })
    return { f: { pid: process.pid, attempt }, g }
  }
}

class G {
  g (key, ms, retryMs) { return slowWork('g', key, ms, retryMs) }
}

class A {
  a (key, ms, retryMs) {
    const attempt = enter('a', key)
    record('exit', 'a', key, { attempt })
    return actor.tailCall(actor.proxy('B', key), 'b', key, ms, retryMs)
  }
}

class B {
  b (key, ms, retryMs) {
    const attempt = enter('b', key)
    record('exit', 'b', key, { attempt })
    return actor.tailCall(actor.proxy('C', key), 'c', key, ms, retryMs)
  }
}

class C {
  c (key, ms, retryMs) { return slowWork('c', key, ms, retryMs) }
}

class Ticker {
  tick (key) { record('tick', 'tick', this.kar.id, { arg: key }) }
}

class Sub {
  subscribe (topic) { return events.subscribe(this, 'onEvent', topic) }
  onEvent (event) { record('event', 'event', this.kar.id, { seq: event.data.seq }) }
}

const app = express()
app.post('/slow', express.json({ type: () => true }), (req, res, next) => {
  const { key, ms, retryMs } = req.body
  slowWork('slow', key, ms, retryMs).then(reply => res.json(reply), next)
})
app.use(sys.actorRuntime({ F, G, A, B, C, Ticker, Sub }))

const port = Number(process.env.KAR_APP_PORT)
const host = process.env.KAR_APP_HOST || '127.0.0.1'
sys.h2c(app).listen(port, host, () => {
  console.log(`faults server listening on ${host}:${port} pid ${process.pid}`)
})

/*
 * A service with one long handler, for the partition tests (tests/tests/multihost.rs).
 * Run it under `kar run -service slow -- node multihost/slow.js` with $SLOW_LOG (the
 * event log shared by every host) and $SLOW_MS (how long a handler runs).
 *
 *   POST /work/:id -> 200 text/plain "done <id> on <HOST_TAG>" after $SLOW_MS ms
 *
 * Each handler appends JSON lines (O_APPEND, one write each) to $SLOW_LOG:
 *   {"t":<CLOCK_MONOTONIC ns>,"pid":P,"host":HOST_TAG,"id":ID,"ev":"enter"|"exit"}
 */
const fs = require('fs')
const express = require('express')

const logFile = process.env.SLOW_LOG
const slowMs = Number(process.env.SLOW_MS || '60000')
const host = process.env.HOST_TAG || '?'

function log (fields) {
  const rest = JSON.stringify({ pid: process.pid, host, ...fields })
  fs.appendFileSync(logFile, `{"t":${process.hrtime.bigint()},${rest.slice(1)}\n`)
}

const app = express()
app.post('/work/:id', (req, res) => {
  log({ id: req.params.id, ev: 'enter' })
  setTimeout(() => {
    log({ id: req.params.id, ev: 'exit' })
    res.type('text/plain').send(`done ${req.params.id} on ${host}`)
  }, slowMs)
})
app.listen(Number(process.env.KAR_APP_PORT), '127.0.0.1', () => console.log(`slow service on ${host}`))

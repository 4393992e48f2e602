/*
 * The bank of the fault-injection tests (tests/tests/bank_faults.rs), written with the
 * published kar-sdk (1.3.10). Run it under
 * `kar run -h2c -actors Account ... -- node bank/server.js` with $BANK_LOG set.
 *
 * Accounts are actors; a transfer is one request made of a tail-call chain:
 * `debit(transfer, to, amount)` on the source account continues with
 * `credit(transfer, from, amount)` on the destination, whose value is the reply.
 * Balances start at INITIAL (an account with no state has never been touched).
 *
 * Each step is idempotent the KAR way (spec 9, item 15): the new balance and the record
 * of the transfer (`d_<id>` / `c_<id>` = {amount, balance}) are written in one
 * multi-element state update, and a step finding its record already there applies
 * nothing. A retried step (its first attempt was cut by a kill -9) thus applies once.
 *
 * Every step appends JSON lines (O_APPEND, one write each) to $BANK_LOG:
 *   {"t":<CLOCK_MONOTONIC ns>,"pid":P,"actor":ID,"transfer":X,"step":"debit"|"credit",
 *    "ev":"enter"|"applied"|"duplicate"|"exit"|"error"}
 * `enter` is the first thing a step does and `exit` (or `error`) the last; between
 * them short random pauses widen the window in which a kill lands mid-step.
 */

// spdy (behind sys.h2c) uses APIs Node 20 deprecates; the warnings would only be noise.
process.noDeprecation = true

const fs = require('fs')
const express = require('express')
const { actor, sys } = require('kar-sdk')

const INITIAL = 1000
const logFile = process.env.BANK_LOG
if (!logFile) {
  console.error('BANK_LOG must name the event log file')
  process.exit(2)
}

// CLOCK_MONOTONIC in ns (the test compares it with its own kill times), written as
// raw digits: it may not fit in a double.
function log (fields) {
  const rest = JSON.stringify({ pid: process.pid, ...fields })
  fs.appendFileSync(logFile, `{"t":${process.hrtime.bigint()},${rest.slice(1)}\n`)
}

const pause = () => new Promise(resolve => setTimeout(resolve, Math.floor(Math.random() * 15)))

class Account {
  // Source of a transfer: takes the amount, then hands the request over to the
  // destination (a tail call: completing this step and starting the next is atomic).
  debit (transfer, to, amount) {
    return this.step('debit', 'd', transfer, -amount, () =>
      actor.tailCall(actor.proxy('Account', to), 'credit', transfer, this.kar.id, amount))
  }

  // Destination of a transfer: the last step, whose value the client gets.
  credit (transfer, from, amount) {
    return this.step('credit', 'c', transfer, amount, () => ({ transfer, from, to: this.kar.id, amount }))
  }

  async step (step, prefix, transfer, delta, next) {
    const event = { actor: this.kar.id, transfer, step }
    log({ ...event, ev: 'enter' })
    try {
      const key = `${prefix}_${transfer}`
      await pause()
      if (await actor.state.get(this, key) !== undefined) {
        log({ ...event, ev: 'duplicate' })
      } else {
        const old = await actor.state.get(this, 'balance')
        const balance = (old === undefined ? INITIAL : old) + delta
        await actor.state.setMultiple(this, { balance, [key]: { amount: Math.abs(delta), balance } })
        log({ ...event, ev: 'applied' })
      }
      await pause()
      const value = next()
      log({ ...event, ev: 'exit' })
      return value
    } catch (err) {
      log({ ...event, ev: 'error', error: String(err && err.message) })
      throw err
    }
  }
}

const app = express()
app.use(sys.actorRuntime({ Account }))

const port = Number(process.env.KAR_APP_PORT)
const host = process.env.KAR_APP_HOST || '127.0.0.1'
sys.h2c(app).listen(port, host, () => {
  console.log(`bank server ${process.pid} listening on ${host}:${port}`)
})

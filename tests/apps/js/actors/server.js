/*
 * A KAR actor server for the integration tests, written with the published kar-sdk
 * (1.3.10): `sys.actorRuntime` routes served by `sys.h2c` (spdy: HTTP/1.1 and h2c).
 * Run it under `kar run -h2c -actors JsCounter,JsOther,JsLog ... -- node actors/server.js`.
 *
 * Actor types (method names are the same as in ../../python/actors/server.py so the
 * clients can exercise both languages with one list of checks):
 *
 *   JsCounter  general purpose: values, state, errors, tail calls, re-entrancy, removal,
 *              deactivation, the self-call deadlock
 *   JsOther    target of tail calls to another actor type
 *   JsLog      concurrency probe: appends enter/exit lines with CLOCK_MONOTONIC
 *              timestamps to $ACTOR_LOG_DIR/<pid>.log (see tests/tests/actors.rs)
 *
 * Prints `activated T/I (activation N)` and `deactivated T/I` lines: tests wait for them.
 */

// spdy (behind sys.h2c) uses APIs Node 20 deprecates; the warnings would only be noise.
process.noDeprecation = true

const fs = require('fs')
const path = require('path')
const express = require('express')
const { actor, sys, tailCall } = require('kar-sdk')

const say = line => console.log(line)

// Every actor type counts its activations in its own state, so a test can tell a
// re-activation (state kept, in-memory fields gone) from a still-active instance.
async function countActivation (self) {
  self.activations = ((await actor.state.get(self, 'activations')) || 0) + 1
  await actor.state.set(self, 'activations', self.activations)
  say(`activated ${self.kar.type}/${self.kar.id} (activation ${self.activations})`)
}

class JsCounter {
  async activate () {
    if (this.kar.id.startsWith('throw-on-activate')) throw new Error(`activate of ${this.kar.id} failed`)
    await countActivation(this)
  }
  deactivate () { say(`deactivated ${this.kar.type}/${this.kar.id}`) }

  incr (v) { return v + 1 }
  add (a, b) { return a + b }
  echo (x) { return x }
  nothing () { return undefined }
  whoami () { return `${this.kar.type}/${this.kar.id}` }
  activationCount () { return this.activations }

  // An in-memory field: gone after a deactivation, unlike state.
  setMemo (x) { this.memo = x; return 'ok' }
  getMemo () { return this.memo === undefined ? 'none' : this.memo }

  async setField (key, value) { await actor.state.set(this, key, value); return 'ok' }
  async getField (key) {
    const value = await actor.state.get(this, key)
    return value === undefined ? 'absent' : value
  }

  // Target of tells: records its argument in state (a tell has no reply to look at).
  async record (key, value) {
    await actor.state.set(this, key, value)
    say(`recorded ${this.kar.type}/${this.kar.id} ${key}`)
  }

  fail (message) { throw new Error(message) }

  // chain(v, n): n self tail calls, each adding one, answer v + n.
  chain (v, n) { return n === 0 ? v : actor.tailCall(this, 'chain', v + 1, n - 1) }
  // The same chain in a tell: the last step records the result in state.
  chainRecord (key, v, n) {
    return n === 0 ? actor.tailCall(this, 'record', key, v) : actor.tailCall(this, 'chainRecord', key, v + 1, n - 1)
  }

  // A tail call to the same instance that releases its lock (the continuation queues).
  incrReleasing (v) { return actor.tailCallReleaasingLock(this, 'incr', v) }
  tailToActor (type, id, v) { return actor.tailCall(actor.proxy(type, id), 'incr', v) }
  tailToService (service, v) { return tailCall(service, 'incr', JSON.stringify(v)) }

  // Re-entrancy A -> B -> A in one flow: B calls back into this (still busy) instance.
  async ping (otherType, otherId, tag) {
    return actor.call(this, actor.proxy(otherType, otherId), 'pong', this.kar.type, this.kar.id, tag)
  }

  async pong (callerType, callerId, tag) {
    const back = await actor.call(this, actor.proxy(callerType, callerId), 'reenter', `${tag}>${this.kar.type}`)
    return back
  }

  reenter (tag) { return `${tag}>${this.kar.type}/${this.kar.id}` }

  // A call to itself in a new session waits behind its own caller: it must fail with
  // the busy timeout instead of hanging.
  async selfRootCall () {
    const started = Date.now()
    try {
      const value = await actor.rootCall(this, 'incr', 1)
      return { ok: true, value, ms: Date.now() - started }
    } catch (err) {
      return { ok: false, message: err.message, ms: Date.now() - started }
    }
  }
}

class JsOther {
  async activate () { await countActivation(this) }
  incr (v) { return { by: `${this.kar.type}/${this.kar.id}`, v: v + 1 } }
}

// The concurrency probe. Each invocation logs `enter` and `exit` lines with a
// CLOCK_MONOTONIC timestamp (shared by every process of the machine) and does a
// read-modify-write of the actor's state across two awaits: overlapping invocations
// of one instance would show as overlapping intervals and as lost updates.
const logFile = process.env.ACTOR_LOG_DIR && path.join(process.env.ACTOR_LOG_DIR, `${process.pid}.log`)
const log = line => fs.appendFileSync(logFile, `${line}\n`)
const now = () => process.hrtime.bigint().toString()

class JsLog {
  async activate () {
    log(`activate ${this.kar.id} ${now()} ${process.pid}`)
  }

  deactivate () {
    log(`deactivate ${this.kar.id} ${now()} ${process.pid}`)
  }

  async work (tag) {
    log(`enter ${this.kar.id} ${now()} ${process.pid} ${tag}`)
    const count = ((await actor.state.get(this, 'count')) || 0) + 1
    await new Promise(resolve => setImmediate(resolve))
    await actor.state.set(this, 'count', count)
    log(`exit ${this.kar.id} ${now()} ${process.pid} ${tag} ${count}`)
    return count
  }
}

const app = express()
app.use(sys.actorRuntime({ JsCounter, JsOther, JsLog }))

const port = Number(process.env.KAR_APP_PORT)
const host = process.env.KAR_APP_HOST || '127.0.0.1'
sys.h2c(app).listen(port, host, () => {
  say(`actor server listening on ${host}:${port} (HTTP/1.1 + h2c)`)
})

/*
 * A KAR actor server for the reminder tests, written with the published kar-sdk
 * (1.3.10). Run it under `kar run -h2c -actors JsTimer ... -- node reminders/server.js`.
 *
 *   JsTimer.tick(label, n)  prints `tick <id> <label> <n> #<count>` (count per instance
 *                           and label, in memory): tests wait for these lines
 *   JsTimer.once(label)     prints `once <id> <label>`
 *   JsTimer.beat(label)     prints `beat <id> <label> #<count> at=<ms> next=<ms>`: the
 *                           firing's time and the target time the reminder `label`
 *                           advanced to (read with actor.reminders.get), Unix ms
 *   JsTimer.hold(label)     prints `hold <id> <label> open=<bool>` (whether the gate, the
 *                           file named by $REMINDER_GATE, exists), then returns only once
 *                           it exists: a handler the test holds
 */

process.noDeprecation = true

const fs = require('fs')
const express = require('express')
const { actor, sys } = require('kar-sdk')

const counts = {}

class JsTimer {
  tick (label, n) {
    const key = `${this.kar.id}/${label}`
    counts[key] = (counts[key] || 0) + 1
    console.log(`tick ${this.kar.id} ${label} ${n} #${counts[key]}`)
  }

  once (label) { console.log(`once ${this.kar.id} ${label}`) }

  async beat (label) {
    const at = Date.now()
    const key = `${this.kar.id}/beat/${label}`
    counts[key] = (counts[key] || 0) + 1
    const reminder = await actor.reminders.get(this, label)
    const next = reminder ? Date.parse(reminder.targetTime) : 'none'
    console.log(`beat ${this.kar.id} ${label} #${counts[key]} at=${at} next=${next}`)
  }

  async hold (label) {
    const gate = process.env.REMINDER_GATE
    console.log(`hold ${this.kar.id} ${label} open=${fs.existsSync(gate)}`)
    while (!fs.existsSync(gate)) await new Promise(resolve => setTimeout(resolve, 20))
  }
}

const app = express()
app.use(sys.actorRuntime({ JsTimer }))
const port = Number(process.env.KAR_APP_PORT)
const host = process.env.KAR_APP_HOST || '127.0.0.1'
sys.h2c(app).listen(port, host, () => console.log(`reminder server listening on ${host}:${port} pid ${process.pid}`))

/*
 * A KAR actor server for the reminder tests, written with the published kar-sdk
 * (1.3.10). Run it under `kar run -h2c -actors JsTimer ... -- node reminders/server.js`.
 *
 *   JsTimer.tick(label, n)  prints `tick <id> <label> <n> #<count>` (count per instance
 *                           and label, in memory): tests wait for these lines
 *   JsTimer.once(label)     prints `once <id> <label>`
 */

process.noDeprecation = true

const express = require('express')
const { sys } = require('kar-sdk')

const counts = {}

class JsTimer {
  tick (label, n) {
    const key = `${this.kar.id}/${label}`
    counts[key] = (counts[key] || 0) + 1
    console.log(`tick ${this.kar.id} ${label} ${n} #${counts[key]}`)
  }

  once (label) { console.log(`once ${this.kar.id} ${label}`) }
}

const app = express()
app.use(sys.actorRuntime({ JsTimer }))
const port = Number(process.env.KAR_APP_PORT)
const host = process.env.KAR_APP_HOST || '127.0.0.1'
sys.h2c(app).listen(port, host, () => console.log(`reminder server listening on ${host}:${port}`))

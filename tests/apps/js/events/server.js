/*
 * A KAR actor server for the event tests, written with the published kar-sdk
 * (1.3.10). Run it under `kar run -h2c -actors JsSub ... -- node events/server.js`.
 *
 *   JsSub.subscribe(topic)  subscribes this instance to `topic` (method `onEvent`,
 *                           default content type, id = topic) with events.subscribe
 *   JsSub.onEvent(event)    receives one structured-mode CloudEvent (parsed JSON) and
 *                           prints `js <id> got <event.data.seq>`: tests wait for these
 */

process.noDeprecation = true

const express = require('express')
const { events, sys } = require('kar-sdk')

class JsSub {
  async subscribe (topic) {
    return events.subscribe(this, 'onEvent', topic)
  }

  onEvent (event) {
    console.log(`js ${this.kar.id} got ${event.data.seq}`)
  }
}

const app = express()
app.use(sys.actorRuntime({ JsSub }))
const port = Number(process.env.KAR_APP_PORT)
const host = process.env.KAR_APP_HOST || '127.0.0.1'
sys.h2c(app).listen(port, host, () => console.log(`event server listening on ${host}:${port}`))

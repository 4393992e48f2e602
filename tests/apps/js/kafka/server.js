/*
 * The subscriber of the Kafka tests, written with the published kar-sdk (1.3.10).
 * Run it under `kar run -h2c -actors Seq ... -- node kafka/server.js`.
 *
 *   Seq.subscribe(topic, method)  subscribes this instance to `topic` (id = topic)
 *   Seq.append(event)             appends [event.p || 0, event.seq] to the state key
 *                                 `log` (one state write: atomic) and prints
 *                                 `seq <id> got <p>/<seq> (<length of the log>)`
 *   Seq.show(event)               prints `show <id> <the event as received, JSON>`
 *   Seq.log()                     the log
 *   Seq.tick(event)               prints `tick <event.seq> <ms since event.t>` (the
 *                                 Kafka benchmark, bench/kafka.py)
 */

process.noDeprecation = true

const express = require('express')
const { actor, events, sys } = require('kar-sdk')

class Seq {
  async subscribe (topic, method) {
    return events.subscribe(this, method, topic)
  }

  async append (event) {
    const log = (await actor.state.get(this, 'log')) || []
    log.push([event.p || 0, event.seq])
    await actor.state.set(this, 'log', log)
    console.log(`seq ${this.kar.id} got ${event.p || 0}/${event.seq} (${log.length})`)
  }

  show (event) {
    console.log(`show ${this.kar.id} ${JSON.stringify(event)}`)
  }

  tick (event) {
    console.log(`tick ${event.seq} ${Date.now() - event.t}`)
  }

  async log () {
    return (await actor.state.get(this, 'log')) || []
  }
}

const app = express()
app.use(sys.actorRuntime({ Seq }))
const port = Number(process.env.KAR_APP_PORT)
const host = process.env.KAR_APP_HOST || '127.0.0.1'
sys.h2c(app).listen(port, host, () => console.log(`kafka subscriber listening on ${host}:${port}`))

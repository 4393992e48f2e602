/*
 * The kar side of the Node comparison with Restate's TypeScript `Counter`
 * (../restate/counter.mjs), written with the published kar-sdk as an application would:
 * actor type `Counter` whose method `add(delta)` reads `count` from the actor's state
 * and writes it back. Run under
 * `kar run -h2c -app bench -actors Counter -- node counter.js`.
 */

// spdy (behind sys.h2c) uses APIs Node 20 deprecates; the warnings would only be noise.
process.noDeprecation = true

const express = require('express')
const { actor, sys } = require('kar-sdk')

class Counter {
  async add (delta) {
    const count = ((await actor.state.get(this, 'count')) || 0) + (Number(delta) || 0)
    await actor.state.set(this, 'count', count)
    return count
  }
}

const app = express()
app.use(sys.actorRuntime({ Counter }))
sys.h2c(app).listen(Number(process.env.KAR_APP_PORT), '127.0.0.1')

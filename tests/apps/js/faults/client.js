/*
 * The fault-injection client (tests/tests/faults.rs), written with the published kar-sdk
 * (1.3.10). Run it under `kar run -app APP -- node faults/client.js SCENARIO ARGS...`;
 * the handlers are served by ./server.js.
 *
 *   service SERVICE KEY MS [RETRY_MS]   call(SERVICE, 'slow', {key, ms, retryMs})
 *   nested KEY G_MS [RETRY_MS]          actor call F(KEY).f(KEY, G_MS, RETRY_MS) (F calls G)
 *   chain KEY MS [RETRY_MS]             actor call A(KEY).a(KEY, MS, RETRY_MS) (tail calls
 *                                       A -> B -> C)
 * (the handler sleeps MS on its first attempt, RETRY_MS, default MS, on later ones)
 *   remind KEY PERIOD_MS      a periodic reminder `beat` of Ticker(KEY): tick(KEY)
 *   subscribe KEY TOPIC       creates TOPIC; Sub(KEY) subscribes to it
 *   publish TOPIC FROM TO     publishes CloudEvents with data {seq: FROM..TO}
 *
 * Prints `result <JSON>` with the reply of a call; on an error prints "FAIL ..." and exits 1.
 */

const { CloudEvent } = require('cloudevents')
const { actor, call, events } = require('kar-sdk')

async function run (scenario, args) {
  switch (scenario) {
    case 'service': {
      const [service, key, ms, retryMs = ms] = args
      return call(service, 'slow', { key, ms: Number(ms), retryMs: Number(retryMs) })
    }
    case 'nested': {
      const [key, gMs, retryMs = gMs] = args
      return actor.call(actor.proxy('F', key), 'f', key, Number(gMs), Number(retryMs))
    }
    case 'chain': {
      const [key, ms, retryMs = ms] = args
      return actor.call(actor.proxy('A', key), 'a', key, Number(ms), Number(retryMs))
    }
    case 'remind': {
      const [key, period] = args
      const options = { id: 'beat', targetTime: new Date(Date.now() + Number(period)), period: `${period}ms` }
      return actor.reminders.schedule(actor.proxy('Ticker', key), 'tick', options, key)
    }
    case 'subscribe': {
      const [key, topic] = args
      await events.createTopic(topic)
      return actor.call(actor.proxy('Sub', key), 'subscribe', topic)
    }
    case 'publish': {
      const [topic, from, to] = args
      for (let seq = Number(from); seq <= Number(to); seq++) {
        const event = new CloudEvent({ type: 'kar.faults', source: 'faults/client.js', data: { seq } })
        const answer = await events.publish(topic, event)
        if (answer !== 'OK') throw new Error(`publish ${seq} answered ${JSON.stringify(answer)}`)
      }
      return `published ${from}..${to}`
    }
    default:
      throw new Error(`unknown scenario ${JSON.stringify(scenario)}`)
  }
}

const [scenario, ...args] = process.argv.slice(2)
console.log(`client starting: ${process.argv.slice(2).join(' ')}`)
run(scenario, args).then(result => {
  console.log(`result ${JSON.stringify(result === undefined ? null : result)}`)
  // The SDK keeps its HTTP/2 session to the sidecar open: exit explicitly.
  process.exit(0)
}, err => {
  console.log(`FAIL ${scenario}: ${err && err.stack ? err.stack : err}`)
  process.exit(1)
})

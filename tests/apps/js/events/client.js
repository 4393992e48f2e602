/*
 * Event client for the integration tests (kar-sdk 1.3.10 `events`, npm `cloudevents`).
 * Run it under `kar run -app APP -- node events/client.js SCENARIO TOPIC ...`; the
 * subscriber JsSub is served by ./server.js.
 *
 *   setup TOPIC             creates the topic (a new one: undefined; again: 'Already
 *                           existed') and has JsSub 1 subscribe to it
 *   publish TOPIC FROM TO   publishes CloudEvents (structured mode JSON) with
 *                           data {seq: FROM..TO}, one after the other
 *
 * Prints one line per step; on a mismatch prints "FAIL ..." and exits 1.
 */

const assert = require('assert')
const { CloudEvent } = require('cloudevents')
const { actor, events } = require('kar-sdk')

async function main () {
  const [scenario, topic, from, to] = process.argv.slice(2)
  if (scenario === 'setup') {
    assert.strictEqual(await events.createTopic(topic), undefined, 'a new topic: 201 without body')
    assert.strictEqual(await events.createTopic(topic), 'Already existed')
    await actor.call(actor.proxy('JsSub', '1'), 'subscribe', topic)
    console.log(`subscribed to ${topic}`)
  } else if (scenario === 'publish') {
    for (let seq = Number(from); seq <= Number(to); seq++) {
      const event = new CloudEvent({ type: 'kar.test', source: 'events/client.js', data: { seq } })
      assert.strictEqual(await events.publish(topic, event), 'OK')
    }
    console.log(`published ${from}..${to}`)
  } else {
    throw new Error(`unknown scenario ${scenario}`)
  }
}

main().then(() => process.exit(0), e => {
  console.log(`FAIL ${e.message}`)
  process.exit(1)
})

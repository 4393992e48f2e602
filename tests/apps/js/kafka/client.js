/*
 * Client of the Kafka tests (kar-sdk 1.3.10). Run it under
 * `kar run -app APP -- node kafka/client.js COMMAND ...`; Seq is served by ./server.js.
 *
 *   create TOPIC PARTITIONS    creates TOPIC with {numPartitions: PARTITIONS} (201:
 *                              undefined), then again ('Already existed')
 *   subscribe ID TOPIC METHOD  has Seq ID subscribe to TOPIC with METHOD
 *   log ID                     prints `log <the state log of Seq ID, JSON>`
 *   publish TOPIC FROM TO      publishes {seq: FROM..TO}, one after the other, and
 *                              prints `published FROM..TO in <ms> ms`
 */

const assert = require('assert')
const { actor, events } = require('kar-sdk')

async function main () {
  const [command, a, b, c] = process.argv.slice(2)
  if (command === 'create') {
    assert.strictEqual(await events.createTopic(a, { numPartitions: Number(b) }), undefined)
    assert.strictEqual(await events.createTopic(a, { numPartitions: Number(b) }), 'Already existed')
    console.log(`created ${a}`)
  } else if (command === 'subscribe') {
    await actor.call(actor.proxy('Seq', a), 'subscribe', b, c)
    console.log(`subscribed ${a} to ${b}`)
  } else if (command === 'log') {
    console.log(`log ${JSON.stringify(await actor.call(actor.proxy('Seq', a), 'log'))}`)
  } else if (command === 'publish') {
    const start = Date.now()
    for (let seq = Number(b); seq <= Number(c); seq++) {
      assert.strictEqual(await events.publish(a, { seq }), 'OK')
    }
    console.log(`published ${b}..${c} in ${Date.now() - start} ms`)
  } else {
    throw new Error(`unknown command ${command}`)
  }
}

main().then(() => process.exit(0), e => {
  console.log(`FAIL ${e.message}`)
  process.exit(1)
})

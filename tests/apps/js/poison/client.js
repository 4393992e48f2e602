/*
 * The client of tests/tests/poison.rs, written with the published kar-sdk (1.3.10).
 * Run it under `kar run -app APP -- node poison/client.js SERVICE`.
 *
 * Makes one call to SERVICE/crash (the poison) and, while it is blocked, a stream of
 * calls to SERVICE/good, one started every 20 ms without waiting for the previous ones
 * (so that a good call that is itself held up, e.g. paused because it shared every
 * death of the poison, does not stop the stream), printing "ok good N" for each correct
 * reply and "FAIL good N: ..." otherwise. Once the crash call returns it stops starting
 * good calls, waits for those in flight, prints "crash replied <json>", then
 * "good calls: N, failures: F", and exits 0 if F is 0.
 */

const { call } = require('kar-sdk')

function pause (ms) {
  return new Promise(resolve => setTimeout(resolve, ms))
}

async function main () {
  const service = process.argv[2]
  let settled = false
  let crashReply
  let crashError
  const crash = call(service, 'crash', {}).then(
    reply => { crashReply = reply },
    error => { crashError = error }
  ).finally(() => { settled = true })
  let n = 0
  let failures = 0
  const inflight = []
  while (!settled) {
    const i = n++
    inflight.push(call(service, 'good', i).then(reply => {
      if (reply === `good ${i}`) {
        console.log(`ok good ${i}`)
      } else {
        failures++
        console.log(`FAIL good ${i}: ${JSON.stringify(reply)}`)
      }
    }, error => {
      failures++
      console.log(`FAIL good ${i}: ${error}`)
    }))
    await pause(20)
  }
  await Promise.all(inflight)
  await crash
  if (crashError !== undefined) {
    console.log(`FAIL crash: ${crashError}`)
    process.exit(1)
  }
  console.log(`crash replied ${JSON.stringify(crashReply)}`)
  console.log(`good calls: ${n}, failures: ${failures}`)
  process.exit(failures === 0 ? 0 : 1)
}

main().catch(error => {
  console.log(`FAIL ${error}`)
  process.exit(1)
})

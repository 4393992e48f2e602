/*
 * Reminder client for the integration tests (kar-sdk 1.3.10, `actor.reminders`).
 * Run it under `kar run -app APP -- node reminders/client.js SCENARIO ID`; the actors
 * are served by ./server.js (JsTimer).
 *
 *   schedule ID     a periodic reminder with arguments (`periodic`: tick('p', 7) every
 *                   500 ms from now + 1 s), a one-shot (`oneshot`: once('o') at now + 1 s)
 *                   and a far one (`later`); checks what schedule and get return
 *   cancel-one ID   cancels `periodic` by id (1, then 0), get returns null
 *   cancel-all ID   cancels what is left (`later`): prints the count
 *   beat ID MS      a periodic reminder `beat` (beat('beat') every MS ms from now + MS)
 *   burst N MS      a one-shot reminder `burst` (once('b')) on each of ID0 .. ID<N-1>,
 *                   all due at now + MS (a burst of N firings)
 *   hold N MS       a periodic reminder `hold` (hold('h') every MS ms from now + MS) on
 *                   each of ID0 .. ID<N-1>
 *
 * Prints one line per check; on a mismatch prints "FAIL <check>: ..." and exits 1.
 */

const assert = require('assert')
const { actor } = require('kar-sdk')

async function main () {
  const [scenario, id, ms, n] = process.argv.slice(2)
  const a = actor.proxy('JsTimer', id)
  if (scenario === 'schedule') {
    const start = new Date(Date.now() + 1000)
    const first = await actor.reminders.schedule(a, 'tick', { id: 'periodic', targetTime: start, period: '500ms' }, 'p', 7)
    assert.strictEqual(first, undefined, 'a new reminder: 204, undefined')
    const again = await actor.reminders.schedule(a, 'tick', { id: 'periodic', targetTime: start, period: '500ms' }, 'p', 7)
    assert.strictEqual(again, 'OK', 'a replaced reminder: OK')
    await actor.reminders.schedule(a, 'once', { id: 'oneshot', targetTime: start }, 'o')
    await actor.reminders.schedule(a, 'tick', { id: 'later', targetTime: new Date(Date.now() + 3600e3), period: '1h' }, 'l', 1)
    const one = await actor.reminders.get(a, 'periodic')
    assert.deepStrictEqual(Object.keys(one), ['Actor', 'id', 'path', 'targetTime', 'period', 'encodedData'])
    assert.deepStrictEqual(one.Actor, { Type: 'JsTimer', ID: id })
    assert.strictEqual(one.id, 'periodic')
    assert.strictEqual(one.path, '/tick')
    assert.strictEqual(one.period, 500000000)
    assert.strictEqual(one.encodedData, '["p",7]')
    assert.strictEqual(Date.parse(one.targetTime), start.getTime())
    const shot = await actor.reminders.get(a, 'oneshot')
    assert.strictEqual(shot.period, undefined, 'period omitted when 0')
    assert.strictEqual(shot.encodedData, '["o"]')
    const all = await actor.reminders.get(a)
    assert.deepStrictEqual(all.map(r => r.id), ['later', 'oneshot', 'periodic'])
    assert.strictEqual(await actor.reminders.get(a, 'nope'), null)
    console.log('scheduled')
  } else if (scenario === 'cancel-one') {
    assert.strictEqual(await actor.reminders.cancel(a, 'periodic'), 1)
    assert.strictEqual(await actor.reminders.cancel(a, 'periodic'), 0)
    assert.strictEqual(await actor.reminders.get(a, 'periodic'), null)
    console.log('cancelled periodic')
  } else if (scenario === 'cancel-all') {
    const n = await actor.reminders.cancel(a)
    assert.deepStrictEqual((await actor.reminders.get(a)), [])
    console.log(`cancelled all ${n}`)
  } else if (scenario === 'beat') {
    const period = Number(ms)
    await actor.reminders.schedule(a, 'beat', { id: 'beat', targetTime: new Date(Date.now() + period), period: `${period}ms` }, 'beat')
    console.log('scheduled beat')
  } else if (scenario === 'burst') {
    const target = new Date(Date.now() + Number(ms))
    const count = Number(n)
    // A few dozen at a time: the sidecar's HTTP/2 session takes them concurrently.
    for (let i = 0; i < count; i += 50) {
      const batch = []
      for (let j = i; j < Math.min(count, i + 50); j++) {
        batch.push(actor.reminders.schedule(actor.proxy('JsTimer', `${id}${j}`), 'once', { id: 'burst', targetTime: target }, 'b'))
      }
      await Promise.all(batch)
    }
    console.log(`scheduled burst ${count} late=${Date.now() - target.getTime()}`)
  } else if (scenario === 'hold') {
    const period = Number(ms)
    const target = new Date(Date.now() + period)
    for (let j = 0; j < Number(n); j++) {
      await actor.reminders.schedule(actor.proxy('JsTimer', `${id}${j}`), 'hold', { id: 'hold', targetTime: target, period: `${period}ms` }, 'h')
    }
    console.log('scheduled hold')
  } else {
    throw new Error(`unknown scenario ${scenario}`)
  }
}

main().then(() => process.exit(0), e => {
  console.log(`FAIL ${e.message}`)
  process.exit(1)
})

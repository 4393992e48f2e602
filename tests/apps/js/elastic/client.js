/*
 * The elastic-mesh client (tests/tests/elastic.rs), written with the published kar-sdk
 * (1.3.10). Run it under `kar run -app APP -- node elastic/client.js SCENARIO ARGS...`;
 * the actors are served by ./server.js. Actor ids are c0 .. c<ACTORS-1>.
 *
 *   load ACTORS WORKERS STOP_FILE LATENCY_FILE
 *       calls Counter(c<i>).incr() once on every actor (prints `warm`), then WORKERS
 *       concurrent loops call incr() on random actors until STOP_FILE exists. Every
 *       reply is checked: a number, above the last one this loop got from that actor.
 *       Each call appends `<end wall ms> <latency µs>` to LATENCY_FILE. Prints
 *       `FAIL ...` per failed or wrong call, then `done calls=N failures=F`.
 *   sum ACTORS       prints `sum N`: the total of every actor's count
 *   calls ACTORS     incr() on every actor at once; prints `called N`
 *   relay ID OTHER MS  Counter(ID).relay(OTHER, MS); prints `relayed N`
 *
 * Exits 1 if a call failed.
 */

const fs = require('fs')
const { actor } = require('kar-sdk')

const id = i => `c${i}`
const incr = i => actor.call(actor.proxy('Counter', id(i)), 'incr')

async function load (actors, workers, stopFile, latencyFile) {
  let calls = 0
  let failures = 0
  const fail = message => { failures++; console.log(`FAIL ${message}`) }
  // Warm-up: every actor once (activates them all where they are placed).
  const chunk = 50
  for (let from = 0; from < actors; from += chunk) {
    const batch = []
    for (let i = from; i < Math.min(actors, from + chunk); i++) {
      batch.push(incr(i).then(reply => {
        calls++
        if (typeof reply !== 'number') fail(`warm ${id(i)}: reply ${JSON.stringify(reply)}`)
      }, err => fail(`warm ${id(i)}: ${err}`)))
    }
    await Promise.all(batch)
  }
  console.log('warm')
  let stop = false
  const watcher = setInterval(() => { stop = stop || fs.existsSync(stopFile) }, 100)
  let pending = []
  const flush = () => {
    if (pending.length) fs.appendFileSync(latencyFile, pending.join(''))
    pending = []
  }
  const flusher = setInterval(flush, 200)
  const loop = async () => {
    const last = new Map()
    while (!stop) {
      const i = Math.floor(Math.random() * actors)
      const start = process.hrtime.bigint()
      let reply
      try {
        reply = await incr(i)
      } catch (err) {
        fail(`${id(i)}: ${err}`)
        continue
      }
      const micros = Number((process.hrtime.bigint() - start) / 1000n)
      pending.push(`${Date.now()} ${micros}\n`)
      calls++
      if (typeof reply !== 'number' || reply <= (last.get(i) || 0)) {
        fail(`${id(i)}: reply ${JSON.stringify(reply)} after ${last.get(i)}`)
      } else {
        last.set(i, reply)
      }
    }
  }
  await Promise.all(Array.from({ length: workers }, loop))
  clearInterval(watcher)
  clearInterval(flusher)
  flush()
  console.log(`done calls=${calls} failures=${failures}`)
  return failures === 0
}

async function sum (actors) {
  let total = 0
  for (let i = 0; i < actors; i++) {
    total += await actor.call(actor.proxy('Counter', id(i)), 'get')
  }
  console.log(`sum ${total}`)
  return true
}

async function calls (actors) {
  const replies = await Promise.all(Array.from({ length: actors }, (_, i) => incr(i)))
  const bad = replies.filter(reply => typeof reply !== 'number')
  if (bad.length) {
    console.log(`FAIL calls: ${JSON.stringify(bad)}`)
    return false
  }
  console.log(`called ${replies.length}`)
  return true
}

async function relay (from, other, ms) {
  const reply = await actor.call(actor.proxy('Counter', from), 'relay', other, Number(ms))
  console.log(`relayed ${JSON.stringify(reply)}`)
  return typeof reply === 'number'
}

const [scenario, ...args] = process.argv.slice(2)
console.log(`client starting: ${process.argv.slice(2).join(' ')}`)
const run = {
  load: () => load(Number(args[0]), Number(args[1]), args[2], args[3]),
  sum: () => sum(Number(args[0])),
  calls: () => calls(Number(args[0])),
  relay: () => relay(args[0], args[1], args[2])
}[scenario]
if (!run) {
  console.log(`FAIL unknown scenario ${scenario}`)
  process.exit(1)
}
run().then(ok => {
  // The SDK keeps its HTTP/2 session to the sidecar open: exit explicitly.
  process.exit(ok ? 0 : 1)
}, err => {
  console.log(`FAIL ${scenario}: ${err && err.stack ? err.stack : err}`)
  process.exit(1)
})

/*
 * Clients of the bank (./server.js) for tests/tests/bank_faults.rs, written with the
 * published kar-sdk (1.3.10). Run under `kar run -app APP -- node bank/client.js ...`.
 *
 *   transfers TAG ACCOUNTS STOPFILE QUIESCE_S
 *       Until STOPFILE exists, two concurrent loops start transfers between random
 *       accounts A0..A<ACCOUNTS-1>: one with actor calls (waiting for each reply), one
 *       with tells (202 = accepted; at most MAX_OUTSTANDING not yet seen credited).
 *       Then waits up to QUIESCE_S seconds until every accepted tell has been
 *       credited (read through the state API) and exits 0.
 *       Events go to $BANK_LOG as JSON lines:
 *         {"t":ns,"pid":P,"client":TAG,"ev":E,"transfer":X,"from":A,"to":B,"amount":N,"mode":M}
 *       E = "sent" (a call in flight: accepted), "completed" (its reply, checked),
 *       "failed" (the call answered an error), "accepted" (a tell answered 202),
 *       "refused" (a tell answered an error: not accepted).
 *       With BANK_KEYED=1 (tests/tests/multihost.rs, where Redis itself is killed and
 *       restarted), calls and tells go over plain HTTP with the transfer as their
 *       Idempotency-Key, and a 5xx or a broken connection (an outcome the client cannot
 *       know) is retried with the same key until answered: the key makes the retry
 *       the same request, so it runs once. State reads are retried the same way.
 *   audit ACCOUNTS FILE
 *       Writes `{"A0":{...state...},...}` (every account's whole state) to FILE (too
 *       big for stdout: Node drops what the pipe did not take when the process exits).
 */

const fs = require('fs')
const { actor } = require('kar-sdk')

const logFile = process.env.BANK_LOG
// Tells a client may have accepted but not yet seen credited.
const MAX_OUTSTANDING = 10
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const random = n => Math.floor(Math.random() * n)
const account = id => actor.proxy('Account', id)
const keyed = process.env.BANK_KEYED === '1'
const sidecar = `http://127.0.0.1:${process.env.KAR_RUNTIME_PORT}/kar/v1`
// Retries of keyed requests and state reads (a store restart), for the figures.
let retries = 0

// Runs `attempt` until it returns, retrying what an outage of the store can throw
// (a `retryable` error: 5xx or no answer) every 100 ms for at most a minute.
async function untilAnswered (what, attempt) {
  for (let tries = 1; ; tries++) {
    try {
      return await attempt()
    } catch (err) {
      if (!err.retryable || tries >= 600) throw err
      retries++
      if (tries === 1) console.log(`${what}: ${err.message}; retrying`)
      await sleep(100)
    }
  }
}

// One keyed actor request over plain HTTP: the reply's value (call) or nothing (tell).
async function keyedRequest (t, tell) {
  return untilAnswered(`${tell ? 'tell' : 'call'} ${t.transfer}`, async () => {
    let response
    try {
      response = await fetch(`${sidecar}/actor/Account/${t.from}/call/debit`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/kar+json',
          'Idempotency-Key': t.transfer,
          ...(tell ? { Pragma: 'async' } : {})
        },
        body: JSON.stringify([t.transfer, t.to, t.amount])
      })
    } catch (err) {
      throw Object.assign(new Error(`no answer: ${err.cause || err}`), { retryable: true })
    }
    const text = await response.text()
    if (response.status >= 500) throw Object.assign(new Error(`${response.status} ${text}`), { retryable: true })
    if (tell) {
      if (response.status !== 202) throw new Error(`${response.status} ${text}`)
      return undefined
    }
    if (response.status !== 200) throw new Error(`${response.status} ${text}`)
    const reply = JSON.parse(text)
    if (reply.error) throw new Error(reply.message || text)
    return reply.value
  })
}

const call = t => keyed
  ? keyedRequest(t, false)
  : actor.call(account(t.from), 'debit', t.transfer, t.to, t.amount)
const tell = t => keyed
  ? keyedRequest(t, true)
  : actor.tell(account(t.from), 'debit', t.transfer, t.to, t.amount)
// The SDK's errors carry no status: with keyed requests, every failed read is retried.
const creditOf = t => keyed
  ? untilAnswered(`read ${t.transfer}`, () => actor.state.get(account(t.to), `c_${t.transfer}`)
    .catch(err => { throw Object.assign(err, { retryable: true }) }))
  : actor.state.get(account(t.to), `c_${t.transfer}`)

function log (fields) {
  const rest = JSON.stringify({ pid: process.pid, ...fields })
  fs.appendFileSync(logFile, `{"t":${process.hrtime.bigint()},${rest.slice(1)}\n`)
}

async function transfers (tag, accounts, stopFile, quiesceS) {
  const counts = { sent: 0, completed: 0, failed: 0, accepted: 0, refused: 0 }
  const told = []
  let credited = 0 // told[0..credited] are known to be credited
  const pick = () => {
    const from = random(accounts)
    const to = (from + 1 + random(accounts - 1)) % accounts
    return { from: `A${from}`, to: `A${to}`, amount: 1 + random(100) }
  }
  const loop = async mode => {
    for (let n = 0; !fs.existsSync(stopFile); n++) {
      const t = { client: tag, transfer: `${tag}-${mode}-${n}`, ...pick(), mode }
      if (mode === 'call') {
        log({ ...t, ev: 'sent' })
        counts.sent++
        try {
          const reply = await call(t)
          const expected = { transfer: t.transfer, from: t.from, to: t.to, amount: t.amount }
          if (JSON.stringify(reply) !== JSON.stringify(expected)) throw new Error(`wrong reply ${JSON.stringify(reply)}`)
          log({ ...t, ev: 'completed' })
          counts.completed++
        } catch (err) {
          log({ ...t, ev: 'failed', error: String(err && err.message) })
          counts.failed++
          console.log(`call ${t.transfer} failed: ${err && err.message}`)
        }
      } else {
        // Back-pressure: tells queue at the accounts ahead of the calls; a backlog
        // growing without bound would starve the calls.
        while (told.length - credited >= MAX_OUTSTANDING) {
          if (await creditOf(told[credited]) !== undefined) credited++
          else await sleep(20)
        }
        try {
          await tell(t)
          log({ ...t, ev: 'accepted' })
          counts.accepted++
          told.push(t)
        } catch (err) {
          log({ ...t, ev: 'refused', error: String(err && err.message) })
          counts.refused++
          console.log(`tell ${t.transfer} refused: ${err && err.message}`)
        }
      }
      await sleep(20 + random(40))
    }
  }
  await Promise.all([loop('call'), loop('tell')])
  console.log(`stopped: ${JSON.stringify(counts)}, ${retries} retries`)

  // Quiesce: every accepted tell must end up credited.
  const deadline = Date.now() + quiesceS * 1000
  let pending = told.slice(credited)
  while (pending.length > 0 && Date.now() < deadline) {
    const still = []
    for (const t of pending) {
      if (await creditOf(t) === undefined) still.push(t)
    }
    pending = still
    if (pending.length > 0) await sleep(200)
  }
  console.log(`tells credited: ${told.length - pending.length}/${told.length}`)
  for (const t of pending.slice(0, 20)) console.log(`not credited: ${JSON.stringify(t)}`)
}

async function audit (accounts, file) {
  const states = {}
  for (let i = 0; i < accounts; i++) states[`A${i}`] = await actor.state.getAll(account(`A${i}`))
  fs.writeFileSync(file, JSON.stringify(states))
  console.log(`audited ${accounts} accounts`)
}

async function main () {
  const [scenario, ...args] = process.argv.slice(2)
  switch (scenario) {
    case 'transfers': await transfers(args[0], Number(args[1]), args[2], Number(args[3])); break
    case 'audit': await audit(Number(args[0]), args[1]); break
    default:
      console.log(`FAIL unknown scenario ${JSON.stringify(scenario)}`)
      process.exit(2)
  }
  // The SDK keeps its HTTP/2 session to the sidecar open: exit explicitly.
  process.exit(0)
}

main().catch(err => {
  console.log(`FAIL unexpected error: ${err && err.stack ? err.stack : err}`)
  process.exit(1)
})

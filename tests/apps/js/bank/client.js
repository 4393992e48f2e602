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
          const reply = await actor.call(account(t.from), 'debit', t.transfer, t.to, t.amount)
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
          if (await actor.state.get(account(told[credited].to), `c_${told[credited].transfer}`) !== undefined) credited++
          else await sleep(20)
        }
        try {
          await actor.tell(account(t.from), 'debit', t.transfer, t.to, t.amount)
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
  console.log(`stopped: ${JSON.stringify(counts)}`)

  // Quiesce: every accepted tell must end up credited.
  const deadline = Date.now() + quiesceS * 1000
  let pending = told.slice(credited)
  while (pending.length > 0 && Date.now() < deadline) {
    const still = []
    for (const t of pending) {
      if (await actor.state.get(account(t.to), `c_${t.transfer}`) === undefined) still.push(t)
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

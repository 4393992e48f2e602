/*
 * A KAR client for the integration tests, written with the published kar-sdk (1.3.10).
 * Run it under `kar run -app APP -- node client.js SCENARIO ARGS...`.
 *
 * Scenarios (SERVICE runs service.js or one of its Python twins):
 *   sdk SERVICE TAG [PROTOCOL]      call, tell, asyncCall and invoke (GET/POST/PUT/DELETE/HEAD)
 *                                   against every route; /whoami must answer TAG, and
 *                                   /protocol PROTOCOL ("1.1" or "2": how the sidecar
 *                                   reached the service)
 *   concurrent SERVICE N            N calls in flight at once over the SDK's one HTTP/2 session
 *   whoami SERVICE TAG              /whoami must answer TAG
 *   missing SERVICE MIN_MS MAX_MS   a call to a service nobody offers must fail with
 *                                   500 "failed to send message: deadline expired..." after
 *                                   MIN_MS..MAX_MS
 *   tell SERVICE KEY BODY           tell /record/KEY with BODY; must answer "OK"
 *   expect-recorded SERVICE KEY BODY   /recorded/KEY must (eventually) hold BODY
 *   expect-not-recorded SERVICE KEY    /recorded must not list KEY
 *   expect-purged SERVICE KEY       tells record/after-KEY and waits for it; KEY, told before
 *                                   (e.g. parked, then purged), must not have been delivered
 *
 * Prints one line per check; on a mismatch prints "FAIL <check>: ..." and exits 1.
 */

const assert = require('assert')
const { call, tell, asyncCall, invoke } = require('kar-sdk')
const { check, equal, finish } = require('./checks')

// What an invoke() answered: status, content type (undefined if absent), body text.
async function raw (service, path, options) {
  const res = await invoke(service, path, options)
  const text = await res.text()
  return { status: Number(res.status), type: res.headers['content-type'], text }
}

function startsWith (value, prefix, what) {
  if (typeof value !== 'string' || !value.startsWith(prefix)) {
    throw new Error(`${what}: expected a value starting with ${JSON.stringify(prefix)}, got ${JSON.stringify(value)}`)
  }
}

function noContentType (type, what) {
  // The runtime relays the app's Content-Type; absent and empty are equivalent (spec §1.2).
  if (type !== undefined && type !== '') throw new Error(`${what}: expected no Content-Type, got ${JSON.stringify(type)}`)
}

async function sdk (service, tag, protocol) {
  if (protocol) {
    await check(`sidecar reaches ${service} over HTTP/${protocol}`, async () => {
      const r = await raw(service, 'protocol', { method: 'GET' })
      equal([r.status, r.text], [200, protocol], 'status and body of /protocol')
    })
  }
  await check('call helloJson', async () => {
    equal(await call(service, 'helloJson', { name: 'X' }), { greetings: 'Hello X' }, 'reply')
  })
  await check('call incr', async () => {
    equal(await call(service, 'incr', 41), 42, 'reply')
  })
  await check('call of a route answering 404 throws', async () => {
    await assert.rejects(call(service, 'no/such/route', {}), 'call must throw on a 404')
  })
  await check('tell record', async () => {
    equal(await tell(service, 'record/told-js', { v: 'js' }), 'OK', 'reply')
    const r = await raw(service, 'recorded/told-js', { method: 'GET' })
    equal(r.status, 200, 'status of /recorded')
    equal(r.text, '{"v":"js"}', 'recorded body')
  })
  await check('asyncCall incr', async () => {
    const thunk = await asyncCall(service, 'incr', 1)
    equal(typeof thunk, 'function', 'asyncCall result')
    equal(await thunk(), 2, 'awaited reply')
  })
  await check('asyncCall helloJson', async () => {
    const thunk = await asyncCall(service, 'helloJson', { name: 'Y' })
    equal(await thunk(), { greetings: 'Hello Y' }, 'awaited reply')
  })
  await check('invoke GET whoami', async () => {
    const r = await raw(service, 'whoami', { method: 'GET' })
    equal(r.status, 200, 'status')
    startsWith(r.type, 'text/plain', 'Content-Type')
    equal(r.text, tag, 'body')
  })
  await check('invoke POST helloText', async () => {
    const r = await raw(service, 'helloText', { method: 'POST', body: 'Z', headers: { 'Content-Type': 'text/plain' } })
    equal(r.status, 200, 'status')
    startsWith(r.type, 'text/plain', 'Content-Type')
    equal(r.text, 'Hello Z', 'body')
  })
  await check('invoke GET item', async () => {
    const r = await raw(service, 'item/7', { method: 'GET' })
    equal(r.status, 200, 'status')
    startsWith(r.type, 'application/json', 'Content-Type')
    equal(JSON.parse(r.text), { id: '7', method: 'GET' }, 'body')
  })
  await check('invoke HEAD item', async () => {
    const r = await raw(service, 'item/7', { method: 'HEAD' })
    equal(r.status, 200, 'status')
    equal(r.text, '', 'body')
  })
  await check('invoke PUT item', async () => {
    const r = await raw(service, 'item/8', { method: 'PUT', body: 'payload', headers: { 'Content-Type': 'text/plain' } })
    equal(r.status, 201, 'status')
    startsWith(r.type, 'application/json', 'Content-Type')
    equal(JSON.parse(r.text), { id: '8', method: 'PUT', body: 'payload' }, 'body')
  })
  await check('invoke DELETE item (204)', async () => {
    const r = await raw(service, 'item/9', { method: 'DELETE' })
    equal(r.status, 204, 'status')
    equal(r.text, '', 'body')
    noContentType(r.type, 'Content-Type')
  })
  await check('invoke POST raw (reply without Content-Type)', async () => {
    const r = await raw(service, 'raw', { method: 'POST', body: 'abc', headers: { 'Content-Type': 'text/plain' } })
    equal(r.status, 200, 'status')
    noContentType(r.type, 'Content-Type')
    equal(r.text, 'raw:abc', 'body')
  })
  await check('invoke POST empty (empty reply)', async () => {
    const r = await raw(service, 'empty', { method: 'POST' })
    equal(r.status, 200, 'status')
    noContentType(r.type, 'Content-Type')
    equal(r.text, '', 'body')
  })
  await check('invoke POST echo (custom Content-Type, UTF-8 body)', async () => {
    const body = 'h\u00e9llo \u2713 {"not":"parsed"}'
    const r = await raw(service, 'echo', { method: 'POST', body, headers: { 'Content-Type': 'application/x-kar-test' } })
    equal(r.status, 200, 'status')
    equal(r.type, 'application/x-kar-test', 'Content-Type')
    equal(r.text, body, 'body')
  })
  await check('invoke GET status/404 is relayed', async () => {
    const r = await raw(service, 'status/404', { method: 'GET' })
    equal(r.status, 404, 'status')
    equal(r.text, 'status 404', 'body')
  })
  await check('invoke GET status/500 is relayed (not a runtime error)', async () => {
    const r = await raw(service, 'status/500', { method: 'GET' })
    equal(r.status, 500, 'status')
    equal(r.text, 'status 500', 'body')
  })
  await check('invoke GET query string is forwarded', async () => {
    const r = await raw(service, 'query?a=1&b=two', { method: 'GET' })
    equal(r.status, 200, 'status')
    equal(JSON.parse(r.text), { query: 'a=1&b=two' }, 'body')
  })
}

async function concurrent (service, n) {
  await check(`${n} concurrent calls`, async () => {
    const started = Date.now()
    const replies = await Promise.all(Array.from({ length: n }, (_, i) => call(service, 'incr', i)))
    replies.forEach((reply, i) => equal(reply, i + 1, `reply to call ${i}`))
    console.log(`${n} concurrent calls took ${Date.now() - started} ms`)
  })
}

async function whoami (service, tag) {
  await check(`whoami is ${tag}`, async () => {
    const r = await raw(service, 'whoami', { method: 'GET' })
    equal(r.status, 200, 'status')
    equal(r.text, tag, 'body')
  })
}

async function missing (service, minMs, maxMs) {
  await check(`call to missing service ${service} expires`, async () => {
    const started = Date.now()
    const r = await raw(service, 'whoami', { method: 'GET' })
    const elapsed = Date.now() - started
    console.log(`missing service answered after ${elapsed} ms: ${r.status} ${JSON.stringify(r.text)}`)
    equal(r.status, 500, 'status')
    startsWith(r.text, 'failed to send message: deadline expired', 'body')
    if (elapsed < minMs || elapsed > maxMs) throw new Error(`answered after ${elapsed} ms, expected ${minMs}..${maxMs} ms`)
  })
}

async function main () {
  const [scenario, service, ...args] = process.argv.slice(2)
  console.log(`client starting: ${process.argv.slice(2).join(' ')}`)
  switch (scenario) {
    case 'sdk': await sdk(service, args[0], args[1]); break
    case 'concurrent': await concurrent(service, Number(args[0])); break
    case 'whoami': await whoami(service, args[0]); break
    case 'missing': await missing(service, Number(args[0]), Number(args[1])); break
    case 'tell':
      await check(`tell record/${args[0]}`, async () => equal(await tell(service, `record/${args[0]}`, args[1]), 'OK', 'reply'))
      break
    case 'expect-recorded':
      await check(`record/${args[0]} was told`, async () => {
        const r = await raw(service, `recorded/${args[0]}`, { method: 'GET' })
        equal([r.status, r.text], [200, JSON.stringify(args[1])], 'status and body of /recorded')
      })
      break
    case 'expect-not-recorded':
      await check(`record/${args[0]} was not told`, async () => {
        const r = await raw(service, 'recorded', { method: 'GET' })
        equal(r.status, 200, 'status of /recorded')
        const keys = JSON.parse(r.text)
        if (keys.includes(args[0])) throw new Error(`recorded keys ${JSON.stringify(keys)} include ${args[0]}`)
      })
      break
    case 'expect-purged':
      await check(`record/${args[0]} was purged`, async () => {
        // Requests adopted when SERVICE joined are delivered before this later tell.
        equal(await tell(service, `record/after-${args[0]}`, 'after'), 'OK', 'reply to the tell')
        const after = await raw(service, `recorded/after-${args[0]}`, { method: 'GET' })
        equal([after.status, after.text], [200, '"after"'], 'status and body of /recorded')
        const r = await raw(service, 'recorded', { method: 'GET' })
        const keys = JSON.parse(r.text)
        if (keys.includes(args[0])) throw new Error(`recorded keys ${JSON.stringify(keys)} include ${args[0]}`)
      })
      break
    default:
      console.log(`FAIL unknown scenario ${JSON.stringify(scenario)}`)
      process.exit(2)
  }
  finish()
}

main().catch(err => {
  console.log(`FAIL ${err && err.stack ? err.stack : err}`)
  process.exit(1)
})

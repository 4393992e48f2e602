/*
 * A KAR actor client for the integration tests, written with the published kar-sdk
 * (1.3.10). Run it under `kar run -app APP -- node actors/client.js SCENARIO ARGS...`.
 * The actors are served by ./server.js (JsCounter, JsOther, JsLog) and
 * ../../python/actors/server.py (PyCounter, PyOther); ids of Py* types are integers.
 *
 * Scenarios:
 *   invocations ID SERVICE       call, rootCall, tell, asyncCall, re-entrancy, errors, unknown
 *                                methods, tail calls (self chain, other type, service SERVICE),
 *                                removal; on JsCounter and PyCounter instances ID, ID+1, ...
 *   state ID                     every state and submap function of the SDK and its result
 *   deact-before TYPE ID         state and an in-memory field set, first activation
 *   deact-after TYPE ID          after a deactivation: state kept, memo gone, second activation
 *   sequential TYPE ID N         N sequential calls to one instance, every value checked
 *   flows TYPE ACTORS LOOPS CALLS TAG   LOOPS concurrent loops of CALLS calls each to `work`
 *                                of instances a0..a<ACTORS-1>
 *   deadlock TYPE ID             a method's rootCall to its own instance fails with the busy
 *                                timeout instead of hanging
 *   philosophers CAFE TABLES DINERS SERVINGS TIMEOUT_S   dining philosophers (./philosophers.js)
 *
 * Prints one line per check; on a mismatch prints "FAIL <check>: ..." and exits 1.
 */

const { actor } = require('kar-sdk')
const { check, equal, includes, finish } = require('../checks')

// Resolves when `probe()` answers `expected`; the actor state written by a tell or an
// actor removal becomes visible some time after the request was accepted.
async function eventually (probe, expected, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    last = await probe()
    try {
      return equal(last, expected, what)
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(last)} after ${timeoutMs} ms, expected ${JSON.stringify(expected)}`)
    }
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

// A call that must be rejected; answers the Error.
async function rejection (promise, what) {
  let value
  try {
    value = await promise
  } catch (err) {
    return err
  }
  throw new Error(`${what}: expected the call to throw, got ${JSON.stringify(value)}`)
}

const TYPES = ['JsCounter', 'PyCounter']
const OTHER = { JsCounter: 'JsOther', PyCounter: 'PyOther' }

async function invocations (firstId, service) {
  let next = Number(firstId)
  const fresh = () => String(next++)
  for (const type of TYPES) {
    const a = actor.proxy(type, fresh())
    await check(`${type}: call`, async () => {
      equal(await actor.call(a, 'incr', 41), 42, 'incr')
      equal(await actor.call(a, 'add', 2, 3), 5, 'add')
      const value = { s: 'h\u00e9llo', n: [1, 2.5, null], t: true, o: { k: 'v' } }
      equal(await actor.call(a, 'echo', value), value, 'echo')
      equal(await actor.call(a, 'nothing'), undefined, 'a method returning nothing')
      equal(await actor.call(a, 'whoami'), `${type}/${a.kar.id}`, 'whoami')
      equal(await actor.call(a, 'activationCount'), 1, 'activations')
    })
    await check(`${type}: rootCall`, async () => {
      equal(await actor.rootCall(a, 'incr', 1), 2, 'incr')
    })
    await check(`${type}: tell`, async () => {
      equal(await actor.tell(a, 'record', 'told', { by: 'js' }), 'OK', 'tell')
      await eventually(() => actor.state.get(a, 'told'), { by: 'js' }, 'state written by the told method')
    })
    await check(`${type}: asyncCall + await`, async () => {
      const thunk = await actor.asyncCall(a, 'add', 20, 22)
      equal(typeof thunk, 'function', 'asyncCall result')
      equal(await thunk(), 42, 'awaited reply')
      const nothing = await actor.asyncCall(a, 'nothing')
      equal(await nothing(), undefined, 'awaited reply of a method returning nothing')
    })
    for (const otherType of TYPES) {
      await check(`${type}: re-entrancy ${type} -> ${otherType} -> ${type}`, async () => {
        const b = actor.proxy(otherType, fresh())
        equal(await actor.call(a, 'ping', otherType, b.kar.id, 'js'), `js>${otherType}>${type}/${a.kar.id}`, 'reply')
      })
    }
    await check(`${type}: unknown method is relayed as 404`, async () => {
      const err = await rejection(actor.call(a, 'nosuch', 1), 'unknown method')
      equal(err.message, `no nosuch in actor with type ${type} and id ${a.kar.id}`, 'message')
    })
    await check(`${type}: self tail calls (chain of 10)`, async () => {
      equal(await actor.call(a, 'chain', 5, 10), 15, 'chain(5, 10)')
      equal(await actor.call(a, 'chain', 0, 0), 0, 'chain(0, 0)')
      const thunk = await actor.asyncCall(a, 'chain', 1, 10)
      equal(await thunk(), 11, 'awaited chain(1, 10)')
      equal(await actor.call(a, 'incrReleasing', 7), 8, 'tail call releasing the lock')
    })
    await check(`${type}: tail calls in a tell`, async () => {
      equal(await actor.tell(a, 'chainRecord', 'chained', 100, 10), 'OK', 'tell')
      await eventually(() => actor.state.get(a, 'chained'), 110, 'state written at the end of the chain')
    })
    for (const target of ['JsOther', 'PyOther']) {
      await check(`${type}: tail call to ${target}`, async () => {
        const id = fresh()
        equal(await actor.call(a, 'tailToActor', target, id, 41), { by: `${target}/${id}`, v: 42 }, 'reply')
      })
    }
    await check(`${type}: tail call to service ${service}`, async () => {
      equal(await actor.call(a, 'tailToService', service, 41), 42, 'reply')
    })
    await check(`${type}: removal`, async () => {
      const r = actor.proxy(type, fresh())
      equal(await actor.call(r, 'setField', 'doomed', 'yes'), 'ok', 'setField')
      equal(await actor.state.getAll(r), { activations: 1, doomed: 'yes' }, 'state before removal')
      equal(await actor.remove(r), 'OK', 'remove')
      await eventually(() => actor.state.getAll(r), {}, 'state after removal')
      // A removed actor comes back as a new instance with empty state.
      equal(await actor.call(r, 'getField', 'doomed'), 'absent', 'state of the new instance')
      equal(await actor.call(r, 'activationCount'), 1, 'activations of the new instance')
    })
  }
  await check('JsCounter: tail call to PyOther with a numeric actorId', async () => {
    const a = actor.proxy('JsCounter', fresh())
    const id = Number(fresh())
    equal(await actor.call(a, 'tailToActor', 'PyOther', id, 1), { by: `PyOther/${id}`, v: 2 }, 'reply')
  })
  await check('JsCounter: a method that throws is an express 404 (kar-sdk 1.3.10)', async () => {
    // The JS SDK's method route turns exceptions into next(): express answers
    // `404 Cannot POST <path>` (HTML) and parseActor throws that text.
    const a = actor.proxy('JsCounter', fresh())
    const err = await rejection(actor.call(a, 'fail', 'boom'), 'failing method')
    includes(err.message, `Cannot POST /kar/impl/v1/actor/JsCounter/${a.kar.id}/fail`, 'message')
  })
  await check('JsCounter: an exception in activate() counts as activated', async () => {
    // kar-sdk answers 200 {"error":true,...} for it, and only a status >= 400 is an
    // activation failure (spec 3.2): the method runs.
    const a = actor.proxy('JsCounter', `throw-on-activate-${fresh()}`)
    equal(await actor.call(a, 'whoami'), `JsCounter/${a.kar.id}`, 'whoami')
  })
  await check('PyCounter: a failed activation (422 for a non-integer id) is the call result', async () => {
    const a = actor.proxy('PyCounter', 'not-an-int')
    for (let i = 0; i < 2; i++) {
      const err = await rejection(actor.call(a, 'incr', 1), 'call of an actor that cannot be activated')
      includes(err.message, '"loc":["path","id"]', 'message (the FastAPI validation error)')
    }
  })
  await check('PyCounter: a method that throws gives the error envelope', async () => {
    // The Python SDK answers 200 {"error":true,"stack":...} (no message): parseActor
    // throws an Error with an empty message and the Python traceback as its stack.
    const a = actor.proxy('PyCounter', fresh())
    const err = await rejection(actor.call(a, 'fail', 'boom'), 'failing method')
    equal(err.message, '', 'message')
    includes(err.stack, 'ValueError: boom', 'stack')
    includes(err.stack, 'Traceback', 'stack')
    const thunk = await actor.asyncCall(a, 'fail', 'async boom')
    const awaited = await rejection(thunk(), 'awaited failing method')
    includes(awaited.stack, 'ValueError: async boom', 'stack of the awaited error')
  })
}

async function state (firstId) {
  let next = Number(firstId)
  for (const type of TYPES) {
    const a = actor.proxy(type, String(next++))
    const s = actor.state
    await check(`${type}: state get/set/contains/remove`, async () => {
      equal(await s.get(a, 'a'), undefined, 'get of an absent key')
      equal(await s.set(a, 'a', 1), undefined, 'set (new key)')
      equal(await s.get(a, 'a'), 1, 'get')
      equal(await s.set(a, 'a', 2), undefined, 'set (existing key)')
      equal(await s.get(a, 'a'), 2, 'get after update')
      const obj = { x: [1, 'two', null], y: { z: true }, w: 'h\u00e9llo \u2713' }
      equal(await s.set(a, 'obj', obj), undefined, 'set object')
      equal(await s.get(a, 'obj'), obj, 'get object')
      equal(await s.set(a, 's', 'text'), undefined, 'set string')
      equal(await s.get(a, 's'), 'text', 'get string')
      equal(await s.set(a, 'empty'), undefined, 'set with the default value')
      equal(await s.get(a, 'empty'), {}, 'get of the default value')
      // kar-sdk 1.3.10 reads `.status` of a Promise: contains is always false.
      equal(await s.contains(a, 'a'), false, 'contains (always false in this SDK)')
      equal(await s.getAll(a), { a: 2, obj, s: 'text', empty: {} }, 'getAll')
      equal(await s.remove(a, 'a'), 1, 'remove of a present key')
      equal(await s.remove(a, 'a'), 0, 'remove of an absent key')
      equal(await s.get(a, 'a'), undefined, 'get after remove')
    })
    await check(`${type}: state setMultiple/removeSome/update`, async () => {
      equal(await s.setMultiple(a, { m1: 1, m2: 'two', s: 'new' }), 2, 'setMultiple (added)')
      equal(await s.get(a, 's'), 'new', 'get after setMultiple')
      equal(await s.removeSome(a, ['m1', 'm2', 'missing']), 2, 'removeSome (removed)')
      equal(await s.update(a, {
        removals: ['s', 'missing'],
        updates: { u1: 1, u2: [2] },
        submapupdates: { sm: { k1: 'v1' } }
      }), { removed: 1, added: 3 }, 'update')
      equal(await s.update(a, { updates: { u1: 10 } }), { removed: 0, added: 0 }, 'update of an existing key')
      equal(await s.update(a, { ignored: 1 }), { removed: 0, added: 0 }, 'update with unknown members')
      equal(await s.getAll(a), { obj: { x: [1, 'two', null], y: { z: true }, w: 'h\u00e9llo \u2713' }, empty: {}, u1: 10, u2: [2], sm: { k1: 'v1' } }, 'getAll')
    })
    await check(`${type}: submap operations`, async () => {
      const m = s.submap
      equal(await m.get(a, 'map', 'b'), undefined, 'get of an absent subkey')
      equal(await m.contains(a, 'map', 'b'), false, 'contains of an absent subkey')
      equal(await m.set(a, 'map', 'b', 2), undefined, 'set b')
      equal(await m.set(a, 'map', 'a', 1), undefined, 'set a')
      equal(await m.set(a, 'map', 'c', { three: 3 }), undefined, 'set c')
      equal(await m.set(a, 'map', 'b', 20), undefined, 'set b again')
      equal(await m.get(a, 'map', 'b'), 20, 'get b')
      equal(await m.contains(a, 'map', 'a'), true, 'contains a')
      equal(await m.keys(a, 'map'), ['b', 'a', 'c'], 'keys (insertion order)')
      equal(await m.size(a, 'map'), 3, 'size')
      equal(await m.getAll(a, 'map'), { a: 1, b: 20, c: { three: 3 } }, 'getAll')
      equal(await m.setMultiple(a, 'map', { d: 4, a: 10 }), 1, 'setMultiple (added)')
      equal(await m.keys(a, 'map'), ['b', 'a', 'c', 'd'], 'keys after setMultiple')
      equal(await m.get(a, 'map', 'a'), 10, 'get a after setMultiple')
      equal(await m.remove(a, 'map', 'b'), 1, 'remove b')
      equal(await m.remove(a, 'map', 'b'), 0, 'remove b again')
      equal(await m.removeSome(a, 'map', ['c', 'zz']), 1, 'removeSome (removed)')
      equal(await m.keys(a, 'map'), ['a', 'd'], 'keys after removals')
      equal(await s.get(a, 'map'), undefined, 'a submap is not a flat key')
      equal(await s.getAll(a).then(all => all.map), { a: 10, d: 4 }, 'the submap in getAll')
      equal(await m.removeAll(a, 'map'), 2, 'removeAll')
      equal(await m.size(a, 'map'), 0, 'size after removeAll')
      equal(await m.keys(a, 'map'), [], 'keys after removeAll')
      equal(await m.getAll(a, 'map'), {}, 'getAll after removeAll')
      equal(await m.removeAll(a, 'map'), 0, 'removeAll of an empty submap')
    })
    await check(`${type}: flat keys and submaps do not collide; any character in keys`, async () => {
      const m = s.submap
      equal(await s.set(a, 'dual', 'flat'), undefined, 'set flat dual')
      equal(await m.set(a, 'dual', 'x', 1), undefined, 'set submap dual')
      equal(await m.keys(a, 'dual'), ['x'], 'keys of submap dual')
      equal(await m.removeAll(a, 'dual'), 1, 'removeAll of submap dual')
      equal(await s.get(a, 'dual'), 'flat', 'flat dual after the submap was cleared')
      equal(await s.set(a, 'with_under_score', 1), undefined, 'set a key with underscores')
      equal(await m.set(a, 'sub_map', 'k_1', 2), undefined, 'set a subkey with underscores')
      const all = await s.getAll(a)
      equal([all.dual, all.with_under_score, all.sub_map], ['flat', 1, { k_1: 2 }], 'getAll')
    })
    await check(`${type}: state of actors whose ids need escaping or contain underscores`, async () => {
      // kar-sdk puts ids into paths verbatim: the caller percent-encodes them.
      const odd = actor.proxy(type, encodeURIComponent(`odd/id with space?#_${a.kar.id}`))
      equal(await s.set(odd, 'k', 1), undefined, 'set')
      equal(await s.getAll(odd), { k: 1 }, 'getAll')
      // `<id>_<key>` would be the same string for both of these.
      const u = actor.proxy(type, `u${a.kar.id}`)
      const u1 = actor.proxy(type, `u${a.kar.id}_1`)
      equal(await s.set(u1, 'k', 'of u_1'), undefined, 'set on u_1')
      equal(await s.set(u, '1_k', 'of u'), undefined, 'set on u')
      equal(await s.getAll(u1), { k: 'of u_1' }, 'getAll of u_1')
      equal(await s.getAll(u), { '1_k': 'of u' }, 'getAll of u')
      for (const other of [odd, u1, u]) equal(await s.removeAll(other), 1, 'removeAll')
    })
    await check(`${type}: removeAll`, async () => {
      equal(await s.removeAll(a), 1, 'removeAll')
      equal(await s.removeAll(a), 0, 'removeAll without state')
      equal(await s.getAll(a), {}, 'getAll after removeAll')
      equal(await s.submap.keys(a, 'sm'), [], 'submaps are removed too')
    })
  }
}

async function deactBefore (type, id) {
  const a = actor.proxy(type, id)
  await check(`${type}/${id}: state and memo before the deactivation`, async () => {
    equal(await actor.call(a, 'setField', 'kept', { v: 'kept' }), 'ok', 'setField')
    equal(await actor.call(a, 'setMemo', 'in memory'), 'ok', 'setMemo')
    equal(await actor.call(a, 'getMemo'), 'in memory', 'getMemo')
    equal(await actor.call(a, 'activationCount'), 1, 'activations')
  })
}

async function deactAfter (type, id) {
  const a = actor.proxy(type, id)
  await check(`${type}/${id}: state kept across the deactivation`, async () => {
    equal(await actor.call(a, 'getField', 'kept'), { v: 'kept' }, 'getField')
    equal(await actor.call(a, 'getMemo'), 'none', 'getMemo of the new instance')
    equal(await actor.call(a, 'activationCount'), 2, 'activations')
  })
}

async function sequential (type, id, n) {
  await check(`${n} sequential calls to ${type}/${id}`, async () => {
    const a = actor.proxy(type, id)
    const started = Date.now()
    let count = 0
    for (let i = 0; i < n; i++) {
      const value = await actor.call(a, 'incr', i)
      if (value !== i + 1) throw new Error(`call ${i}: expected ${i + 1}, got ${JSON.stringify(value)}`)
      count++
    }
    equal(count, n, 'calls that succeeded')
    console.log(`${count} sequential calls took ${Date.now() - started} ms`)
  })
}

async function flows (type, actors, loops, calls, tag) {
  await check(`${loops} concurrent loops of ${calls} calls to ${actors} ${type} instances`, async () => {
    const started = Date.now()
    const loop = async l => {
      for (let c = 0; c < calls; c++) {
        const id = `a${(l + c) % actors}`
        const count = await actor.call(actor.proxy(type, id), 'work', `${tag}-${l}-${c}`)
        if (!Number.isInteger(count) || count < 1) throw new Error(`work on ${id} answered ${JSON.stringify(count)}`)
      }
    }
    await Promise.all(Array.from({ length: loops }, (_, l) => loop(l)))
    console.log(`${loops * calls} calls took ${Date.now() - started} ms`)
  })
}

async function deadlock (type, id) {
  await check(`${type}/${id}: rootCall to itself fails with the busy timeout`, async () => {
    const a = actor.proxy(type, id)
    const r = await actor.call(a, 'selfRootCall')
    console.log(`selfRootCall answered ${JSON.stringify(r)}`)
    equal(r.ok, false, 'the self call must fail')
    if (r.status !== undefined) equal(r.status, 500, 'status')
    includes(r.message, 'failed to send message: Possible deadlock: timed out waiting in instance queue', 'message')
    if (r.ms < 1900 || r.ms > 30000) throw new Error(`failed after ${r.ms} ms, expected about 2 s`)
    equal(await actor.call(a, 'incr', 1), 2, 'the instance still answers afterwards')
  })
}

async function philosophers (cafeId, tables, diners, servings, timeoutS) {
  const cafe = actor.proxy('Cafe', cafeId)
  const seated = []
  await check(`seat ${tables} tables of ${diners} philosophers, ${servings} servings each`, async () => {
    for (let t = 0; t < tables; t++) {
      seated.push(await actor.call(cafe, 'seatTable', diners, servings))
    }
    equal(new Set(seated).size, tables, 'distinct table ids')
  })
  const started = Date.now()
  for (const table of seated) {
    await check(`table ${table} served every serving`, async () => {
      const deadline = started + timeoutS * 1000
      let report
      for (;;) {
        report = await actor.call(cafe, 'report', table)
        if (report.violations.length > 0) throw new Error(`violations: ${JSON.stringify(report.violations)}`)
        if (report.done) break
        if (Date.now() > deadline) throw new Error(`not done after ${timeoutS} s; last report ${JSON.stringify(report)}`)
        await new Promise(resolve => setTimeout(resolve, 100))
      }
      console.log(`table ${table} done after ${Date.now() - started} ms: ${JSON.stringify(report.done)}`)
      equal(Object.keys(report.done.eaten).length, diners, 'philosophers')
      for (const [who, eaten] of Object.entries(report.done.eaten)) equal(eaten, servings, `servings eaten by ${who}`)
      equal(report.done.meals, diners * servings, 'meals served by the table')
      equal(report.done.pickups, 2 * diners * servings, 'fork pickups')
      // Table, philosophers and forks were removed: their state is gone.
      for (const [type, id] of report.done.removed) {
        await eventually(() => actor.state.getAll(actor.proxy(type, id)), {}, `state of removed ${type}/${id}`)
      }
      equal(report.done.removed.length, 1 + 2 * diners, 'removed actors')
    })
  }
  await check('no fork was ever held by two philosophers', async () => {
    const report = await actor.call(cafe, 'report', 'none')
    equal(report.violations, [], 'violations')
  })
}

async function main () {
  const [scenario, ...args] = process.argv.slice(2)
  console.log(`client starting: ${process.argv.slice(2).join(' ')}`)
  switch (scenario) {
    case 'invocations': await invocations(args[0], args[1]); break
    case 'state': await state(args[0]); break
    case 'deact-before': await deactBefore(args[0], args[1]); break
    case 'deact-after': await deactAfter(args[0], args[1]); break
    case 'sequential': await sequential(args[0], args[1], Number(args[2])); break
    case 'flows': await flows(args[0], Number(args[1]), Number(args[2]), Number(args[3]), args[4]); break
    case 'deadlock': await deadlock(args[0], args[1]); break
    case 'philosophers': await philosophers(args[0], Number(args[1]), Number(args[2]), Number(args[3]), Number(args[4])); break
    default:
      console.log(`FAIL unknown scenario ${JSON.stringify(scenario)}`)
      process.exit(2)
  }
  finish()
}

main().catch(err => {
  console.log(`FAIL unexpected error: ${err && err.stack ? err.stack : err}`)
  process.exit(1)
})

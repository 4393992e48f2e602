/*
 * The checks of the JS test clients (./client.js, ./actors/client.js): each check
 * prints `ok <check>`; the first failure prints `FAIL <check>: ...` (the message of a
 * mismatch, the stack of anything else) and exits 1; `finish` prints the count and
 * exits 0 (the SDK keeps its HTTP/2 session to the sidecar open).
 */

const assert = require('assert')

let passed = 0

async function check (name, fn) {
  try {
    await fn()
  } catch (err) {
    const detail = err instanceof assert.AssertionError ? err.message : (err && err.stack) || err
    console.log(`FAIL ${name}: ${detail}`)
    process.exit(1)
  }
  passed++
  console.log(`ok ${name}`)
}

function equal (actual, expected, what) {
  assert.deepStrictEqual(actual, expected, `${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`)
}

function includes (text, part, what) {
  if (typeof text !== 'string' || !text.includes(part)) {
    throw new Error(`${what}: expected a string containing ${JSON.stringify(part)}, got ${JSON.stringify(text)}`)
  }
}

function finish () {
  console.log(`all ${passed} checks passed`)
  process.exit(0)
}

module.exports = { check, equal, includes, finish }

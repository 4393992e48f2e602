// A client component: calls the greeter service through its own sidecar.
const { call, asyncCall, tell, sys } = require('kar-sdk')

async function main () {
  const text = await call('greeter', 'helloText', 'kar')
  console.log(`call helloText -> ${text}`)
  const json = await call('greeter', 'helloJson', { name: 'World' })
  console.log(`call helloJson -> ${JSON.stringify(json)}`)
  const promise = await asyncCall('greeter', 'helloJson', { name: 'Promise' })
  console.log(`asyncCall helloJson -> ${JSON.stringify(await promise())}`)
  console.log(`tell helloText -> ${await tell('greeter', 'helloText', 'fire and forget')}`)
  if (text !== 'Hello kar' || json.greetings !== 'Hello World') throw new Error('unexpected reply')
  await sys.shutdown()
}

main().catch(err => { console.error(err); process.exit(1) })

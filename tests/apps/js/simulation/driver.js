/*
 * Driver of the reminder simulation (kar-sdk 1.3.10). Run it under
 * `kar run -app APP -- node simulation/driver.js CELLS STEPS DELAY_MS REPORT_MS`; the
 * actors are served by ./server.js.
 *
 * Starts CELLS SimCell actors, each re-arming a one-shot reminder DELAY_MS ahead at
 * every one of its STEPS firings, and a periodic `report` reminder (every REPORT_MS)
 * on the reporter; waits until every cell told the reporter it finished, then checks
 * the count of every cell (actor state) and that no reminder is left, cancels the
 * report reminder and prints one result line:
 *   `simulation ok: <cells> cells x <steps> steps fired exactly, progress reported`
 * or `simulation FAILED: ...` (exit 1).
 */

const { actor } = require('kar-sdk')

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

async function main () {
  const [cells, steps, delayMs, reportMs] = process.argv.slice(2).map(Number)
  const reporter = actor.proxy('SimReporter', 'reporter')
  await actor.call(reporter, 'expect', cells)
  await actor.reminders.schedule(reporter, 'report', { id: 'report', targetTime: new Date(Date.now() + reportMs), period: `${reportMs}ms` })
  const ids = Array.from({ length: cells }, (_, i) => `c${i}`)
  const started = Date.now()
  await Promise.all(ids.map(id => actor.call(actor.proxy('SimCell', id), 'start', steps, delayMs)))
  console.log(`started ${cells} cells in ${Date.now() - started} ms`)

  let progress = await actor.call(reporter, 'progress')
  while (progress.finished < cells) {
    await sleep(200)
    progress = await actor.call(reporter, 'progress')
  }
  const elapsed = Date.now() - started
  const counts = await Promise.all(ids.map(id => actor.call(actor.proxy('SimCell', id), 'count')))
  const wrong = ids.flatMap((id, i) => counts[i] === steps ? [] : [`${id}=${counts[i]}`])
  const left = (await Promise.all(ids.map(id => actor.reminders.get(actor.proxy('SimCell', id))))).filter(r => r.length > 0)
  await actor.reminders.cancel(reporter, 'report')
  progress = await actor.call(reporter, 'progress')
  if (wrong.length > 0 || left.length > 0 || progress.reports < 1) {
    console.log(`simulation FAILED: counts ${wrong.slice(0, 10).join(' ')} (${wrong.length} wrong), ${left.length} cells with reminders left, ${progress.reports} reports`)
    process.exit(1)
  }
  console.log(`simulation took ${elapsed} ms, ${progress.reports} reports`)
  console.log(`simulation ok: ${cells} cells x ${steps} steps fired exactly, progress reported`)
}

main().then(() => process.exit(0), e => {
  console.log(`simulation FAILED: ${e.message}`)
  process.exit(1)
})

/*
 * The actors of the reminder simulation, written with the published kar-sdk (1.3.10).
 * Run it under `kar run -h2c -actors SimCell,SimReporter ... -- node simulation/server.js`
 * (several such components may share the types: placement spreads the cells).
 *
 *   SimCell.activate()             prints `activated <id>` (which component hosts it)
 *   SimCell.start(steps, delayMs)  resets the cell's count (actor state) and schedules
 *                                  its one-shot reminder `step`, delayMs from now
 *   SimCell.step()                 one firing: count + 1 in actor state; re-arms `step`
 *                                  delayMs ahead until `steps` firings, then tells the
 *                                  reporter it finished. Prints `OVERSHOOT <id>` if it
 *                                  fires more often than asked
 *   SimCell.count()                the firings recorded in actor state
 *   SimReporter.expect(n)          resets the reporter: n cells to wait for
 *   SimReporter.finished(id)       records a finished cell (a submap of actor state)
 *   SimReporter.report()           the periodic reminder: records and prints progress,
 *                                  `report #<k>: <finished>/<n> cells finished`
 *   SimReporter.progress()         {finished, expected, reports}
 */

process.noDeprecation = true

const express = require('express')
const { actor, sys } = require('kar-sdk')

class SimCell {
  activate () { console.log(`activated ${this.kar.id}`) }

  async start (steps, delayMs) {
    await actor.state.setMultiple(this, { count: 0, steps, delayMs })
    await this.arm(delayMs)
  }

  arm (delayMs) {
    return actor.reminders.schedule(this, 'step', { id: 'step', targetTime: new Date(Date.now() + delayMs) })
  }

  async step () {
    const { count, steps, delayMs } = await actor.state.getAll(this)
    const now = count + 1
    await actor.state.set(this, 'count', now)
    if (now > steps) {
      console.log(`OVERSHOOT ${this.kar.id} ${now}/${steps}`)
    } else if (now < steps) {
      await this.arm(delayMs)
    } else {
      await actor.tell(actor.proxy('SimReporter', 'reporter'), 'finished', this.kar.id)
    }
  }

  async count () {
    return (await actor.state.get(this, 'count')) || 0
  }
}

class SimReporter {
  async expect (n) {
    await actor.state.removeAll(this)
    await actor.state.setMultiple(this, { expected: n, reports: 0 })
  }

  async finished (id) {
    await actor.state.submap.set(this, 'finished', id, true)
  }

  async report () {
    const finished = await actor.state.submap.size(this, 'finished')
    const { expected, reports } = await actor.state.getAll(this)
    await actor.state.set(this, 'reports', reports + 1)
    await actor.state.submap.set(this, 'history', String(reports + 1), finished)
    console.log(`report #${reports + 1}: ${finished}/${expected} cells finished`)
  }

  async progress () {
    const finished = await actor.state.submap.size(this, 'finished')
    const { expected, reports } = await actor.state.getAll(this)
    return { finished, expected, reports }
  }
}

const app = express()
app.use(sys.actorRuntime({ SimCell, SimReporter }))
const port = Number(process.env.KAR_APP_PORT)
const host = process.env.KAR_APP_HOST || '127.0.0.1'
sys.h2c(app).listen(port, host, () => console.log(`simulation server listening on ${host}:${port}`))

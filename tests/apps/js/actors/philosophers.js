/*
 * Dining philosophers with actors, modelled on KAR's `actors-dp-js` example, written with
 * the published kar-sdk (1.3.10). Run it under
 *   kar run -h2c -actors Cafe,Table,Philosopher,Fork ... -- node actors/philosophers.js
 * and drive it with `node actors/client.js philosophers CAFE TABLES DINERS SERVINGS TIMEOUT_S`.
 *
 * A Cafe seats Tables; a Table seats DINERS Philosophers around DINERS Forks and acts as
 * the waiter: a hungry philosopher is queued and, once both of its forks are free in the
 * table's books, told to eat. The philosopher then picks up both forks (calls), eats
 * (its serving count is actor state), puts them down and tail-calls the table to report;
 * the table frees the forks, queues the philosopher again until it ate SERVINGS times, and
 * grants the forks to the next waiting philosophers. When everybody is done the table
 * collects the results, removes the philosophers, the forks and itself, and tail-calls
 * the cafe with its report.
 *
 * Every fork records its holder in its state. Picking up a fork that is held, or putting
 * down a fork one does not hold, can only happen if two invocations of one actor
 * overlapped or a state update was lost: it is reported to the cafe as a violation
 * (and printed as a `VIOLATION` line), which fails the test.
 *
 * Ids: cafe `C`, table `C.tK`, philosopher `C.tK.pI`, fork `C.tK.fI`.
 */

// spdy (behind sys.h2c) uses APIs Node 20 deprecates; the warnings would only be noise.
process.noDeprecation = true

const express = require('express')
const { actor, sys } = require('kar-sdk')

const cafeOf = id => actor.proxy('Cafe', String(id).split('.')[0])

async function violation (self, message) {
  console.log(`VIOLATION ${message}`)
  await actor.tell(cafeOf(self.kar.id), 'violation', message)
}

class Cafe {
  async seatTable (diners, servings) {
    const tables = ((await actor.state.get(this, 'tables')) || 0) + 1
    await actor.state.set(this, 'tables', tables)
    const table = actor.proxy('Table', `${this.kar.id}.t${tables}`)
    // The table's `prepare` answers the caller of seatTable.
    return actor.tailCall(table, 'prepare', diners, servings)
  }

  async tableDone (table, report) {
    console.log(`table ${table} done: ${JSON.stringify(report)}`)
    await actor.state.submap.set(this, 'done', table, report)
  }

  async violation (message) {
    const n = await actor.state.submap.size(this, 'violations')
    await actor.state.submap.set(this, 'violations', String(n), message)
  }

  async report (table) {
    const done = await actor.state.submap.get(this, 'done', table)
    const violations = await actor.state.submap.getAll(this, 'violations')
    return { done: done === undefined ? null : done, violations: Object.values(violations) }
  }
}

class Table {
  // The table's books live in its state (reloaded if it was deactivated meanwhile).
  async activate () {
    const all = await actor.state.getAll(this)
    this.books = all.diners ? all : null
  }

  async save () {
    const { holders, waiting, finished, meals } = this.books
    await actor.state.setMultiple(this, { holders, waiting, finished, meals })
  }

  forksOf (diner) {
    const i = this.books.diners.indexOf(diner)
    return [this.books.forks[i], this.books.forks[(i + 1) % this.books.forks.length]]
  }

  async prepare (diners, servings) {
    const id = this.kar.id
    const names = Array.from({ length: diners }, (_, i) => `${id}.p${i}`)
    const forks = Array.from({ length: diners }, (_, i) => `${id}.f${i}`)
    this.books = { diners: names, forks, servings, holders: {}, waiting: [], finished: {}, meals: 0 }
    await actor.state.setMultiple(this, this.books)
    for (const diner of names) {
      const [first, second] = this.forksOf(diner)
      await actor.tell(this, actor.proxy('Philosopher', diner), 'joinTable', id, first, second, servings)
    }
    return id
  }

  // Gives both forks to every waiting philosopher (first come first served) whose
  // forks are free, and tells it to eat.
  async grant () {
    const granted = []
    for (const diner of [...this.books.waiting]) {
      const [first, second] = this.forksOf(diner)
      if (!this.books.holders[first] && !this.books.holders[second]) {
        this.books.holders[first] = diner
        this.books.holders[second] = diner
        this.books.waiting = this.books.waiting.filter(d => d !== diner)
        granted.push(diner)
      }
    }
    await this.save()
    for (const diner of granted) {
      await actor.tell(this, actor.proxy('Philosopher', diner), 'eat')
    }
  }

  async hungry (diner) {
    this.books.waiting.push(diner)
    await this.grant()
  }

  async done (diner, eaten) {
    for (const fork of this.forksOf(diner)) {
      if (this.books.holders[fork] !== diner) {
        await violation(this, `${diner} returned ${fork} held by ${this.books.holders[fork]}`)
      }
      delete this.books.holders[fork]
    }
    this.books.meals++
    if (eaten >= this.books.servings) {
      this.books.finished[diner] = eaten
    } else {
      this.books.waiting.push(diner)
    }
    await this.grant()
    if (Object.keys(this.books.finished).length === this.books.diners.length) {
      return actor.tailCall(this, 'busTable')
    }
  }

  async busTable () {
    const report = { eaten: {}, meals: this.books.meals, pickups: 0, removed: [] }
    for (const diner of this.books.diners) {
      const philosopher = actor.proxy('Philosopher', diner)
      report.eaten[diner] = await actor.call(this, philosopher, 'eaten')
      await actor.remove(philosopher)
      report.removed.push(['Philosopher', diner])
    }
    for (const name of this.books.forks) {
      const fork = actor.proxy('Fork', name)
      const holder = await actor.call(this, fork, 'holder')
      if (holder !== 'nobody') await violation(this, `${name} is still held by ${holder}`)
      report.pickups += await actor.call(this, fork, 'pickups')
      await actor.remove(fork)
      report.removed.push(['Fork', name])
    }
    // Runs once this method has finished (the removal queues behind it).
    await actor.remove(this)
    report.removed.push(['Table', this.kar.id])
    return actor.tailCall(cafeOf(this.kar.id), 'tableDone', this.kar.id, report)
  }
}

class Philosopher {
  async activate () {
    Object.assign(this, await actor.state.getAll(this))
  }

  async joinTable (table, first, second, servings) {
    Object.assign(this, { table, first, second, servings, servingsEaten: 0 })
    await actor.state.setMultiple(this, { table, first, second, servings, servingsEaten: 0 })
    return actor.tailCall(actor.proxy('Table', table), 'hungry', this.kar.id)
  }

  async eat () {
    const me = this.kar.id
    const first = actor.proxy('Fork', this.first)
    const second = actor.proxy('Fork', this.second)
    await actor.call(this, first, 'pickUp', me)
    await actor.call(this, second, 'pickUp', me)
    this.servingsEaten++
    await actor.state.set(this, 'servingsEaten', this.servingsEaten)
    await actor.call(this, second, 'putDown', me)
    await actor.call(this, first, 'putDown', me)
    return actor.tailCall(actor.proxy('Table', this.table), 'done', me, this.servingsEaten)
  }

  eaten () { return this.servingsEaten }
}

class Fork {
  async pickUp (who) {
    const holder = await actor.state.get(this, 'holder')
    if (holder !== undefined) await violation(this, `${who} picked up ${this.kar.id} held by ${holder}`)
    const pickups = ((await actor.state.get(this, 'pickups')) || 0) + 1
    await actor.state.setMultiple(this, { holder: who, pickups })
    return true
  }

  async putDown (who) {
    const holder = await actor.state.get(this, 'holder')
    if (holder !== who) await violation(this, `${who} put down ${this.kar.id} held by ${holder}`)
    await actor.state.remove(this, 'holder')
    return true
  }

  async holder () {
    const holder = await actor.state.get(this, 'holder')
    return holder === undefined ? 'nobody' : holder
  }

  async pickups () {
    return (await actor.state.get(this, 'pickups')) || 0
  }
}

const app = express()
app.use(sys.actorRuntime({ Cafe, Table, Philosopher, Fork }))

const port = Number(process.env.KAR_APP_PORT)
const host = process.env.KAR_APP_HOST || '127.0.0.1'
sys.h2c(app).listen(port, host, () => {
  console.log(`philosophers listening on ${host}:${port} (HTTP/1.1 + h2c)`)
})

-- The embedded store: one SQLite database shared by every kar process of the user.
-- Every row carries its application name: applications never see each other's rows.
--
-- This is version 1 of the schema: later changes are migrations in schema.rs (do
-- not edit this file: databases of version 1 exist).

CREATE TABLE IF NOT EXISTS members (
    app TEXT NOT NULL,
    node TEXT NOT NULL,
    member BLOB NOT NULL,          -- postcard-encoded kar_protocol::Member
    poke_port INTEGER NOT NULL,    -- loopback port woken after transitions
    PRIMARY KEY (app, node)
) WITHOUT ROWID;

-- Names (services and actor types) offered by members: the routing table.
CREATE TABLE IF NOT EXISTS offers (
    app TEXT NOT NULL,
    name TEXT NOT NULL,
    node TEXT NOT NULL,
    PRIMARY KEY (app, name, node)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS mesh (
    app TEXT PRIMARY KEY,
    version INTEGER NOT NULL       -- bumped by every join, leave and death
) WITHOUT ROWID;

-- One row per live request; seq orders requests by arrival (a new row's seq is
-- above every live row's, which is all the ordering needs: no AUTOINCREMENT, whose
-- bookkeeping would cost one more page per transition).
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY,
    app TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,            -- routing name of the current target
    actor_type TEXT,               -- the target actor, for actor requests
    actor_id TEXT,
    status TEXT NOT NULL,          -- 'queued' | 'parked' | 'held' | 'done' ('held': a
                                   -- re-delivery waiting for its children, see remove_member)
    kind INTEGER NOT NULL,         -- 0 call, 1 tell, 2 promise
    assignee TEXT,                 -- executing node while queued
    caller TEXT NOT NULL,
    record BLOB NOT NULL,          -- postcard-encoded kar_protocol::Request
    outcome BLOB,                  -- postcard-encoded kar_protocol::Outcome once done
    parent TEXT,                   -- id of the request that made this one, if known
    UNIQUE (app, id)
);
-- Partial indexes: each transition of the hot path (enqueue, complete, forget)
-- touches at most one of them; they serve the rarer ones (a member's death, the
-- adoption of parked requests).
DROP INDEX IF EXISTS requests_by_assignee;
DROP INDEX IF EXISTS requests_by_caller;
DROP INDEX IF EXISTS requests_parked;
CREATE INDEX IF NOT EXISTS requests_queued_on ON requests (app, assignee) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS requests_done_for ON requests (app, caller) WHERE status = 'done';
CREATE INDEX IF NOT EXISTS requests_parked_for ON requests (app, name) WHERE status = 'parked';
-- The children index (app, parent) is created by `v1_tables` in schema.rs: databases
-- of earlier versions get their `parent` column there first.

-- Inboxes: kind 0 = execute request, 1 = request completed; version 2 adds kind 2 =
-- signal, with a `payload` column (see schema.rs and inbox.rs).
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    app TEXT NOT NULL,
    node TEXT NOT NULL,
    kind INTEGER NOT NULL,
    request_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_by_node ON inbox (app, node, seq);

-- Actor placement: which member hosts an actor (compare-and-set on first use).
CREATE TABLE IF NOT EXISTS placements (
    app TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    node TEXT NOT NULL,
    PRIMARY KEY (app, actor_type, actor_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS placements_by_node ON placements (app, node);

-- Actor state: flat entries and submap entries never collide (spec §9.4).
CREATE TABLE IF NOT EXISTS state_flat (
    app TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (app, actor_type, actor_id, key)
) WITHOUT ROWID;

-- rowid keeps submap entries in insertion order (spec §2.4 `keys`).
CREATE TABLE IF NOT EXISTS state_submap (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    app TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    key TEXT NOT NULL,
    subkey TEXT NOT NULL,
    value BLOB NOT NULL,
    UNIQUE (app, actor_type, actor_id, key, subkey)
);

-- Actor reminders (spec §2.5): one row per reminder, found by due time through the
-- index, so firing never scans the reminders that are not due.
CREATE TABLE IF NOT EXISTS reminders (
    app TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    id TEXT NOT NULL,
    path TEXT NOT NULL,
    due INTEGER NOT NULL,          -- target time, Unix ms
    target_text TEXT,              -- targetTime as given, until the first periodic advance
    period INTEGER NOT NULL,       -- ns, 0 = one-shot
    data BLOB NOT NULL,            -- JSON encoding of the scheduled data
    PRIMARY KEY (app, actor_type, actor_id, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS reminders_by_due ON reminders (app, due);

-- Topics (spec §2.7) are global: no app column. `last` is the offset of the newest
-- event ever published (kept when the topic is deleted, so that offsets only grow);
-- `live` says whether the topic exists.
CREATE TABLE IF NOT EXISTS topics (
    topic TEXT PRIMARY KEY,
    last INTEGER NOT NULL,
    live INTEGER NOT NULL
) WITHOUT ROWID;

-- The events of every topic, by offset (retained: no trimming yet).
CREATE TABLE IF NOT EXISTS events (
    topic TEXT NOT NULL,
    offset INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (topic, offset)
) WITHOUT ROWID;

-- Event subscriptions of actors (spec §2.6): `position` is the offset of the last
-- event delivered, `inflight` the id of the request delivering it until it finished
-- (decision §9.2: one event at a time per subscription).
CREATE TABLE IF NOT EXISTS subscriptions (
    app TEXT NOT NULL,
    actor_type TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    id TEXT NOT NULL,
    path TEXT NOT NULL,
    topic TEXT NOT NULL,
    content_type TEXT NOT NULL,
    grp TEXT NOT NULL,
    oldest INTEGER NOT NULL,
    position INTEGER NOT NULL,
    inflight TEXT,
    PRIMARY KEY (app, actor_type, actor_id, id)
) WITHOUT ROWID;

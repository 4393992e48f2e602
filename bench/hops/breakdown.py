#!/usr/bin/env python3
"""Per-hop breakdown of the sequential actor calls of kar-bench (issue 11), from the
timestamps an instrumented build writes.

The instrumentation is a patch, not part of kar (a mark per hop of every call):
    git apply bench/hops/instrument.patch
    cargo build --release -p kar -p kar-bench
    mkdir /tmp/hops && KAR_HOP_TRACE=/tmp/hops target/release/kar-bench \
        --stores embedded --stateful none --calls 1000 --seconds 0
    bench/hops/breakdown.py /tmp/hops 200 1000     # skip the 200 warm-up calls
    git apply -R bench/hops/instrument.patch
Each sidecar appends `<unix ns> <pid> <hop> <request id>` lines to <dir>/<pid>.hops
(buffered in memory, written by a thread every 200 ms). Both sidecars run on one
host, so their wall clocks compare. Marks without a request id (the HTTP route of
the client sidecar, the component call, the embedded store's poke wake-ups) are
paired by order, which holds for sequential calls only. `poked` exists on the
embedded store only (Redis delivers through its stream read).

Usage: breakdown.py <dir> [skip] [count]
"""
import sys, glob, statistics, collections
d = sys.argv[1]; skip = int(sys.argv[2]) if len(sys.argv) > 2 else 200; n = int(sys.argv[3]) if len(sys.argv) > 3 else 10**9
procs = collections.defaultdict(list)
for f in glob.glob(d + '/*.hops'):
    for line in open(f):
        t, pid, what, *rest = line.split()
        procs[pid].append((int(t), what, rest[0] if rest else ''))
client = server = None
for pid, ev in procs.items():
    ev.sort()
    kinds = {w for _, w, _ in ev}
    if 'c.http_in' in kinds: client = pid
    if 's.invoke' in kinds: server = pid
C, S = procs[client], procs[server]
# server: per id events, anonymous ones paired by order
srv = collections.defaultdict(dict)
last_poked = None; cur = None
for t, w, i in S:
    if w == 'poked': last_poked = t
    elif w == 's.inbox':
        srv[i]['s.inbox'] = t; srv[i]['s.poked'] = last_poked; cur = i
    elif w in ('s.task', 's.complete', 's.completed'):
        srv[i][w] = t; cur = i
    elif w in ('s.invoke', 's.invoked') and cur and w not in srv[cur]:
        srv[cur][w] = t
calls = []
http_in = None; last_poked = None; pending = {}
for t, w, i in C:
    if w == 'c.http_in': http_in = t
    elif w == 'poked': last_poked = t
    elif w == 'c.accept':
        pending[i] = {'c.http_in': http_in, 'c.accept': t}; http_in = None
    elif w in ('c.enqueued',) and i in pending: pending[i][w] = t
    elif w == 'c.inbox' and i in pending: pending[i][w] = t; pending[i]['c.poked'] = last_poked
    elif w == 'c.woken' and i in pending: pending[i][w] = t; last = i
    elif w == 'c.http_out':
        for k, v in pending.items():
            if 'c.woken' in v and 'c.http_out' not in v and v.get('c.http_in'):
                v['c.http_out'] = t; calls.append((k, v)); break
        pending = {k: v for k, v in pending.items() if 'c.http_out' not in v}
rows = []
for i, c in calls:
    s = srv.get(i, {})
    e = {**c, **s}
    need = ['c.http_in','c.accept','c.enqueued','s.inbox','s.task','s.invoke','s.invoked','s.complete','s.completed','c.inbox','c.woken','c.http_out']
    if all(e.get(k) for k in need): rows.append(e)
rows = rows[skip:skip+n]
hops = [
 ('client sidecar: HTTP request in -> request made (body, route, record)', 'c.http_in', 'c.accept'),
 ('accept transition (store enqueue, as the client sees it)', 'c.accept', 'c.enqueued'),
 ('routing: request made -> server poked', 'c.accept', 's.poked'),
 ('server: poke -> inbox read returns the request', 's.poked', 's.inbox'),
 ('= request made -> in the server\'s runtime (enqueue + routing + inbox read)', 'c.accept', 's.inbox'),
 ('server: inbox -> execution task runs (spawn)', 's.inbox', 's.task'),
 ('server: start (actor lock, activation check, invocation)', 's.task', 's.invoke'),
 ('component call (HTTP to the component and back)', 's.invoke', 's.invoked'),
 ('server: reply -> completion starts', 's.invoked', 's.complete'),
 ('completion transition (store complete)', 's.complete', 's.completed'),
 ('reply path: completion starts -> client poked', 's.complete', 'c.poked'),
 ('client: poke -> inbox read returns the outcome', 'c.poked', 'c.inbox'),
 ('= completion starts -> outcome in the client\'s runtime (complete + reply routing + inbox read)', 's.complete', 'c.inbox'),
 ('client: outcome delivered -> waiting call woken', 'c.inbox', 'c.woken'),
 ('client: woken -> HTTP response built', 'c.woken', 'c.http_out'),
 ('TOTAL inside the client sidecar (HTTP in -> response built)', 'c.http_in', 'c.http_out'),
]
print(f"{len(rows)} calls (after skipping {skip})")
print("| hop | p50 (us) | mean (us) | p90 (us) |\n|---|---:|---:|---:|")
for name, a, b in hops:
    v = [(e[b] - e[a]) / 1000 for e in rows if e.get(a) and e.get(b)]
    if not v: print(f"| {name} | - | - | - |"); continue
    v.sort()
    print(f"| {name} | {v[len(v)//2]:.0f} | {statistics.mean(v):.0f} | {v[int(len(v)*0.9)]:.0f} |")

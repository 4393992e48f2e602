//! The hash maps on the per-call path (requests in flight, waiting callers, actor
//! locks and instances) use foldhash instead of std's SipHash: a few times fewer
//! instructions per lookup. SipHash's strength is resistance to collision floods from
//! keys an attacker picks; here the keys are request ids, flow ids and lock tickets
//! that this runtime generates (UUIDs, counters) and actor references that only the
//! application's own components name, and foldhash's per-process random seed still
//! keeps collisions from being precomputed.

/// A `HashMap` with foldhash's fast hasher (see the module comment for why).
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

//! Free loopback ports.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// A loopback TCP port that is free right now and was not handed out before in this
/// process.
///
/// Ports come from 20000..32000, below Linux's ephemeral range (32768..60999), so a
/// port chosen here cannot be taken meanwhile by a process binding port 0 (a `kar run`
/// without `-runtime_port`, an outgoing connection).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let given = given.get_or_insert_with(HashSet::new);
    for _ in 0..1000 {
        let port = rand::random_range(20000..32000);
        if given.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return port;
        }
    }
    panic!("no free loopback port in 20000..32000");
}

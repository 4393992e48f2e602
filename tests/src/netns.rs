//! Simulated hosts: one network namespace per host, each joined by a veth pair to a
//! bridge in a namespace of its own, on the private subnet 10.77.0.0/24 (it exists
//! only inside the test's namespaces: the machine's own interfaces and addresses are
//! never touched). Faults are iptables rules inside a host's namespace, so loopback
//! (a sidecar and its component) keeps working while the host is cut off.
//!
//! Creating namespaces needs root (CI runs as root); [`Net::create`] says why it
//! cannot, and the tests skip with that message.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// One simulated host.
pub struct Host {
    /// Its namespace.
    pub ns: String,
    /// Its address on the bridge.
    pub ip: String,
}

/// How a host is cut off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Nothing in or out (but loopback): a partition with packets dropped.
    Both,
    /// Nothing out: what it sends is lost, what others send arrives.
    Outbound,
    /// Nothing in.
    Inbound,
}

/// The namespaces of one test: a bridge and `n` hosts (10.77.0.1, .2, ...).
pub struct Net {
    bridge: String,
    pub hosts: Vec<Host>,
}

fn run(args: &[&str]) -> Result<(), String> {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl Net {
    /// Creates the bridge and `hosts` hosts, or says why it cannot (not root, no
    /// `ip`, namespaces not permitted here).
    pub fn create(hosts: usize) -> Result<Net, String> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        // Interface names are at most 15 bytes: `k<5 digits><2>h<n>v`.
        let id = format!(
            "k{:05}{:02}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed) % 100
        );
        let bridge = format!("{id}b");
        run(&["ip", "netns", "add", &bridge])?;
        let mut net = Net {
            bridge: bridge.clone(),
            hosts: Vec::new(),
        };
        let ns = |args: &[&str]| {
            let mut all = vec!["ip", "netns", "exec", bridge.as_str()];
            all.extend_from_slice(args);
            run(&all)
        };
        ns(&["ip", "link", "add", "br0", "type", "bridge"])?;
        ns(&["ip", "link", "set", "br0", "up"])?;
        ns(&["ip", "link", "set", "lo", "up"])?;
        for n in 0..hosts {
            let host_ns = format!("{id}h{n}");
            run(&["ip", "netns", "add", &host_ns])?;
            net.hosts.push(Host {
                ns: host_ns.clone(),
                ip: format!("10.77.0.{}", n + 1),
            });
            let (inner, outer) = (format!("{id}h{n}i"), format!("{id}h{n}o"));
            run(&[
                "ip", "link", "add", &inner, "netns", &host_ns, "type", "veth", "peer", "name",
                &outer, "netns", &bridge,
            ])?;
            ns(&["ip", "link", "set", &outer, "master", "br0"])?;
            ns(&["ip", "link", "set", &outer, "up"])?;
            let in_host = |args: &[&str]| {
                let mut all = vec!["ip", "netns", "exec", host_ns.as_str()];
                all.extend_from_slice(args);
                run(&all)
            };
            in_host(&["ip", "link", "set", "lo", "up"])?;
            in_host(&[
                "ip",
                "addr",
                "add",
                &format!("10.77.0.{}/24", n + 1),
                "dev",
                &inner,
            ])?;
            in_host(&["ip", "link", "set", &inner, "up"])?;
        }
        Ok(net)
    }

    /// `ip netns exec <host's namespace>`: the prefix of a command run on `host`.
    pub fn exec_prefix(&self, host: usize) -> Vec<String> {
        ["ip", "netns", "exec", &self.hosts[host].ns]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn iptables(&self, host: usize, args: &[&str]) {
        let mut all = vec![
            "ip",
            "netns",
            "exec",
            self.hosts[host].ns.as_str(),
            "iptables",
        ];
        all.extend_from_slice(args);
        if let Err(e) = run(&all) {
            panic!("{e}");
        }
    }

    /// Cuts `host` off (iptables DROP in its namespace; loopback stays open).
    pub fn cut(&self, host: usize, cut: Cut) {
        self.heal(host);
        if cut != Cut::Outbound {
            self.iptables(host, &["-A", "INPUT", "!", "-i", "lo", "-j", "DROP"]);
        }
        if cut != Cut::Inbound {
            self.iptables(host, &["-A", "OUTPUT", "!", "-o", "lo", "-j", "DROP"]);
        }
    }

    /// Removes every cut of `host`.
    pub fn heal(&self, host: usize) {
        self.iptables(host, &["-F", "INPUT"]);
        self.iptables(host, &["-F", "OUTPUT"]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes its interfaces (and the veth peers).
        for host in &self.hosts {
            let _ = run(&["ip", "netns", "del", &host.ns]);
        }
        let _ = run(&["ip", "netns", "del", &self.bridge]);
    }
}

//! The bank's processes: server components restartable with the same command, the
//! clients, the audit, and the kills.

use crate::deaths::{Death, Deaths};
use kar_tests::{free_port, monotonic_ns, node, poll_until, Component, Process, Store};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Accounts A0..A9.
pub const ACCOUNTS: usize = 10;

/// How long a (re)started server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How the kill -9 of a server component is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KillMode {
    /// `kar run` alone: its app dies through its parent-death signal.
    Sidecar,
    /// The app alone: `kar run` exits with it.
    App,
    /// The whole process group at once.
    Group,
}

impl KillMode {
    pub fn random() -> KillMode {
        [KillMode::Sidecar, KillMode::App, KillMode::Group][rand::random_range(0..3)]
    }
}

/// One kill -9 done by the test.
#[derive(Debug)]
pub struct Kill {
    pub slot: usize,
    pub mode: KillMode,
    pub death: Death,
}

/// What a server is started with besides the common command line.
#[derive(Clone, Default)]
pub struct ServerConfig {
    /// Environment variables, dropped by [`Bank::restart`] with `disarm`.
    pub env: Vec<(String, String)>,
    /// Extra `kar run` flags.
    pub args: Vec<String>,
    /// What runs `kar` (`ip netns exec NS`: a simulated host), if anything.
    pub within: Vec<String>,
}

/// A server component: restarted with the same command (ports included).
struct Slot {
    app_port: u16,
    runtime_port: u16,
    config: ServerConfig,
    process: Option<Process>,
    app_pid: u32,
    starts: usize,
}

/// One bank application: its servers, its event log and the processes that ended.
pub struct Bank<'a> {
    store: &'a Store,
    pub app: String,
    dir: TempDir,
    pub deaths: Deaths,
    slots: Vec<Slot>,
    /// Processes that were killed or crashed: their output is shown if the test fails.
    retired: Vec<Process>,
    pub kills: Vec<Kill>,
    /// What runs the clients' and the audit's `kar` (see [`ServerConfig::within`]).
    pub clients_within: Vec<String>,
    /// Clients send keyed requests and retry what a store outage fails
    /// (`BANK_KEYED` of bank/client.js).
    pub keyed_clients: bool,
}

impl<'a> Bank<'a> {
    /// Starts one server component per config.
    pub fn start(store: &'a Store, app: &str, configs: Vec<ServerConfig>) -> Bank<'a> {
        let dir = tempfile::Builder::new()
            .prefix("kar-bank-")
            .tempdir()
            .unwrap();
        let mut bank = Bank {
            store,
            app: app.to_string(),
            dir,
            deaths: Deaths::default(),
            slots: configs
                .into_iter()
                .map(|config| Slot {
                    app_port: free_port(),
                    runtime_port: free_port(),
                    config,
                    process: None,
                    app_pid: 0,
                    starts: 0,
                })
                .collect(),
            retired: Vec::new(),
            kills: Vec::new(),
            clients_within: Vec::new(),
            keyed_clients: false,
        };
        for slot in 0..bank.slots.len() {
            bank.spawn_server(slot);
        }
        for slot in 0..bank.slots.len() {
            bank.await_server(slot);
        }
        bank
    }

    /// The event log every app process appends to (kept, with the audit, if
    /// `KAR_BANK_KEEP` is set).
    pub fn log(&self) -> PathBuf {
        self.dir.path().join("events.log")
    }

    fn stop_file(&self) -> PathBuf {
        self.dir.path().join("stop")
    }

    pub fn servers(&self) -> usize {
        self.slots.len()
    }

    pub fn server(&self, slot: usize) -> &Process {
        self.slots[slot].process.as_ref().expect("a running server")
    }

    /// Starts `kar run` for `slot`.
    fn spawn_server(&mut self, slot: usize) {
        let log = self.log();
        let s = &mut self.slots[slot];
        s.starts += 1;
        let mut component = Component::new(self.store, &self.app)
            .name(&format!("bank server {slot} (start {})", s.starts))
            .actors(&["Account"])
            .h2c()
            .app_port(s.app_port)
            .runtime_port(s.runtime_port)
            .env("BANK_LOG", log)
            .command(node("bank/server.js", &[]))
            // This test proves that every step cut by a death is retried; the attempt
            // cap (tests/poison.rs) would pause a step that random kills hit 3 times.
            .arg("-max_attempts")
            .arg("0");
        for (key, value) in &s.config.env {
            component = component.env(key, value);
        }
        for arg in &s.config.args {
            component = component.arg(arg);
        }
        if !s.config.within.is_empty() {
            component = component.within(s.config.within.clone());
        }
        s.process = Some(component.spawn());
    }

    /// Waits until the server of `slot` listens, then watches its app's death.
    fn await_server(&mut self, slot: usize) {
        let s = &mut self.slots[slot];
        let process = s.process.as_mut().unwrap();
        if !process.wait_for_output("bank server ", START_TIMEOUT) {
            process.kill();
            panic!(
                "{} did not start; output:\n{}",
                process.name(),
                process.output()
            );
        }
        let children = process.child_pids();
        assert_eq!(
            children.len(),
            1,
            "{}: children {children:?}",
            process.name()
        );
        s.app_pid = children[0];
        self.deaths.watch(s.app_pid);
    }

    /// Restarts the server of `slot` with the same command; without its environment
    /// variables if `disarm` (the fault-injection variable).
    pub fn restart(&mut self, slot: usize, disarm: bool) {
        if let Some(old) = self.slots[slot].process.take() {
            self.retired.push(old);
        }
        if disarm {
            self.slots[slot].config.env.clear();
        }
        self.spawn_server(slot);
        self.await_server(slot);
    }

    /// kill -9 of the server of `slot` as `mode` says; returns once its app is dead
    /// (and, for a sidecar kill or an app kill, `kar run` exited).
    pub fn kill(&mut self, slot: usize, mode: KillMode) -> &Kill {
        let s = &mut self.slots[slot];
        let mut process = s.process.take().expect("a running server");
        let death = self.deaths.kill(
            s.app_pid,
            || match mode {
                KillMode::Sidecar => process.kill_process_only(),
                KillMode::App => assert_eq!(
                    process.kill_children(),
                    1,
                    "{}: no app to kill",
                    process.name()
                ),
                KillMode::Group => process.kill(),
            },
            Duration::from_secs(10),
        );
        if mode == KillMode::App {
            // `kar run` exits once its component died.
            process.wait(Duration::from_secs(30));
        }
        self.kills.push(Kill { slot, mode, death });
        self.retired.push(process);
        self.kills.last().unwrap()
    }

    /// Waits until the server of `slot` dies of a signal by itself (the fault-injection
    /// crash aborts); its app could still run at `alive`. Records the bounds of the
    /// app's death: once `kar run` is reaped, the app was sent its parent-death signal.
    pub fn await_crash(&mut self, slot: usize, alive: u64, timeout: Duration) {
        let s = &mut self.slots[slot];
        let process = s.process.as_mut().expect("a running server");
        let exited = process.wait(timeout);
        assert!(
            exited.code().is_none(),
            "{} exited ({:?}) instead of aborting; output:\n{}",
            process.name(),
            exited.status,
            exited.output
        );
        let dead = monotonic_ns();
        self.deaths.record(s.app_pid, Death { alive, dead });
    }

    /// Whether the server of `slot` has exited (by itself: fenced, say).
    #[allow(dead_code)]
    pub fn exited(&mut self, slot: usize) -> bool {
        self.slots[slot]
            .process
            .as_mut()
            .is_none_or(|p| p.wait_with_timeout(Duration::ZERO).is_some())
    }

    /// Panics if a server exited.
    pub fn assert_servers_running(&mut self) {
        for s in &mut self.slots {
            s.process
                .as_mut()
                .expect("a running server")
                .assert_running();
        }
    }

    /// Starts a client making transfers until [`Bank::stop_clients`].
    pub fn client(&self, tag: &str, quiesce: Duration, args: &[String]) -> Process {
        let stop = self.stop_file();
        let quiesce = quiesce.as_secs().to_string();
        // The member that recovers a dead executor's requests applies its own attempt
        // cap, and the clients' sidecars recover too: no cap here either (see servers).
        let mut component = Component::new(self.store, &self.app)
            .within(self.clients_within.clone())
            .arg("-max_attempts")
            .arg("0");
        for arg in args {
            component = component.arg(arg);
        }
        component
            .name(&format!("bank client {tag}"))
            .env("BANK_LOG", self.log())
            .env("BANK_KEYED", if self.keyed_clients { "1" } else { "0" })
            .command(node(
                "bank/client.js",
                &[
                    "transfers",
                    tag,
                    &ACCOUNTS.to_string(),
                    stop.to_str().unwrap(),
                    &quiesce,
                ],
            ))
            .spawn()
    }

    /// Tells the clients to stop starting transfers and waits until they have
    /// finished (every call answered, every accepted tell credited) while the servers
    /// keep running.
    pub fn stop_clients(&mut self, clients: &mut [Process], timeout: Duration) {
        std::fs::write(self.stop_file(), b"stop").unwrap();
        let deadline = Instant::now() + timeout;
        for client in clients {
            loop {
                if let Some(exited) = client.wait_with_timeout(Duration::from_millis(100)) {
                    assert!(
                        exited.status.success(),
                        "{} failed; output:\n{}",
                        client.name(),
                        exited.output
                    );
                    break;
                }
                self.assert_servers_running();
                assert!(
                    Instant::now() < deadline,
                    "{} still running after {timeout:?}",
                    client.name()
                );
            }
        }
    }

    /// Every account's state, read through the sidecar's state API.
    pub fn audit(&self) -> serde_json::Value {
        let file = self.dir.path().join("audit.json");
        let mut auditor = Component::new(self.store, &self.app)
            .within(self.clients_within.clone())
            .name("bank audit")
            .env("BANK_LOG", self.log())
            .command(node(
                "bank/client.js",
                &["audit", &ACCOUNTS.to_string(), file.to_str().unwrap()],
            ))
            .spawn();
        auditor.expect_success(Duration::from_secs(60));
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
    }

    /// Stops the servers (SIGTERM) so that the log is complete.
    pub fn stop_servers(&mut self) {
        for s in &mut self.slots {
            if let Some(process) = s.process.as_mut() {
                process.terminate(Duration::from_secs(20));
            }
        }
    }

    /// The event log's lines.
    pub fn events(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// Waits until `count` lines of the event log contain `needle` (`true`), or until
    /// `enough` lines contain `other` while none contains `needle` (`false`): a server
    /// that hosts no actor never logs anything.
    pub fn await_events_unless(
        &self,
        needle: &str,
        count: usize,
        other: (&str, usize),
        timeout: Duration,
    ) -> bool {
        let seen = |needle: &str| self.events().lines().filter(|l| l.contains(needle)).count();
        let mut hosts_nothing = false;
        let decided = poll_until(timeout, Duration::from_millis(50), || {
            let n = seen(needle);
            hosts_nothing = n == 0 && seen(other.0) >= other.1;
            n >= count || hosts_nothing
        });
        assert!(
            decided,
            "{} events with {needle:?} after {timeout:?}, expected {count}",
            seen(needle)
        );
        !hosts_nothing
    }

    /// Waits until `count` lines of the event log contain `needle`.
    pub fn await_events(&self, needle: &str, count: usize, timeout: Duration) {
        let seen = || self.events().lines().filter(|l| l.contains(needle)).count();
        let enough = poll_until(timeout, Duration::from_millis(50), || seen() >= count);
        assert!(
            enough,
            "{} events with {needle:?} after {timeout:?}, expected {count}",
            seen()
        );
    }

    /// The pid of the app of `slot`'s current server.
    pub fn app_pid(&self, slot: usize) -> u32 {
        self.slots[slot].app_pid
    }
}

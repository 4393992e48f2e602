//! Poison requests (issue 9, point 1), on both stores: two supervised replicas of a
//! service whose component exits when it receives `/crash` (tests/apps/js/poison), one
//! crash call and a stream of good calls from a client sidecar (poison/client.js).
//!
//! The test plays the supervisor (as systemd or Kubernetes would): a replica whose
//! `kar run` exited is started again. The component dies exactly `-max_attempts` (3)
//! times, then a recovering sidecar pauses the request and says so in its log; the
//! replicas then stay up and the good calls keep succeeding, the crash call staying
//! blocked. The component is then "fixed" (its restart sets `POISON_FIXED=1`), `kar
//! resume` runs the request once more and the original caller gets the reply.
//!
//! A good call that happened to be in flight on the component at each of the three
//! deaths is paused with the poison (README, "Attempt cap": it is charged like it).
//! The client starts good calls without waiting for the previous ones, so such a
//! bystander holds up only itself; the test resumes every paused request (it prints
//! how many bystanders there were) and every call must succeed in the end.

use kar_tests::{kar, node, node_client, poll_until, store_test, unique_app, Component, Process};
use std::time::Duration;

/// Upper bound for a server to print that it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Upper bound for the request to be paused (3 deaths, restarts and back-offs).
const PAUSE_TIMEOUT: Duration = Duration::from_secs(120);
/// Upper bound for the client to finish once the request was resumed.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
const MAX_ATTEMPTS: usize = 3;
const SERVICE: &str = "poison";
const CRASHED: &str = "poison: crashing on /crash";
const HANDLED: &str = "poison: /crash handled by a fixed component";
/// Logged (warn) by the sidecar whose recovery paused the request.
const PAUSED: &str = " paused after 3 attempts (max_attempts 3): its executor died each time";

/// The replicas of the service and the supervisor's history.
struct Replicas<'a> {
    store: &'a kar_tests::Store,
    app: String,
    live: Vec<Process>,
    /// Replicas that exited (the supervisor restarted them).
    dead: Vec<Process>,
    /// Whether restarts run the fixed component.
    fixed: bool,
    started: usize,
}

impl<'a> Replicas<'a> {
    fn start(store: &'a kar_tests::Store, app: &str, n: usize) -> Replicas<'a> {
        let mut replicas = Replicas {
            store,
            app: app.to_string(),
            live: Vec::new(),
            dead: Vec::new(),
            fixed: false,
            started: 0,
        };
        for _ in 0..n {
            let replica = replicas.spawn();
            replicas.live.push(replica);
        }
        replicas
    }

    fn spawn(&mut self) -> Process {
        self.started += 1;
        let process = Component::new(self.store, &self.app)
            .name(&format!("replica #{} (fixed {})", self.started, self.fixed))
            .service(SERVICE)
            .arg("-max_attempts")
            .arg(MAX_ATTEMPTS.to_string())
            .env("POISON_FIXED", if self.fixed { "1" } else { "0" })
            .command(node("poison/server.js", &[]))
            .spawn();
        process.expect_output("poison server listening on ", START_TIMEOUT);
        process
    }

    /// Restarts every replica whose `kar run` exited; returns how many.
    fn supervise(&mut self) -> usize {
        let mut restarted = 0;
        for i in 0..self.live.len() {
            if self.live[i].wait_with_timeout(Duration::ZERO).is_some() {
                let fresh = self.spawn();
                self.dead.push(std::mem::replace(&mut self.live[i], fresh));
                restarted += 1;
            }
        }
        restarted
    }

    fn all(&self) -> impl Iterator<Item = &Process> {
        self.dead.iter().chain(&self.live)
    }

    /// Lines containing `needle` over every replica, dead or live.
    fn count(&self, needle: &str) -> usize {
        self.all().map(|p| p.count_lines(needle)).sum()
    }
}

/// The ids of the paused requests, from the warnings of the sidecars that paused them.
fn paused_ids<'p>(processes: impl Iterator<Item = &'p Process>) -> Vec<String> {
    let mut ids: Vec<String> = processes
        .flat_map(|p| {
            p.output()
                .lines()
                .filter_map(|line| {
                    let (before, _) = line.split_once(PAUSED)?;
                    let (_, id) = before.rsplit_once("request ")?;
                    Some(id.trim().to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

store_test!(
    fn poison_request_is_paused_then_resumed(store) {
        let app = unique_app("poison");
        let mut replicas = Replicas::start(store, &app, 2);
        let mut client = node_client(store, &app, "poison/client.js", &[SERVICE]).spawn();

        // Supervise until a recovery paused the request.
        let paused = poll_until(PAUSE_TIMEOUT, Duration::from_millis(20), || {
            replicas.supervise();
            !paused_ids(replicas.all().chain([&client])).is_empty()
        });
        assert!(
            paused,
            "the crash request was never paused; deaths so far: {}",
            replicas.count(CRASHED)
        );
        // Exactly max_attempts deaths: the last dying `kar run` paused the request
        // while leaving, and may still be exiting.
        assert!(poll_until(START_TIMEOUT, Duration::from_millis(20), || {
            replicas.supervise();
            replicas.dead.len() >= MAX_ATTEMPTS
        }));
        assert_eq!(replicas.dead.len(), MAX_ATTEMPTS, "kar run exits");
        let ids = paused_ids(replicas.all().chain([&client]));
        eprintln!(
            "[poison] {} store: {} paused request(s), {} of them bystanders",
            store.kind(),
            ids.len(),
            ids.len() - 1
        );

        // The listing shows it paused, with its attempt count.
        let get = kar(
            store,
            &["get", "-app", &app, "-o", "json", "-s", "requests", "--status", "paused"],
        )
        .expect_success(START_TIMEOUT);
        let listed: Vec<serde_json::Value> =
            serde_json::from_str(get.stdout.trim()).expect("a JSON array");
        let crash = listed
            .iter()
            .find(|r| r["path"] == "/crash")
            .unwrap_or_else(|| panic!("the crash request is not listed: {listed:#?}"));
        assert_eq!(crash["status"], "paused", "{crash}");
        assert_eq!(crash["attempt"], MAX_ATTEMPTS, "{crash}");
        assert_eq!(crash["kind"], "call", "{crash}");
        assert_eq!(crash["target"]["service"], SERVICE, "{crash}");
        assert!(crash.get("assignee").is_none(), "{crash}");
        assert_eq!(listed.len(), ids.len(), "{listed:#?}");

        // Paused: the replicas stay up, the good calls keep succeeding, the caller
        // stays blocked.
        let good_at_pause = client.count_lines("ok good ");
        assert!(poll_until(START_TIMEOUT, Duration::from_millis(20), || {
            assert_eq!(replicas.supervise(), 0, "a replica died after the pause");
            client.count_lines("ok good ") >= good_at_pause + 50
        }));
        assert_eq!(replicas.count(CRASHED), MAX_ATTEMPTS, "deaths");
        assert_eq!(client.count_lines("FAIL"), 0, "{}", client.output());
        client.assert_running();
        assert!(client.count_lines("ok good ") > 0);

        // The fix: each replica restarts with the fixed component.
        replicas.fixed = true;
        for i in 0..replicas.live.len() {
            replicas.live[i].terminate(Duration::from_secs(30));
            let fresh = replicas.spawn();
            replicas.dead.push(std::mem::replace(&mut replicas.live[i], fresh));
        }
        assert_eq!(replicas.count(CRASHED), MAX_ATTEMPTS, "deaths");
        client.assert_running();

        // `kar resume` runs it once; the original caller gets the reply.
        for id in &ids {
            let resumed =
                kar(store, &["resume", "-app", &app, id]).expect_success(START_TIMEOUT);
            assert!(
                resumed.stdout.contains(&format!("resumed {id}")),
                "{}",
                resumed.output
            );
        }
        let exited = client.expect_success(CLIENT_TIMEOUT);
        assert!(
            exited.stdout.contains("crash replied \"survived\""),
            "{}",
            exited.output
        );
        assert!(exited.stdout.contains(", failures: 0"), "{}", exited.output);
        assert_eq!(replicas.count(HANDLED), 1, "the resumed request ran once");
        assert_eq!(replicas.count(CRASHED), MAX_ATTEMPTS, "deaths");

        // Nothing is paused any more: resuming again is refused, and changes nothing.
        let mut again = kar(store, &["resume", "-app", &app, &ids[0]]);
        let again = again.wait(START_TIMEOUT);
        assert_eq!(again.code(), Some(1), "{}", again.output);
        for replica in &mut replicas.live {
            replica.assert_running();
        }
    }
);

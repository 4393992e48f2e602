//! The invariant checker: reads the apps' event log (tests/apps/js/bank) and the
//! accounts' state, and lists every violation of the bank's invariants.

use crate::deaths::Deaths;
use crate::mesh::{Kill, KillMode, ACCOUNTS};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// An account's balance before any transfer.
const INITIAL: i64 = 1000;

/// One attempt of one step of a transfer, in one app process.
#[derive(Debug, Clone)]
struct Attempt {
    pid: u32,
    actor: String,
    transfer: String,
    step: String,
    enter: u64,
    /// When it returned (`exit`) or threw (`error`).
    end: Option<u64>,
    applied: bool,
    duplicate: bool,
    error: Option<String>,
}

/// What a client did with one transfer.
#[derive(Debug, Default)]
struct Transfer {
    from: String,
    to: String,
    amount: i64,
    mode: String,
    /// A call in flight or a tell answered 202: kar owes its completion.
    accepted: bool,
    replied: Option<u64>,
    failed: Option<String>,
    refused: bool,
}

/// A time interval `[start, end)` whose end is only known to lie in `end_lo..=end_hi`
/// (an attempt cut by the death of its process).
#[derive(Debug, Clone, Copy)]
struct Interval {
    start: u64,
    end_lo: u64,
    end_hi: u64,
    attempt: usize,
}

/// The checker's verdict.
pub struct Report {
    pub violations: Vec<String>,
    /// Overlaps that fall inside the uncertainty of a death time: the second attempt
    /// started after the kill was sent but before the death was observed.
    pub too_close: Vec<String>,
    /// Step attempts cut by the death of their process (no `exit` or `error` logged):
    /// the kills that landed in the middle of a request.
    pub cut: usize,
    pub figures: String,
}

fn str_field(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Checks `log` (the JSON lines of every app process) and `audit` (account → state).
pub fn check(log: &str, audit: &Value, deaths: &Deaths, kills: &[Kill]) -> Report {
    let mut violations = Vec::new();
    let mut attempts: Vec<Attempt> = Vec::new();
    // (pid, transfer, step) → index of its latest attempt in that process.
    let mut open: HashMap<(u32, String, String), usize> = HashMap::new();
    let mut transfers: BTreeMap<String, Transfer> = BTreeMap::new();
    let mut applied: HashMap<(String, String), usize> = HashMap::new();
    for line in log.lines() {
        let e: Value = serde_json::from_str(line)
            .unwrap_or_else(|err| panic!("malformed event {line:?}: {err}"));
        let t = e["t"]
            .as_u64()
            .unwrap_or_else(|| panic!("no time stamp in {line:?}"));
        let pid = e["pid"].as_u64().unwrap() as u32;
        let transfer = str_field(&e, "transfer");
        let ev = str_field(&e, "ev");
        if e.get("client").is_some() {
            let entry = transfers.entry(transfer.clone()).or_default();
            entry.from = str_field(&e, "from");
            entry.to = str_field(&e, "to");
            entry.amount = e["amount"].as_i64().unwrap();
            entry.mode = str_field(&e, "mode");
            match ev.as_str() {
                "sent" | "accepted" => entry.accepted = true,
                "completed" => entry.replied = Some(t),
                "failed" => entry.failed = Some(str_field(&e, "error")),
                "refused" => entry.refused = true,
                other => panic!("unknown client event {other:?} in {line:?}"),
            }
            continue;
        }
        let step = str_field(&e, "step");
        let key = (pid, transfer.clone(), step.clone());
        if ev == "enter" {
            open.insert(key, attempts.len());
            attempts.push(Attempt {
                pid,
                actor: str_field(&e, "actor"),
                transfer,
                step,
                enter: t,
                end: None,
                applied: false,
                duplicate: false,
                error: None,
            });
            continue;
        }
        let Some(&index) = open.get(&key) else {
            violations.push(format!("{ev} without enter: {line}"));
            continue;
        };
        let attempt = &mut attempts[index];
        match ev.as_str() {
            "applied" => {
                attempt.applied = true;
                *applied
                    .entry((attempt.transfer.clone(), attempt.step.clone()))
                    .or_default() += 1;
            }
            "duplicate" => attempt.duplicate = true,
            "exit" => attempt.end = Some(t),
            "error" => {
                attempt.end = Some(t);
                attempt.error = Some(str_field(&e, "error"));
            }
            other => panic!("unknown server event {other:?} in {line:?}"),
        }
    }

    // Clients: every call answered with its transfer.
    for (id, t) in &transfers {
        if let Some(error) = &t.failed {
            violations.push(format!("call {id} ({} → {}) failed: {error}", t.from, t.to));
        }
    }

    // State: every accepted transfer debited and credited once, nothing else applied.
    let (state_violations, in_state, total) = check_state(audit, &transfers);
    violations.extend(state_violations);

    // Logs: each step applied at most once; tail calls never re-run a finished step;
    // nothing runs once the client has the reply.
    for ((transfer, step), n) in &applied {
        if *n > 1 {
            violations.push(format!("{step} of {transfer} applied {n} times"));
        }
    }
    let mut by_step: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    let mut by_actor: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, a) in attempts.iter().enumerate() {
        by_step
            .entry((a.transfer.clone(), a.step.clone()))
            .or_default()
            .push(i);
        by_actor.entry(a.actor.clone()).or_default().push(i);
    }
    for (id, t) in &transfers {
        let first_credit = by_step
            .get(&(id.clone(), "credit".to_string()))
            .and_then(|v| v.iter().map(|&i| attempts[i].enter).min());
        if let (Some(credit), Some(debits)) = (
            first_credit,
            by_step.get(&(id.clone(), "debit".to_string())),
        ) {
            for &i in debits {
                if attempts[i].enter > credit {
                    violations.push(format!(
                        "debit of {id} re-ran (pid {}) after its tail call to credit had started",
                        attempts[i].pid
                    ));
                }
            }
        }
        if let Some(replied) = t.replied {
            for step in ["debit", "credit"] {
                for &i in by_step
                    .get(&(id.clone(), step.to_string()))
                    .into_iter()
                    .flatten()
                {
                    if attempts[i].enter > replied {
                        violations.push(format!(
                            "{step} of {id} ran again (pid {}) after the client got the reply",
                            attempts[i].pid
                        ));
                    }
                }
            }
        }
    }

    // Ends of attempts: an attempt without exit must have been cut by its process's death.
    let mut intervals = Vec::with_capacity(attempts.len());
    let mut cut = Vec::new();
    for (i, a) in attempts.iter().enumerate() {
        let (end_lo, end_hi) = match a.end {
            Some(end) => (end, end),
            None if !deaths.is_watched(a.pid) => {
                violations.push(format!(
                    "{} of {} ran in unknown pid {}",
                    a.step, a.transfer, a.pid
                ));
                continue;
            }
            None => match deaths.get(a.pid) {
                Some(death) => {
                    cut.push(i);
                    (death.alive.max(a.enter), death.dead)
                }
                None => {
                    violations.push(format!(
                        "{} of {} on {} never returned (pid {} alive)",
                        a.step, a.transfer, a.actor, a.pid
                    ));
                    continue;
                }
            },
        };
        intervals.push(Interval {
            start: a.enter,
            end_lo,
            end_hi,
            attempt: i,
        });
    }
    let mut too_close = Vec::new();
    let describe = |i: usize| {
        let a = &attempts[i];
        format!(
            "{} of {} on {} in pid {} from {}",
            a.step, a.transfer, a.actor, a.pid, a.enter
        )
    };
    let group = |key_of: &dyn Fn(&Attempt) -> String| {
        let mut groups: BTreeMap<String, Vec<Interval>> = BTreeMap::new();
        for iv in &intervals {
            groups
                .entry(key_of(&attempts[iv.attempt]))
                .or_default()
                .push(*iv);
        }
        groups
    };
    for (what, groups) in [
        (
            "two attempts of one step overlapped",
            group(&|a| format!("{}/{}", a.transfer, a.step)),
        ),
        (
            "an actor was active in two places at once",
            group(&|a| a.actor.clone()),
        ),
    ] {
        for (key, mut ivs) in groups {
            ivs.sort_by_key(|iv| iv.start);
            // The interval reaching furthest so far, by its earliest and latest end.
            let mut lo: Option<Interval> = None;
            let mut hi: Option<Interval> = None;
            for iv in ivs {
                if let Some(prev) = lo.filter(|p| iv.start < p.end_lo) {
                    violations.push(format!(
                        "{what} ({key}): {} until {} and {}",
                        describe(prev.attempt),
                        prev.end_lo,
                        describe(iv.attempt)
                    ));
                } else if let Some(prev) = hi.filter(|p| iv.start < p.end_hi) {
                    too_close.push(format!(
                        "{what}? ({key}): {} ended (died) in {}..{} and {} started in between",
                        describe(prev.attempt),
                        prev.end_lo,
                        prev.end_hi,
                        describe(iv.attempt)
                    ));
                }
                if lo.is_none_or(|p| iv.end_lo > p.end_lo) {
                    lo = Some(iv);
                }
                if hi.is_none_or(|p| iv.end_hi > p.end_hi) {
                    hi = Some(iv);
                }
            }
        }
    }

    // Cut attempts must be retried (the step never answered), and how long that took.
    let mut retry_delays = Vec::new();
    for &i in &cut {
        let a = &attempts[i];
        let dead = deaths.get(a.pid).map(|d| d.dead).unwrap_or_default();
        let next = by_step[&(a.transfer.clone(), a.step.clone())]
            .iter()
            .map(|&j| attempts[j].enter)
            .filter(|&enter| enter > a.enter)
            .min();
        match next {
            Some(enter) => retry_delays.push(enter.saturating_sub(dead) as f64 / 1e6),
            None if transfers.get(&a.transfer).is_some_and(|t| t.accepted) => {
                violations.push(format!(
                    "{} of {} was cut by the death of pid {} and never retried",
                    a.step, a.transfer, a.pid
                ))
            }
            None => {}
        }
    }
    retry_delays.sort_by(f64::total_cmp);

    // Figures.
    let count = |f: &dyn Fn(&Transfer) -> bool| transfers.values().filter(|t| f(t)).count();
    let mut figures = String::new();
    let _ = writeln!(
        figures,
        "transfers: {} calls sent ({} answered, {} failed), {} tells accepted ({} refused); {} transfers in state, total balance {total} (expected {})",
        count(&|t| t.mode == "call" && t.accepted),
        count(&|t| t.replied.is_some()),
        count(&|t| t.failed.is_some()),
        count(&|t| t.mode == "tell" && t.accepted),
        count(&|t| t.refused),
        in_state,
        ACCOUNTS as i64 * INITIAL
    );
    let mut modes: BTreeMap<KillMode, usize> = BTreeMap::new();
    for k in kills {
        *modes.entry(k.mode).or_default() += 1;
    }
    let schedule: Vec<String> = kills
        .iter()
        .map(|k| format!("s{}:{:?}", k.slot, k.mode))
        .collect();
    let widest = kills
        .iter()
        .map(|k| k.death.dead - k.death.alive)
        .max()
        .unwrap_or_default();
    let _ = writeln!(
        figures,
        "kill schedule: {}; widest death window {:.2} ms",
        schedule.join(" "),
        widest as f64 / 1e6
    );
    let retried = by_step.values().filter(|v| v.len() > 1).count();
    let _ = writeln!(
        figures,
        "kills: {} {modes:?}; step attempts: {}, cut by a death: {}, steps with a retry: {retried}, retries that found the step applied: {}, attempts that threw: {}",
        kills.len(),
        attempts.len(),
        cut.len(),
        attempts.iter().filter(|a| a.duplicate).count(),
        attempts.iter().filter(|a| a.error.is_some()).count(),
    );
    if let (Some(first), Some(last)) = (retry_delays.first(), retry_delays.last()) {
        let _ = writeln!(
            figures,
            "death → retry started: median {:.1} ms, min {first:.1} ms, max {last:.1} ms over {} cut attempts",
            retry_delays[retry_delays.len() / 2],
            retry_delays.len()
        );
    }
    for a in attempts.iter().filter(|a| a.error.is_some()).take(5) {
        let _ = writeln!(
            figures,
            "threw: {} of {} in pid {}: {:?}",
            a.step, a.transfer, a.pid, a.error
        );
    }
    Report {
        violations,
        too_close,
        cut: cut.len(),
        figures,
    }
}

/// Checks the accounts' state against the clients' transfers; returns the violations,
/// how many transfers the state holds and the total balance.
fn check_state(audit: &Value, transfers: &BTreeMap<String, Transfer>) -> (Vec<String>, usize, i64) {
    let mut violations = Vec::new();
    let mut halves: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    let mut total = 0;
    for n in 0..ACCOUNTS {
        let account = format!("A{n}");
        let state = audit[&account].as_object().cloned().unwrap_or_default();
        let mut expected = INITIAL;
        let mut balance = None;
        for (key, value) in &state {
            if key == "balance" {
                balance = value.as_i64();
                continue;
            }
            let (kind, id) = key.split_at(2);
            let amount = value["amount"].as_i64().unwrap_or(-1);
            let Some(t) = transfers.get(id) else {
                violations.push(format!(
                    "{account} holds {key} of a transfer no client started"
                ));
                continue;
            };
            let (own, party, half) = match kind {
                "d_" => (
                    -amount,
                    &t.from,
                    &mut halves.entry(id.to_string()).or_default().0,
                ),
                "c_" => (
                    amount,
                    &t.to,
                    &mut halves.entry(id.to_string()).or_default().1,
                ),
                _ => {
                    violations.push(format!("{account}: unexpected state key {key}"));
                    continue;
                }
            };
            if *party != account || amount != t.amount {
                violations.push(format!(
                    "{account} holds {key} = {value} but the client sent {} {} → {}",
                    t.amount, t.from, t.to
                ));
            }
            *half = Some(account.clone());
            expected += own;
        }
        let balance = balance.unwrap_or(INITIAL);
        if balance != expected {
            violations.push(format!(
                "{account}: balance {balance}, but its applied transfers make {expected} (a step applied twice or partly)"
            ));
        }
        total += balance;
    }
    if total != ACCOUNTS as i64 * INITIAL {
        violations.push(format!(
            "total balance {total}, expected {}",
            ACCOUNTS as i64 * INITIAL
        ));
    }
    for (id, (debit, credit)) in &halves {
        if debit.is_none() || credit.is_none() {
            violations.push(format!(
                "transfer {id} half applied: debit in {debit:?}, credit in {credit:?}"
            ));
        }
    }
    for (id, t) in transfers {
        if t.accepted && !halves.contains_key(id) {
            violations.push(format!(
                "accepted transfer {id} ({} {} → {}, {}) was lost",
                t.amount, t.from, t.to, t.mode
            ));
        }
    }
    (violations, halves.len(), total)
}

/// The checker on hand-made logs: it must catch what it claims to catch.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::deaths::Death;
    use serde_json::json;

    fn client(t: u64, ev: &str, id: &str, mode: &str) -> String {
        json!({"t": t, "pid": 9, "client": "c0", "ev": ev, "transfer": id, "from": "A0", "to": "A1", "amount": 10, "mode": mode})
            .to_string()
    }

    fn server(t: u64, pid: u32, actor: &str, id: &str, step: &str, ev: &str) -> String {
        json!({"t": t, "pid": pid, "actor": actor, "transfer": id, "step": step, "ev": ev})
            .to_string()
    }

    /// A transfer x of 10 from A0 to A1, debit in pid 1, credit in pid 2 (1..=4, 5..=8).
    fn clean_log() -> Vec<String> {
        vec![
            client(0, "sent", "x", "call"),
            server(1, 1, "A0", "x", "debit", "enter"),
            server(2, 1, "A0", "x", "debit", "applied"),
            server(4, 1, "A0", "x", "debit", "exit"),
            server(5, 2, "A1", "x", "credit", "enter"),
            server(6, 2, "A1", "x", "credit", "applied"),
            server(8, 2, "A1", "x", "credit", "exit"),
            client(9, "completed", "x", "call"),
        ]
    }

    fn state(a0: i64, a1: i64) -> Value {
        json!({
            "A0": {"balance": a0, "d_x": {"amount": 10, "balance": a0}},
            "A1": {"balance": a1, "c_x": {"amount": 10, "balance": a1}},
        })
    }

    fn deaths(dead: &[(u32, u64, u64)]) -> Deaths {
        let deaths = Deaths::default();
        for pid in [1, 2, 3] {
            deaths.track(pid);
        }
        for &(pid, alive, dead) in dead {
            deaths.record(pid, Death { alive, dead });
        }
        deaths
    }

    fn violations(log: &[String], audit: &Value, deaths: &Deaths) -> Vec<String> {
        check(&log.join("\n"), audit, deaths, &[]).violations
    }

    #[test]
    fn a_clean_transfer_passes() {
        assert_eq!(
            violations(&clean_log(), &state(990, 1010), &deaths(&[])),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_step_applied_twice_is_caught() {
        let mut log = clean_log();
        // A retry in pid 3, after pid 2 died, that applied the credit again.
        log.insert(6, server(30, 3, "A1", "x", "credit", "enter"));
        log.insert(7, server(31, 3, "A1", "x", "credit", "applied"));
        log.insert(8, server(32, 3, "A1", "x", "credit", "exit"));
        let found = violations(&log, &state(990, 1020), &deaths(&[]));
        assert!(
            found
                .iter()
                .any(|v| v.contains("credit of x applied 2 times")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|v| v.contains("A1: balance 1020")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|v| v.contains("total balance 10010")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|v| v.contains("after the client got the reply")),
            "{found:?}"
        );
    }

    #[test]
    fn overlapping_attempts_are_caught() {
        let mut log = clean_log();
        // pid 2's credit never exits: pid 2 died in 20..=21; a retry in pid 3 at 10.
        log.retain(|l| !(l.contains("\"pid\":2") && l.contains("\"exit\"")));
        log.push(server(10, 3, "A1", "x", "credit", "enter"));
        log.push(server(11, 3, "A1", "x", "credit", "duplicate"));
        log.push(server(12, 3, "A1", "x", "credit", "exit"));
        let found = violations(&log, &state(990, 1010), &deaths(&[(2, 20, 21)]));
        assert!(
            found
                .iter()
                .any(|v| v.contains("two attempts of one step overlapped")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|v| v.contains("active in two places at once")),
            "{found:?}"
        );
        // The same retry after the death is fine.
        let retried: Vec<String> = log
            .iter()
            .map(|l| {
                l.replace("\"t\":10,", "\"t\":30,")
                    .replace("\"t\":11,", "\"t\":31,")
                    .replace("\"t\":12,", "\"t\":32,")
            })
            .collect();
        let found = violations(&retried, &state(990, 1010), &deaths(&[(2, 20, 21)]));
        assert!(
            found
                .iter()
                .all(|v| v.contains("after the client got the reply")),
            "{found:?}"
        );
    }

    #[test]
    fn an_attempt_that_never_returned_is_caught() {
        let mut log = clean_log();
        log.retain(|l| !(l.contains("\"pid\":1") && l.contains("\"exit\"")));
        let found = violations(&log, &state(990, 1010), &deaths(&[]));
        assert!(
            found
                .iter()
                .any(|v| v.contains("debit of x on A0 never returned")),
            "{found:?}"
        );
    }

    #[test]
    fn lost_and_half_applied_transfers_are_caught() {
        let mut log = clean_log();
        log.push(client(20, "accepted", "y", "tell"));
        let mut audit = state(990, 1010);
        audit["A0"]["d_y"] = json!({"amount": 10, "balance": 980});
        audit["A0"]["balance"] = json!(980);
        audit["A1"].as_object_mut().unwrap().remove("c_x");
        audit["A1"]["balance"] = json!(1000);
        let found = violations(&log, &audit, &deaths(&[]));
        assert!(
            found.iter().any(|v| v.contains("transfer x half applied")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|v| v.contains("transfer y half applied")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|v| v.contains("total balance 9980")),
            "{found:?}"
        );
        let log = [client(0, "accepted", "z", "tell")];
        let found = violations(&log, &json!({}), &deaths(&[]));
        assert!(
            found.iter().any(|v| v.contains("accepted transfer z")),
            "{found:?}"
        );
    }

    #[test]
    fn a_debit_rerun_after_its_tail_call_is_caught() {
        let mut log = clean_log();
        log.push(server(12, 3, "A0", "x", "debit", "enter"));
        log.push(server(13, 3, "A0", "x", "debit", "duplicate"));
        log.push(server(14, 3, "A0", "x", "debit", "exit"));
        let found = violations(&log, &state(990, 1010), &deaths(&[]));
        assert!(
            found
                .iter()
                .any(|v| v.contains("after its tail call to credit had started")),
            "{found:?}"
        );
    }
}

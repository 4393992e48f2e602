//! What `/proc` says of the processes under test: CPU time, resident memory, children.

/// utime + stime of a process, in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces: count fields after its `)`.
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

pub fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A field of `/proc/<pid>/status` in kB (`VmRSS`: resident now, `VmHWM`: its peak).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

/// The direct children of a process (every thread's `children` list).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for task in tasks.flatten() {
        if let Ok(list) = std::fs::read_to_string(task.path().join("children")) {
            found.extend(
                list.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    found.sort_unstable();
    found.dedup();
    found
}

/// CPU ticks of labelled processes, to take twice around a measured window.
#[derive(Clone, Debug)]
pub struct CpuSnapshot(Vec<(String, u32, Option<u64>)>);

impl CpuSnapshot {
    pub fn take(pids: &[(String, u32)]) -> CpuSnapshot {
        CpuSnapshot(
            pids.iter()
                .map(|(label, pid)| (label.clone(), *pid, cpu_ticks(*pid)))
                .collect(),
        )
    }

    /// Microseconds of CPU per call of each process between `self` and now, for
    /// `calls` calls (labels in order; a process gone meanwhile is left out).
    pub fn per_call_since(&self, calls: u64) -> Vec<(String, f64)> {
        let hz = clock_ticks_per_second();
        self.0
            .iter()
            .filter_map(|(label, pid, before)| {
                let used = cpu_ticks(*pid)?.checked_sub((*before)?)?;
                Some((label.clone(), used as f64 / hz * 1e6 / calls.max(1) as f64))
            })
            .collect()
    }
}

//! The floor of a durable call (issue 11): what any durable sequential actor call
//! through two sidecars must at least do, each primitive measured alone in the same
//! run as kar's calls: two loopback HTTP exchanges (the direct baseline's figure), two
//! store commits (the request accepted before it runs; its outcome recorded before it
//! is delivered) and two cross-process wake-ups (client sidecar → server sidecar, and
//! back). Each primitive runs from one thread over blocking I/O, with no async runtime,
//! serialization or routing around it: the floor errs low.
//!
//! `kar-bench floor-echo` is the other process of the wake-up figure.

use crate::procs::StoreSpec;
use crate::stats::{ms, Figures};
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The hidden subcommand of the wake-up's echo process.
pub const ECHO_COMMAND: &str = "floor-echo";

/// Calls of each primitive before its samples.
const WARM_UP: usize = 200;

/// A row of ~200 bytes, like a small request record.
const ROW: [u8; 200] = [b'x'; 200];

/// The store's settings (crates/store/src/embedded/db.rs: `NEW_PAGE_SIZE`,
/// `COMMITS_PER_CHECKPOINT`; keep them equal): pages of 2 KiB, checkpoints every 512
/// commits off the commit path.
const PAGE_SIZE: u32 = 2048;
const COMMITS_PER_CHECKPOINT: usize = 512;

/// One store's commit primitive.
pub struct Commit {
    pub store: String,
    pub what: String,
    pub figures: Figures,
}

/// The primitives of one run.
#[derive(Default)]
pub struct Floor {
    /// One byte, one way, between two processes over loopback TCP.
    pub wake: Option<Figures>,
    pub commits: Vec<Commit>,
}

/// `samples` timings of `step` after [`WARM_UP`] untimed ones; `step` returns how
/// much of its own time counts (a round trip counts half).
fn time(samples: usize, mut step: impl FnMut(usize) -> Result<Duration>) -> Result<Figures> {
    for i in 0..WARM_UP {
        step(i)?;
    }
    let mut out = Vec::with_capacity(samples);
    for i in WARM_UP..WARM_UP + samples {
        out.push(step(i)?);
    }
    Ok(Figures::from_samples(out))
}

/// The commit primitive of `store` (`None`: no floor for it, e.g. Redis over TLS or
/// with a replica). Blocking: run it off the async runtime.
pub fn commit(store: &str, redis_port: Option<u16>, samples: usize) -> Result<Option<Commit>> {
    let spec = StoreSpec::parse(store)?;
    if spec.tls || spec.wait {
        return Ok(None);
    }
    let (what, figures) = if spec.redis {
        let port = redis_port.context("no redis-server port")?;
        let appendfsync = if spec.fsync { ", AOF fsync always" } else { "" };
        (
            format!("one `EVALSHA` (a script doing one 200-byte `HSET`) round trip{appendfsync}"),
            redis_round_trip(port, samples)?,
        )
    } else {
        let sync = if spec.fsync { "FULL" } else { "NORMAL" };
        (
            format!("one SQLite WAL transaction of one 200-byte row, `synchronous={sync}`"),
            sqlite_commit(sync, samples)?,
        )
    };
    Ok(Some(Commit {
        store: store.to_string(),
        what,
        figures,
    }))
}

/// `BEGIN IMMEDIATE`, one row into a table with an index, `COMMIT`, on a fresh file
/// with the embedded store's settings.
fn sqlite_commit(sync: &str, samples: usize) -> Result<Figures> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("floor.db");
    let conn = rusqlite::Connection::open(&path)?;
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "wal_autocheckpoint", "0")?;
    conn.execute_batch(
        "CREATE TABLE floor (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, body BLOB NOT NULL);
         CREATE INDEX floor_id ON floor (id);",
    )?;
    let exec = |sql: &str| -> Result<()> {
        conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    };
    time(samples, |i| {
        if i % COMMITS_PER_CHECKPOINT == 0 {
            // As the store's checkpoint thread does, outside the timed commit.
            for mode in ["PASSIVE", "RESTART"] {
                conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))?;
            }
        }
        let start = Instant::now();
        exec("BEGIN IMMEDIATE")?;
        conn.prepare_cached("INSERT INTO floor (id, body) VALUES (?1, ?2)")?
            .execute(rusqlite::params![format!("request-{i}"), &ROW[..]])?;
        exec("COMMIT")?;
        Ok(start.elapsed())
    })
}

/// RESP encoding of one command.
fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one reply: a status, an integer or a bulk string (its bytes); fails on an
/// error reply.
fn read_reply(reader: &mut impl BufRead) -> Result<Vec<u8>> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    let text = String::from_utf8_lossy(&line).trim_end().to_string();
    match text.chars().next() {
        Some('+') | Some(':') => Ok(text.as_bytes()[1..].to_vec()),
        Some('$') => {
            let len: usize = text[1..].parse().context("bulk length")?;
            let mut bulk = vec![0; len + 2];
            reader.read_exact(&mut bulk)?;
            bulk.truncate(len);
            Ok(bulk)
        }
        _ => bail!("redis replied {text:?}"),
    }
}

/// One `EVALSHA` of a one-`HSET` script on the redis-server at `port`.
fn redis_round_trip(port: u16, samples: usize) -> Result<Figures> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let script: &[u8] = b"return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])";
    writer.write_all(&resp(&[b"SCRIPT", b"LOAD", script]))?;
    let sha = read_reply(&mut reader)?;
    time(samples, |i| {
        let field = format!("request-{i}");
        let command = resp(&[
            b"EVALSHA",
            &sha,
            b"1",
            b"{floor}:requests",
            field.as_bytes(),
            &ROW,
        ]);
        let start = Instant::now();
        writer.write_all(&command)?;
        read_reply(&mut reader)?;
        Ok(start.elapsed())
    })
}

/// One-way latency of one byte to another process: half the round trip of a
/// ping-pong with `kar-bench floor-echo`. Blocking: run it off the async runtime.
pub fn wake_up(samples: usize) -> Result<Figures> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg(ECHO_COMMAND)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("starting kar-bench floor-echo")?;
    let measured = ping_pong(&mut child, samples);
    // The echo ends when its connection closes; kill it if it did not get that far.
    if measured.is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
    measured
}

fn ping_pong(child: &mut std::process::Child, samples: usize) -> Result<Figures> {
    let stdout = child.stdout.take().context("no stdout of floor-echo")?;
    let mut line = String::new();
    // EOF (an empty line) if the child died before it listened.
    BufReader::new(stdout).read_line(&mut line)?;
    let port: u16 = line.trim().parse().context("floor-echo's port")?;
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    let mut byte = [0u8; 1];
    time(samples, |_| {
        let start = Instant::now();
        stream.write_all(b"!")?;
        stream.read_exact(&mut byte)?;
        Ok(start.elapsed() / 2)
    })
}

/// `kar-bench floor-echo`: prints the port it listens on, then echoes every byte of
/// one connection until it closes.
pub fn serve_echo() -> Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    println!("{}", listener.local_addr()?.port());
    std::io::stdout().flush()?;
    let (mut stream, _) = listener.accept()?;
    stream.set_nodelay(true)?;
    let mut byte = [0u8; 1];
    while stream.read(&mut byte)? == 1 {
        stream.write_all(&byte)?;
    }
    Ok(())
}

/// The floor tables: the primitives, then per store the floor's sum against the
/// direct call and kar's call (`kar` holds `(store, p50)` of kar's sequential calls).
pub fn markdown(floor: &Floor, direct: &Figures, kar: &[(String, Duration)]) -> String {
    let mut out = String::new();
    let Some(wake) = &floor.wake else {
        return out;
    };
    let _ = writeln!(
        out,
        "\nThe floor of a durable call (issue 11 asks for kar's p50 ≤ 4× direct): what any \
         durable sequential actor call through two sidecars must at least do, each primitive \
         measured alone in this run, {} samples after {WARM_UP} warm-up: two loopback HTTP/1.1 \
         exchanges (client → client sidecar; server sidecar → component: the direct \
         baseline's figure), two store commits (the request accepted before it runs; its \
         outcome recorded before it is delivered) and two cross-process wake-ups (client \
         sidecar → server sidecar, and back: one byte one way over loopback TCP between two \
         processes, half the round trip of a ping-pong, blocking sockets with TCP_NODELAY). \
         Embedded commit: `BEGIN IMMEDIATE`, one row into a table with an index, `COMMIT`, on \
         a temporary file with the store's settings (WAL, pages of 2 KiB, no automatic \
         checkpoint: a passive and a restarting one every {COMMITS_PER_CHECKPOINT} commits, \
         untimed; the first commit after each restarting one fsyncs the WAL's new header, as \
         in the store: one commit in {COMMITS_PER_CHECKPOINT}, beyond the p99). Redis commit: one round trip to the store's redis-server over a blocking \
         socket. Each primitive runs from one thread with no async runtime, serialization or \
         routing around it, so the floor errs low. Summing p50s only approximates the p50 \
         of a call made of these steps (percentiles do not add up); it is not a bound.\n",
        wake.samples.len()
    );
    let _ = writeln!(out, "| primitive | p50 (ms) | p99 (ms) |");
    let _ = writeln!(out, "|---|---:|---:|");
    let mut row = |what: &str, f: &Figures| {
        let _ = writeln!(out, "| {what} | {:.3} | {:.3} |", ms(f.p50), ms(f.p99));
    };
    row("HTTP/1.1 exchange (the direct baseline)", direct);
    row("cross-process wake-up (one byte, one way)", wake);
    for c in &floor.commits {
        row(&format!("commit, {}: {}", c.store, c.what), &c.figures);
    }
    let _ = writeln!(
        out,
        "\n| store | floor p50 (ms): 2 × HTTP + 2 × commit + 2 × wake-up | floor / direct | kar p50 (ms) | kar p50 / floor | kar p50 / direct |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
    let direct_ms = ms(direct.p50).max(1e-9);
    for c in &floor.commits {
        let sum = 2.0 * (ms(direct.p50) + ms(c.figures.p50) + ms(wake.p50));
        let (kar_ms, over_floor, over_direct) = match kar.iter().find(|(s, _)| *s == c.store) {
            Some((_, p50)) => (
                format!("{:.3}", ms(*p50)),
                format!("{:.2}×", ms(*p50) / sum.max(1e-9)),
                format!("{:.2}×", ms(*p50) / direct_ms),
            ),
            None => Default::default(),
        };
        let _ = writeln!(
            out,
            "| kar {} | {sum:.3} | {:.2}× | {kar_ms} | {over_floor} | {over_direct} |",
            c.store,
            sum / direct_ms
        );
    }
    let _ = writeln!(
        out,
        "\nkar p50: its sequential actor calls over the direct baseline's HTTP/1.1 client \
         (the h2c row if that was not measured)."
    );
    out
}

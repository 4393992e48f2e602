//! Wake-ups between processes sharing the embedded store. A member listens on a
//! loopback TCP port (its `poke_port` in `members`) and on a Unix socket named after
//! that port beside the database ([`socket_path`]); a poke is a frame on a connection
//! to either:
//!
//! * `!`: look at your inbox table (what every poke was before letters);
//! * `L`, a little-endian `u32` length, then a postcard [`Letter`]: the inbox row
//!   itself (see `letters`).
//!
//! Letters go over the Unix socket only, which only the user's processes can reach
//! (mode 0600), while any local process can connect to a loopback port: a letter is
//! handed out as a message, a TCP byte only makes the member read its table. Over TCP
//! every byte is a bare poke, as it always was: older kar processes send `!` there
//! and read any byte they receive as a poke, and a member without a socket (a path
//! too long, an older kar) gets bare pokes. A Unix socket is also cheaper to write to
//! than loopback TCP.
//!
//! The store is the truth and a poke only a hint. A poke that cannot be written whole
//! at once (the receiver is far behind) closes the connection instead: the receiver
//! reads its table when a connection ends, so a lost letter is never missed.

use super::letters::{Letter, Mailbox};
use crate::codec::decode;
use std::collections::HashMap;
use std::future::poll_fn;
use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::{TcpListener, UnixListener};

/// The frame of a bare poke.
pub(crate) const BARE: u8 = b'!';
/// The tag of a letter frame.
const LETTER: u8 = b'L';
/// Letter frames above this are refused (the connection is dropped): a sender never
/// makes one (`letters::MAX_PAYLOAD`).
const MAX_FRAME: usize = 1 << 20;

/// Bytes read from a connection at once.
const READ_BUFFER: usize = 64 * 1024;

/// Appends the frame of an encoded letter to `out`.
pub(crate) fn frame_letter(out: &mut Vec<u8>, encoded: &[u8]) {
    out.push(LETTER);
    out.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
    out.extend_from_slice(encoded);
}

/// The Unix socket of the member whose poke port is `port`, in the store directory
/// `dir`. Ports are unique among live members (the TCP listener holds it), so a file
/// of that name left by a dead member can be replaced.
pub(crate) fn socket_path(dir: &Path, port: u16) -> PathBuf {
    dir.join("pokes").join(port.to_string())
}

/// A connection to a member.
enum Peer {
    /// Its Unix socket: letters and bare pokes.
    Unix(UnixStream),
    /// Its TCP port (it has no socket): bare pokes only.
    Tcp(TcpStream),
}

/// Sends pokes; keeps one connection per peer.
pub(crate) struct Poker {
    /// The store directory, where members' sockets are.
    dir: PathBuf,
    peers: HashMap<u16, Peer>,
}

impl Poker {
    pub(crate) fn new(dir: &Path) -> Poker {
        Poker {
            dir: dir.to_path_buf(),
            peers: HashMap::new(),
        }
    }

    /// Sends `frames` (whole frames) to the member listening on `port`; over TCP, a
    /// bare poke instead.
    pub(crate) fn send(&mut self, port: u16, frames: &[u8]) {
        for _attempt in 0..2 {
            let peer = match self.peers.get_mut(&port) {
                Some(s) => s,
                None => match connect(&self.dir, port) {
                    Some(s) => self.peers.entry(port).or_insert(s),
                    None => return, // peer gone: nothing to wake
                },
            };
            let written = match peer {
                Peer::Unix(stream) => stream.write(frames).map(|n| n == frames.len()),
                Peer::Tcp(stream) => stream.write(&[BARE]).map(|n| n == 1),
            };
            let stale = match written {
                Ok(true) => return,
                // Part of it, or nothing, fits: the receiver has much unread. Closing
                // (after what was written) makes it read its table once it gets there.
                Ok(false) => false,
                Err(e) => e.kind() != ErrorKind::WouldBlock,
            };
            self.peers.remove(&port);
            if !stale {
                return;
            }
            // Stale connection (peer restarted or left): reconnect once.
        }
    }
}

/// Connects to the member listening on `port`: its socket if it has one, else TCP.
fn connect(dir: &Path, port: u16) -> Option<Peer> {
    if let Ok(stream) = UnixStream::connect(socket_path(dir, port)) {
        stream.set_nonblocking(true).ok()?;
        return Some(Peer::Unix(stream));
    }
    let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_nodelay(true).ok()?;
    stream.set_nonblocking(true).ok()?;
    Some(Peer::Tcp(stream))
}

/// A member's listeners for pokes: what they bring goes to `mailbox`.
pub(crate) struct Listening {
    pub(crate) port: u16,
    pub(crate) mailbox: Arc<Mailbox>,
    /// Its Unix socket, if it could make one (removed on drop).
    socket: Option<PathBuf>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Listens for pokes on a loopback port and on a Unix socket under the store
/// directory `dir` (see the module's doc).
pub(crate) async fn listen(dir: &Path) -> std::io::Result<Listening> {
    let tcp = TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = tcp.local_addr()?.port();
    let mailbox = Arc::new(Mailbox::default());
    let over_tcp = move |cx: &mut Context<'_>| tcp.poll_accept(cx).map_ok(|(stream, _)| stream);
    let mut tasks = vec![tokio::spawn(accept(over_tcp, mailbox.clone(), false))];
    let path = socket_path(dir, port);
    remove_dead_sockets(dir);
    let socket = match bind_socket(&path) {
        Ok(unix) => {
            let over_unix =
                move |cx: &mut Context<'_>| unix.poll_accept(cx).map_ok(|(stream, _)| stream);
            tasks.push(tokio::spawn(accept(over_unix, mailbox.clone(), true)));
            Some(path)
        }
        Err(e) => {
            // Bare pokes over TCP still wake the member: slower, never wrong.
            tracing::debug!("no poke socket at {}: {e}", path.display());
            None
        }
    };
    Ok(Listening {
        port,
        mailbox,
        socket,
        tasks,
    })
}

/// A socket file younger than this is never taken for a dead member's: its member
/// may be between binding it and listening on it.
const SOCKET_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Removes the socket files that members killed without leaving behind (nothing
/// listens on them any more): a member that starts tidies up after those that died.
/// Files it cannot judge (not a socket, not the user's, too young) stay.
fn remove_dead_sockets(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir.join("pokes")) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let old = entry
            .metadata()
            .ok()
            .and_then(|meta| meta.modified().ok())
            .and_then(|modified| modified.elapsed().ok())
            .is_some_and(|age| age > SOCKET_GRACE);
        let named_by_port = entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.parse::<u16>().is_ok());
        if !(old && named_by_port) {
            continue;
        }
        let dead = matches!(
            UnixStream::connect(&path),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused
        );
        if dead {
            tracing::debug!(
                "removing the poke socket of a dead member: {}",
                path.display()
            );
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Binds the Unix socket at `path`, replacing a dead member's file, reachable by the
/// user only.
fn bind_socket(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Accepts connections (`poll_accept` of a TCP or Unix listener), each read by a task
/// of its own; `letters`: whether they may carry letters (the Unix socket).
async fn accept<S: AsyncRead + Unpin + Send + 'static>(
    mut poll_accept: impl FnMut(&mut Context<'_>) -> Poll<std::io::Result<S>>,
    mailbox: Arc<Mailbox>,
    letters: bool,
) {
    let mut pause = Duration::ZERO;
    loop {
        match poll_fn(&mut poll_accept).await {
            Ok(stream) => {
                pause = Duration::ZERO;
                tokio::spawn(receive(stream, mailbox.clone(), letters));
            }
            Err(e) => pause = pause_after(pause, e).await,
        }
    }
}

/// Waits after a failed accept (out of file descriptors, say), longer each time in a
/// row, instead of trying again at once in a loop that takes a whole core. Returns
/// the pause taken. Senders that cannot connect meanwhile fall back or retry: the
/// inbox table stays the truth.
async fn pause_after(previous: Duration, error: std::io::Error) -> Duration {
    let pause = next_pause(previous);
    tracing::warn!("cannot accept a poke connection (retrying in {pause:?}): {error}");
    tokio::time::sleep(pause).await;
    pause
}

/// 5 ms, then twice the previous pause, up to a second.
fn next_pause(previous: Duration) -> Duration {
    (previous * 2).clamp(Duration::from_millis(5), Duration::from_secs(1))
}

/// Reads the pokes of one connection into `mailbox`: frames where `letters` are
/// accepted (the Unix socket), else any byte is a bare poke.
async fn receive(mut stream: impl AsyncRead + Unpin, mailbox: Arc<Mailbox>, letters: bool) {
    let mut frames = Frames::default();
    // Large enough for the letters of a whole batch of transitions (a reminder pass
    // fires 256) in one read and one wake-up.
    let mut buf = vec![0u8; if letters { READ_BUFFER } else { 256 }];
    loop {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        let ok = n > 0
            && if letters {
                frames.read(&buf[..n], &mailbox)
            } else {
                mailbox.put_bare();
                true
            };
        if !ok {
            // The sender may have dropped a letter when it closed.
            mailbox.put_bare();
            mailbox.notify.notify_one();
            break;
        }
        mailbox.notify.notify_one();
    }
}

/// Parses the frames of one connection, across reads.
#[derive(Default)]
struct Frames {
    /// The start of a frame not yet complete.
    partial: Vec<u8>,
}

impl Frames {
    /// Puts the frames completed by `bytes` in `mailbox`. `false`: the stream is
    /// unusable (a frame too large), drop the connection.
    fn read(&mut self, bytes: &[u8], mailbox: &Mailbox) -> bool {
        self.partial.extend_from_slice(bytes);
        let mut at = 0;
        let ok = loop {
            let rest = &self.partial[at..];
            let Some(&tag) = rest.first() else {
                break true;
            };
            if tag != LETTER {
                // `!`, or a byte of an older kar, for which every byte was a poke.
                mailbox.put_bare();
                at += 1;
                continue;
            }
            let Some(len) = rest.get(1..5) else {
                break true;
            };
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if len > MAX_FRAME {
                break false;
            }
            let Some(body) = rest.get(5..5 + len) else {
                break true;
            };
            match decode::<Letter>("poke letter", body) {
                Ok(letter) => mailbox.put(letter),
                Err(_) => mailbox.put_bare(),
            }
            at += 5 + len;
        };
        self.partial.drain(..at);
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::encode;

    fn letter(seq: i64) -> Letter {
        Letter {
            seq,
            prev: seq - 1,
            kind: super::super::inbox::EXECUTE,
            request_id: format!("r{seq}"),
            request_kind: 0,
            payload: vec![7; seq as usize],
        }
    }

    /// Letters split anywhere across reads arrive whole and in order; a bare poke
    /// among them asks for a table read.
    #[test]
    fn frames_survive_any_split() {
        let mut stream = Vec::new();
        for seq in 1..=3 {
            frame_letter(&mut stream, &encode(&letter(seq)));
        }
        for cut in 0..stream.len() {
            let mailbox = Mailbox::default();
            let mut frames = Frames::default();
            assert!(frames.read(&stream[..cut], &mailbox));
            assert!(frames.read(&stream[cut..], &mailbox));
            let got: Vec<i64> = mailbox.open(0).unwrap().iter().map(|l| l.seq).collect();
            assert_eq!(got, vec![1, 2, 3], "cut at {cut}");
        }
        let mailbox = Mailbox::default();
        let mut frames = Frames::default();
        let mut with_bare = stream.clone();
        with_bare.push(BARE);
        assert!(frames.read(&with_bare, &mailbox));
        assert!(mailbox.open(0).is_none());
    }

    #[test]
    fn an_oversized_frame_drops_the_connection() {
        let mailbox = Mailbox::default();
        let mut frames = Frames::default();
        let mut stream = vec![LETTER];
        stream.extend_from_slice(&(MAX_FRAME as u32 + 1).to_le_bytes());
        assert!(!frames.read(&stream, &mailbox));
    }

    /// Through the member's socket: letters arrive; the end of the connection asks
    /// for a table read (a letter may have been lost with it).
    #[tokio::test]
    async fn letters_travel_and_a_closed_connection_means_a_table_read() {
        let dir = tempfile::tempdir().unwrap();
        let listening = listen(dir.path()).await.unwrap();
        let mailbox = listening.mailbox.clone();
        let mut poker = Poker::new(dir.path());
        let mut frames = Vec::new();
        frame_letter(&mut frames, &encode(&letter(1)));
        frame_letter(&mut frames, &encode(&letter(2)));
        poker.send(listening.port, &frames);
        let got = loop {
            mailbox.notify.notified().await;
            // Both letters may come in two reads.
            let got = mailbox.open(0).unwrap();
            if !got.is_empty() {
                break got;
            }
        };
        assert_eq!(got[0].seq, 1);
        drop(poker);
        loop {
            mailbox.notify.notified().await;
            if mailbox.open(2).is_none() {
                break;
            }
        }
    }

    /// Only the user reaches the socket, and it goes with the listener.
    #[tokio::test]
    async fn the_socket_is_the_users_and_goes_with_the_member() {
        let dir = tempfile::tempdir().unwrap();
        let listening = listen(dir.path()).await.unwrap();
        let path = socket_path(dir.path(), listening.port);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(listening);
        assert!(!path.exists());
    }

    /// A member that starts removes the sockets of members killed without removing
    /// theirs, and only those: not a live member's, not a young one, not other files.
    #[tokio::test]
    async fn a_starting_member_removes_dead_members_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let live = listen(dir.path()).await.unwrap();
        let live_path = socket_path(dir.path(), live.port);
        // Sockets nothing listens on any more (as a kill -9 leaves them).
        let dead_path = socket_path(dir.path(), 1);
        let young_path = socket_path(dir.path(), 2);
        drop(std::os::unix::net::UnixListener::bind(&dead_path).unwrap());
        drop(std::os::unix::net::UnixListener::bind(&young_path).unwrap());
        let other = dir.path().join("pokes").join("notes");
        std::fs::write(&other, "kept").unwrap();
        for path in [&dead_path, &live_path, &other] {
            let aged = std::process::Command::new("touch")
                .args(["-d", "1 hour ago"])
                .arg(path)
                .status()
                .unwrap();
            assert!(aged.success());
        }
        let started = listen(dir.path()).await.unwrap();
        assert!(
            !dead_path.exists(),
            "the dead member's socket is still there"
        );
        assert!(live_path.exists() && young_path.exists() && other.exists());
        assert!(socket_path(dir.path(), started.port).exists());
    }

    /// A letter written to the TCP port (any local process can) is only a bare
    /// poke; so is what a sender that finds no socket sends.
    #[tokio::test]
    async fn over_tcp_a_letter_is_only_a_bare_poke() {
        let dir = tempfile::tempdir().unwrap();
        let listening = listen(dir.path()).await.unwrap();
        let mailbox = listening.mailbox.clone();
        let mut forged = Vec::new();
        frame_letter(&mut forged, &encode(&letter(1)));
        let mut tcp = TcpStream::connect(("127.0.0.1", listening.port)).unwrap();
        tcp.write_all(&forged).unwrap();
        mailbox.notify.notified().await;
        assert!(
            mailbox.open(0).is_none(),
            "a letter over TCP was handed out"
        );

        // A sender looking for sockets elsewhere falls back to TCP.
        let elsewhere = tempfile::tempdir().unwrap();
        let mut poker = Poker::new(elsewhere.path());
        poker.send(listening.port, &forged);
        assert!(matches!(
            poker.peers.get(&listening.port),
            Some(Peer::Tcp(_))
        ));
        mailbox.notify.notified().await;
        assert!(mailbox.open(0).is_none());
    }

    /// Failed accepts in a row wait 5 ms, then twice as long each time, never more
    /// than a second (an accepted connection starts again from zero).
    #[test]
    fn failed_accepts_wait_longer_each_time_up_to_a_second() {
        let mut pause = Duration::ZERO;
        let pauses: Vec<u128> = (0..10)
            .map(|_| {
                pause = next_pause(pause);
                pause.as_millis()
            })
            .collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
    }
}

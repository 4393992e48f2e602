//! Wake-ups between processes sharing the embedded store. A member listens on a
//! loopback TCP port; a poke is a frame on a connection to it:
//!
//! * `!`: look at your inbox table (what every poke was before letters; older kar
//!   processes send only these, and read any byte as one);
//! * `L`, a little-endian `u32` length, then a postcard [`Letter`]: the inbox row
//!   itself (see `letters`).
//!
//! The store is the truth and a poke only a hint. A poke that cannot be written whole
//! at once (the receiver is far behind) closes the connection instead: the receiver
//! reads its table when a connection ends, so a lost letter is never missed.

use super::letters::{Letter, Mailbox};
use crate::codec::decode;
use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

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

/// Sends pokes; keeps one connection per peer.
#[derive(Default)]
pub(crate) struct Poker {
    peers: HashMap<u16, TcpStream>,
}

impl Poker {
    /// Sends `frames` (whole frames) to the member listening on `port`.
    pub(crate) fn send(&mut self, port: u16, frames: &[u8]) {
        for _attempt in 0..2 {
            let stream = match self.peers.get_mut(&port) {
                Some(s) => s,
                None => match connect(port) {
                    Some(s) => self.peers.entry(port).or_insert(s),
                    None => return, // peer gone: nothing to wake
                },
            };
            match stream.write(frames) {
                Ok(n) if n == frames.len() => return,
                // Part of it, or nothing, fits: the receiver has much unread. Closing
                // (after what was written) makes it read its table once it gets there.
                Ok(_) => {
                    self.peers.remove(&port);
                    return;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.peers.remove(&port);
                    return;
                }
                Err(_) => {
                    // Stale connection (peer restarted or left): reconnect once.
                    self.peers.remove(&port);
                }
            }
        }
    }
}

fn connect(port: u16) -> Option<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_nodelay(true).ok()?;
    stream.set_nonblocking(true).ok()?;
    Some(stream)
}

/// Listens for pokes and puts what they bring in the returned mailbox.
pub(crate) async fn listen() -> std::io::Result<(u16, Arc<Mailbox>, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    let mailbox = Arc::new(Mailbox::default());
    let mailbox2 = mailbox.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let mailbox = mailbox2.clone();
            tokio::spawn(async move {
                let mut frames = Frames::default();
                // Large enough for the letters of a whole batch of transitions
                // (a reminder pass fires 256) in one read and one wake-up.
                let mut buf = vec![0u8; READ_BUFFER];
                loop {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 || !frames.read(&buf[..n], &mailbox) {
                        // The sender may have dropped a letter when it closed.
                        mailbox.put_bare();
                        mailbox.notify.notify_one();
                        break;
                    }
                    mailbox.notify.notify_one();
                }
            });
        }
    });
    Ok((port, mailbox, task))
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

    /// Through a real connection: letters arrive; the end of the connection asks for a
    /// table read (a letter may have been lost with it).
    #[tokio::test]
    async fn letters_travel_and_a_closed_connection_means_a_table_read() {
        let (port, mailbox, _task) = listen().await.unwrap();
        let mut poker = Poker::default();
        let mut frames = Vec::new();
        frame_letter(&mut frames, &encode(&letter(1)));
        frame_letter(&mut frames, &encode(&letter(2)));
        poker.send(port, &frames);
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
}

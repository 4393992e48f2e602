//! Wake-ups between processes sharing the embedded store. A member listens on a
//! loopback TCP port; any byte received means "look at your inbox". The store is the
//! truth and a poke only a hint, so a poke that would block is dropped: the receiver
//! already has unread pokes pending and will look anyway.

use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Sends pokes; keeps one connection per peer.
#[derive(Default)]
pub(crate) struct Poker {
    peers: HashMap<u16, TcpStream>,
}

impl Poker {
    pub(crate) fn poke(&mut self, port: u16) {
        for _attempt in 0..2 {
            let stream = match self.peers.get_mut(&port) {
                Some(s) => s,
                None => match connect(port) {
                    Some(s) => self.peers.entry(port).or_insert(s),
                    None => return, // peer gone: nothing to wake
                },
            };
            match stream.write(b"!") {
                Ok(_) => return,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
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

/// Listens for pokes and turns them into notifications.
pub(crate) async fn listen() -> std::io::Result<(u16, Arc<Notify>, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    let notify = Arc::new(Notify::new());
    let notify2 = notify.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let notify = notify2.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    notify.notify_one();
                }
            });
        }
    });
    Ok((port, notify, task))
}

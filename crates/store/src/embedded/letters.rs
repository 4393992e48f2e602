//! Letters: the inbox message a poke carries, so that the woken member can skip the
//! read of its inbox table (one read transaction on each side of every call).
//!
//! The inbox table stays the truth. A transition that appends a request's `EXECUTE` or
//! `COMPLETED` row posts a [`Letter`] with the row's content, its `seq`, and `prev`, the
//! highest `seq` among the member's inbox rows before it. The thread that commits (see
//! `db`) sends the letters of committed transitions only, after the commit, in commit
//! order. The receiver hands a letter out only if it has handed out every row up to
//! `prev`: rows of one member's inbox get increasing `seq`s in commit order (one
//! writer at a time, `AUTOINCREMENT`), so nothing of that inbox lies between `prev`
//! and the letter's row.
//! Otherwise (letters of several senders crossing, a bare poke, a letter lost with a
//! connection, too many pending) it reads its table as it did before letters existed:
//! every row a pending letter names was committed before the letter was sent, so the
//! read finds it.

use super::inbox::{COMPLETED, EXECUTE};
use crate::codec::{decode, encode};
use crate::codes::kind_from_code;
use crate::{Message, StoreError};
use kar_protocol::RequestId;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::Notify;

/// One inbox row, carried by the poke that announces it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub(super) struct Letter {
    /// The row's `seq`.
    pub(super) seq: i64,
    /// The highest `seq` of the member's inbox rows before this one (0: none).
    pub(super) prev: i64,
    /// `EXECUTE` or `COMPLETED`.
    pub(super) kind: i64,
    pub(super) request_id: String,
    /// The request's kind code (`COMPLETED` rows).
    pub(super) request_kind: i64,
    /// `EXECUTE`: the request record; `COMPLETED`: the outcome (both postcard).
    pub(super) payload: Vec<u8>,
}

/// Payloads above this go without a letter (a bare poke; the receiver reads its
/// table): a poke stays small, and so does the receiver's queue of letters.
pub(super) const MAX_PAYLOAD: usize = 16 * 1024;

/// Letters a receiver keeps before it gives up on them and reads its table instead.
const MAX_PENDING: usize = 1024;

impl Letter {
    /// The message the row stands for (as the inbox read decodes it).
    pub(super) fn message(self) -> Result<Message, StoreError> {
        let key = &self.request_id;
        match self.kind {
            EXECUTE => Ok(Message::Execute(Box::new(decode(key, &self.payload)?))),
            COMPLETED => Ok(Message::Completed {
                kind: kind_from_code(key, self.request_kind)?,
                outcome: decode(key, &self.payload)?,
                id: RequestId(self.request_id),
            }),
            kind => Err(StoreError::Corrupt {
                key: format!("letter {} (request {})", self.seq, self.request_id),
                reason: format!("unknown inbox row kind {kind}"),
            }),
        }
    }
}

thread_local! {
    /// Letters posted by the write job running on this thread (the database thread,
    /// or a caller running its job alone), encoded, with the port of their receiver:
    /// taken by the job when it succeeds, discarded when it fails (see
    /// `writer::TypedJob::run`).
    static OUTBOX: RefCell<Vec<(u16, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
}

/// Posts `letter` to the member listening on `port`, sent once the transaction of the
/// running job has committed.
pub(super) fn post(port: u16, letter: &Letter) {
    let encoded = encode(letter);
    OUTBOX.with(|outbox| outbox.borrow_mut().push((port, encoded)));
}

/// The letters posted since the last take or discard.
pub(super) fn take_posted() -> Vec<(u16, Vec<u8>)> {
    OUTBOX.with(|outbox| std::mem::take(&mut *outbox.borrow_mut()))
}

pub(super) fn discard_posted() {
    OUTBOX.with(|outbox| outbox.borrow_mut().clear());
}

/// What a member's pokes brought since its last look: filled by the poke listener,
/// emptied by the inbox.
#[derive(Default)]
pub(super) struct Mailbox {
    pub(super) notify: Notify,
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    letters: VecDeque<Letter>,
    /// A bare poke came (or letters were lost): the table must be read.
    read_table: bool,
}

impl Mailbox {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A letter arrived (the caller notifies once it has put what it read).
    pub(super) fn put(&self, letter: Letter) {
        let mut pending = self.pending();
        if pending.letters.len() >= MAX_PENDING {
            pending.letters.clear();
            pending.read_table = true;
        } else {
            pending.letters.push_back(letter);
        }
    }

    /// A bare poke arrived, or letters may have been lost.
    pub(super) fn put_bare(&self) {
        self.pending().read_table = true;
    }

    /// Forgets what is pending, right before a read of the table: the read finds
    /// every row a pending letter names.
    pub(super) fn clear(&self) {
        let mut pending = self.pending();
        pending.letters.clear();
        pending.read_table = false;
    }

    /// Takes what is pending: the letters to hand out, in order, for a member that
    /// handed out its rows up to `acked`; `None` when the table must be read instead.
    pub(super) fn open(&self, acked: i64) -> Option<Vec<Letter>> {
        let mut pending = self.pending();
        let read_table = std::mem::take(&mut pending.read_table);
        let letters = std::mem::take(&mut pending.letters);
        drop(pending);
        if read_table {
            return None;
        }
        in_order(acked, letters)
    }
}

/// The letters to hand out after `acked`, in `seq` order, or `None` if one of them
/// follows a row that neither `acked` nor an earlier letter covers (a gap: read the
/// table). Letters for rows already handed out are dropped.
fn in_order(acked: i64, letters: impl IntoIterator<Item = Letter>) -> Option<Vec<Letter>> {
    let mut handed = acked;
    let mut out = Vec::new();
    for letter in letters {
        if letter.seq <= handed {
            continue;
        }
        if letter.prev > handed {
            return None;
        }
        handed = letter.seq;
        out.push(letter);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(seq: i64, prev: i64) -> Letter {
        Letter {
            seq,
            prev,
            kind: EXECUTE,
            request_id: format!("r{seq}"),
            request_kind: 0,
            payload: Vec::new(),
        }
    }

    fn seqs(letters: Option<Vec<Letter>>) -> Option<Vec<i64>> {
        letters.map(|l| l.into_iter().map(|l| l.seq).collect())
    }

    #[test]
    fn letters_that_follow_what_was_handed_out_are_handed_out() {
        // Other members' rows lie between 3 and 7: only this inbox's rows count.
        let got = in_order(3, [letter(7, 3), letter(9, 7), letter(12, 9)]);
        assert_eq!(seqs(got), Some(vec![7, 9, 12]));
    }

    #[test]
    fn a_letter_after_an_unseen_row_means_a_table_read() {
        // Row 5 (a bare row, or a letter still on its way) was not handed out.
        assert_eq!(seqs(in_order(3, [letter(7, 5)])), None);
        // Crossed letters of two senders: the later one first.
        assert_eq!(seqs(in_order(3, [letter(9, 7), letter(7, 3)])), None);
    }

    #[test]
    fn letters_for_rows_already_read_are_dropped() {
        // The table read that handed out up to 9 found rows 7 and 9.
        let got = in_order(9, [letter(7, 3), letter(9, 7), letter(11, 9)]);
        assert_eq!(seqs(got), Some(vec![11]));
        assert_eq!(seqs(in_order(9, [letter(9, 7)])), Some(vec![]));
    }

    #[test]
    fn a_bare_poke_or_an_overflow_means_a_table_read() {
        let mailbox = Mailbox::default();
        mailbox.put(letter(7, 3));
        mailbox.put_bare();
        assert_eq!(seqs(mailbox.open(3)), None);
        // Opened: nothing pending any more.
        assert_eq!(seqs(mailbox.open(3)), Some(vec![]));

        for seq in 0..=MAX_PENDING as i64 {
            mailbox.put(letter(seq + 4, seq + 3));
        }
        assert_eq!(seqs(mailbox.open(3)), None);
    }

    #[test]
    fn clearing_before_a_table_read_drops_pending_letters() {
        let mailbox = Mailbox::default();
        mailbox.put(letter(7, 3));
        mailbox.put_bare();
        mailbox.clear();
        assert_eq!(seqs(mailbox.open(3)), Some(vec![]));
    }

    #[test]
    fn a_letter_decodes_to_the_message_of_its_row() {
        let outcome = kar_protocol::Outcome::Reply(kar_protocol::Reply::text(200, "ok"));
        let completed = Letter {
            seq: 4,
            prev: 0,
            kind: COMPLETED,
            request_id: "r4".into(),
            request_kind: crate::codes::kind_code(kar_protocol::RequestKind::Call),
            payload: encode(&outcome),
        };
        match completed.message() {
            Ok(Message::Completed {
                id,
                kind,
                outcome: got,
            }) => {
                assert_eq!(id.0, "r4");
                assert_eq!(kind, kar_protocol::RequestKind::Call);
                assert_eq!(got, outcome);
            }
            other => panic!("unexpected {other:?}"),
        }
        let unknown = Letter {
            kind: 9,
            ..letter(5, 4)
        };
        assert!(matches!(unknown.message(), Err(StoreError::Corrupt { .. })));
    }
}

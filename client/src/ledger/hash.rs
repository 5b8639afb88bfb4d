//! The canonical serialisation of a ledger entry and its SHA-256 hash ([`entry_hash`]).
//!
//! The encoding is deliberately dumb and unambiguous, so that anyone can re-implement it
//! to audit a ledger file: the ASCII tag `silo-ledger-v1`, then every field in the order
//! below, each as
//!
//! - text: its UTF-8 length as a big-endian u64, then the bytes (JSON fields are hashed as
//!   the exact text stored, never re-serialised);
//! - integers: big-endian u64;
//! - reals: the IEEE-754 bits as a big-endian u64 (SQLite REAL round-trips f64 exactly).
//!
//! Field order: seq, job_id, task_id, dataset, mechanism, parameters, sensitivity,
//! guarantee, events, epsilon, delta, epsilon_spent, recorded_at, prev_hash. The hash is
//! lowercase hex. The first entry's `prev_hash` is [`GENESIS_HASH`].

use sha2::{Digest, Sha256};

use super::LedgerEntry;

/// `prev_hash` of the first entry: 64 zeros.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

const TAG: &[u8] = b"silo-ledger-v1";

/// SHA-256 (hex) over the canonical serialisation of every field of `e` except `hash`:
/// the tag `silo-ledger-v1`, then seq, job_id, task_id, dataset, mechanism, parameters,
/// sensitivity, guarantee, events, epsilon, delta, epsilon_spent, recorded_at, prev_hash;
/// text as big-endian u64 length + UTF-8 bytes, integers as big-endian u64, reals as their
/// IEEE-754 bits (big-endian u64).
pub fn entry_hash(e: &LedgerEntry) -> String {
    let mut h = Sha256::new();
    h.update(TAG);
    let text = |h: &mut Sha256, s: &str| {
        h.update((s.len() as u64).to_be_bytes());
        h.update(s.as_bytes());
    };
    h.update(e.seq.to_be_bytes());
    text(&mut h, &e.job_id);
    text(&mut h, &e.task_id);
    text(&mut h, &e.dataset);
    text(&mut h, &e.mechanism);
    text(&mut h, &e.parameters);
    text(&mut h, &e.sensitivity);
    text(&mut h, &e.guarantee);
    text(&mut h, &e.events);
    h.update(e.epsilon.to_bits().to_be_bytes());
    h.update(e.delta.to_bits().to_be_bytes());
    h.update(e.epsilon_spent.to_bits().to_be_bytes());
    text(&mut h, &e.recorded_at);
    text(&mut h, &e.prev_hash);
    hex::encode(h.finalize())
}

//! Reassembling a task result from its `ResultChunk`s, with a size bound.
//!
//! Chunks of one task must arrive in order (consecutive `seq`, starting wherever the
//! first chunk says); `last` closes the result. A result larger than the configured bound,
//! a gap in the sequence, or more concurrent partial results than [`MAX_PARTIAL`] is
//! rejected, and the rest of that task's chunks are dropped.

use std::collections::{HashMap, HashSet};

use silo_proto::ResultChunk;

/// Most results one session may be sending at the same time.
pub const MAX_PARTIAL: usize = 64;

/// What one chunk led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunked {
    /// More chunks are expected.
    Pending,
    /// The result is complete.
    Complete {
        /// The task.
        task_id: String,
        /// The whole result.
        data: Vec<u8>,
    },
    /// The result was refused; later chunks of the task are ignored.
    Rejected {
        /// The task.
        task_id: String,
        /// Why.
        reason: String,
    },
    /// A chunk of an already rejected result.
    Ignored,
}

struct Partial {
    next_seq: u32,
    data: Vec<u8>,
}

/// Per-session reassembly state.
pub struct Reassembly {
    max_bytes: u64,
    partial: HashMap<String, Partial>,
    rejected: HashSet<String>,
}

impl Reassembly {
    /// Results up to `max_bytes` are accepted.
    pub fn new(max_bytes: u64) -> Self {
        Reassembly {
            max_bytes,
            partial: HashMap::new(),
            rejected: HashSet::new(),
        }
    }

    /// Marks a task's result as refused (e.g. its announced size is too large).
    pub fn reject(&mut self, task_id: &str) {
        self.partial.remove(task_id);
        self.rejected.insert(task_id.to_string());
    }

    /// Adds one chunk.
    pub fn push(&mut self, chunk: ResultChunk) -> Chunked {
        let ResultChunk {
            task_id,
            seq,
            data,
            last,
        } = chunk;
        if self.rejected.contains(&task_id) {
            if last {
                self.rejected.remove(&task_id);
            }
            return Chunked::Ignored;
        }
        if !self.partial.contains_key(&task_id) && self.partial.len() >= MAX_PARTIAL {
            return self.refuse(
                task_id,
                last,
                format!("more than {MAX_PARTIAL} results in flight on one session"),
            );
        }
        let partial = self
            .partial
            .entry(task_id.clone())
            .or_insert_with(|| Partial {
                next_seq: seq,
                data: Vec::new(),
            });
        if seq != partial.next_seq {
            let expected = partial.next_seq;
            return self.refuse(
                task_id,
                last,
                format!("result chunk {seq} arrived where chunk {expected} was expected"),
            );
        }
        let size = partial.data.len() as u64 + data.len() as u64;
        if size > self.max_bytes {
            let max = self.max_bytes;
            return self.refuse(
                task_id,
                last,
                format!("result exceeds the coordinator's limit of {max} bytes (max_result_bytes)"),
            );
        }
        partial.data.extend_from_slice(&data);
        partial.next_seq = seq.wrapping_add(1);
        if last {
            let partial = self.partial.remove(&task_id).expect("present");
            Chunked::Complete {
                task_id,
                data: partial.data,
            }
        } else {
            Chunked::Pending
        }
    }

    fn refuse(&mut self, task_id: String, last: bool, reason: String) -> Chunked {
        self.partial.remove(&task_id);
        if !last {
            self.rejected.insert(task_id.clone());
        }
        Chunked::Rejected { task_id, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(task: &str, seq: u32, data: &[u8], last: bool) -> ResultChunk {
        ResultChunk {
            task_id: task.into(),
            seq,
            data: data.to_vec(),
            last,
        }
    }

    #[test]
    fn chunks_in_order_make_the_result() {
        let mut r = Reassembly::new(100);
        assert_eq!(r.push(chunk("t", 0, b"ab", false)), Chunked::Pending);
        assert_eq!(
            r.push(chunk("u", 1, b"x", true)),
            Chunked::Complete {
                task_id: "u".into(),
                data: b"x".to_vec()
            }
        );
        assert_eq!(
            r.push(chunk("t", 1, b"cd", true)),
            Chunked::Complete {
                task_id: "t".into(),
                data: b"abcd".to_vec()
            }
        );
    }

    #[test]
    fn oversized_results_are_rejected_and_the_rest_ignored() {
        let mut r = Reassembly::new(3);
        assert_eq!(r.push(chunk("t", 0, b"ab", false)), Chunked::Pending);
        assert!(
            matches!(r.push(chunk("t", 1, b"cd", false)), Chunked::Rejected { reason, .. } if reason.contains("limit of 3 bytes"))
        );
        assert_eq!(r.push(chunk("t", 2, b"ef", true)), Chunked::Ignored);
        // The task id is forgotten after its last chunk.
        assert_eq!(
            r.push(chunk("t", 0, b"a", true)),
            Chunked::Complete {
                task_id: "t".into(),
                data: b"a".to_vec()
            }
        );
    }

    #[test]
    fn gaps_are_rejected() {
        let mut r = Reassembly::new(100);
        assert_eq!(r.push(chunk("t", 0, b"ab", false)), Chunked::Pending);
        assert!(
            matches!(r.push(chunk("t", 2, b"cd", true)), Chunked::Rejected { reason, .. } if reason.contains("chunk 2 arrived where chunk 1"))
        );
    }
}

//! An unfinished job in the scheduler's hands, and the pure rules that decide its round.

use std::collections::BTreeMap;

use silo_common::spec::JobSpec;
use tokio::time::Instant;

use crate::jobs::JobKind;
use crate::store::{JobRecord, TaskRecord, TaskState};

/// One site's task in the current attempt.
pub(super) struct Slot {
    pub task: TaskRecord,
    /// The session the task went out on; only that session's end fails it.
    pub session: u64,
    /// The site said `done`.
    pub done_reported: bool,
    /// Size the site announced with `done` (0 = not announced).
    pub expected_bytes: u64,
    /// The reassembled result, stored, waiting for `done`.
    pub result: Option<Vec<u8>>,
}

/// Where a job is in its current round.
pub(super) enum Phase {
    /// Waiting for `min_sites` eligible sites. With a deadline (a retry, or a round after
    /// the first), the attempt counts as failed when it passes; without one (a fresh job,
    /// or a job resumed after a restart) the job waits until sites come or it is cancelled.
    Waiting { deadline: Option<Instant> },
    /// Tasks are out; live ones are excluded at the deadline.
    Round {
        deadline: Instant,
        slots: BTreeMap<String, Slot>,
    },
}

/// An unfinished job.
pub(super) struct ActiveJob {
    pub record: JobRecord,
    pub spec: JobSpec,
    pub kind: Box<dyn JobKind>,
    /// Highest attempt number used for `record.round` (0 = none yet).
    pub attempt: u32,
    /// Failed attempts of the current round (since the last restart).
    pub failed_attempts: u32,
    /// Why those attempts failed, for the final reason.
    pub history: Vec<String>,
    /// Why the job is waiting, when it is not simply new (a retry, a restart).
    pub note: Option<String>,
    /// The attempt a coordinator restart interrupted, when sites had already delivered in
    /// it: the next start continues it instead of starting a new attempt.
    pub resumed: Option<ResumedAttempt>,
    pub phase: Phase,
}

/// An attempt of the current round that was running when the coordinator stopped, with
/// the results it had already accepted (stored and acknowledged: the sites charged for
/// them). Continuing it keeps those results and asks only the other sites, with new tasks
/// (DESIGN section 6: nothing that was acknowledged is lost).
pub(super) struct ResumedAttempt {
    /// The attempt's number; the new tasks belong to it too.
    pub attempt: u32,
    /// The tasks that were done, each with its stored result.
    pub kept: Vec<(TaskRecord, Vec<u8>)>,
    /// Makes the new tasks' ids differ from every earlier task id of the job (the number
    /// of tasks the job had when it was reloaded).
    pub generation: usize,
}

impl ResumedAttempt {
    /// Names of the sites whose results are kept.
    pub fn kept_sites(&self) -> Vec<String> {
        self.kept.iter().map(|(t, _)| t.site.clone()).collect()
    }
}

impl ActiveJob {
    pub fn deadline(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Waiting { deadline } => *deadline,
            Phase::Round { deadline, .. } => Some(*deadline),
        }
    }

    pub fn min_sites(&self) -> usize {
        self.spec.min_sites as usize
    }

    /// The round currently planned or running (1-based).
    pub fn current_round(&self) -> u32 {
        self.record.completed_rounds + 1
    }
}

/// What the current attempt's tasks say about the round.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Tasks are still live and the quorum can still be reached.
    Wait,
    /// No task is live and at least `min_sites` are done.
    Complete,
    /// Refusals alone leave fewer than `min_sites` sites, but some sites have not answered
    /// yet: wait for their answers so the final reason lists every site's refusal.
    AwaitAnswers,
    /// Refusals alone leave fewer than `min_sites` sites: retrying cannot help.
    Refused(String),
    /// Drops, failures or timeouts leave fewer than `min_sites` sites that can finish.
    QuorumLost(String),
}

/// Decides the round from its tasks' states.
pub(super) fn verdict<'a>(
    tasks: impl Iterator<Item = &'a TaskRecord> + Clone,
    min_sites: usize,
) -> Verdict {
    let count = |f: fn(TaskState) -> bool| tasks.clone().filter(|t| f(t.state)).count();
    let total = tasks.clone().count();
    let done = count(|s| s == TaskState::Done);
    let live = count(TaskState::is_live);
    let refused = count(|s| s == TaskState::Refused);
    if live == 0 && done >= min_sites {
        return Verdict::Complete;
    }
    if done + live >= min_sites {
        return Verdict::Wait;
    }
    let listing = describe(
        tasks
            .clone()
            .filter(|t| t.state != TaskState::Done && !t.state.is_live()),
    );
    if total - refused < min_sites {
        if tasks.clone().any(|t| t.state == TaskState::Sent) {
            return Verdict::AwaitAnswers;
        }
        let accepted = total - refused;
        Verdict::Refused(format!(
            "only {accepted} of min_sites {min_sites} site(s) accepted: {listing}"
        ))
    } else {
        Verdict::QuorumLost(format!(
            "{done} site(s) done and {live} still working, below min_sites {min_sites}: {listing}"
        ))
    }
}

/// `site: state (reason); ...` for a person to read.
pub(super) fn describe<'a>(tasks: impl Iterator<Item = &'a TaskRecord>) -> String {
    let parts: Vec<String> = tasks
        .map(|t| {
            if t.reason.is_empty() {
                format!("{}: {}", t.site, t.state.as_str())
            } else {
                format!("{}: {} ({})", t.site, t.state.as_str(), t.reason)
            }
        })
        .collect();
    if parts.is_empty() {
        "no site finished".to_string()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(site: &str, state: TaskState, reason: &str) -> TaskRecord {
        TaskRecord {
            task_id: format!("t-{site}"),
            job_id: "j".into(),
            site: site.into(),
            round: 1,
            attempt: 1,
            state,
            reason: reason.into(),
            progress: 0.0,
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn complete_when_quorum_done_and_nothing_live() {
        let tasks = [
            task("a", TaskState::Done, ""),
            task("b", TaskState::Done, ""),
            task("c", TaskState::Excluded, "timeout"),
        ];
        assert_eq!(verdict(tasks.iter(), 2), Verdict::Complete);
        assert_eq!(
            verdict(tasks.iter(), 3),
            Verdict::QuorumLost(
                "2 site(s) done and 0 still working, below min_sites 3: c: excluded (timeout)"
                    .into()
            )
        );
    }

    #[test]
    fn waits_while_live_tasks_can_reach_the_quorum() {
        let tasks = [
            task("a", TaskState::Done, ""),
            task("b", TaskState::Running, ""),
            task("c", TaskState::Failed, "site disconnected"),
        ];
        assert_eq!(verdict(tasks.iter(), 2), Verdict::Wait);
        // Even with the quorum done, live tasks get until the deadline.
        assert_eq!(verdict(tasks.iter(), 1), Verdict::Wait);
    }

    #[test]
    fn refusals_that_break_the_quorum_are_final() {
        let tasks = [
            task("a", TaskState::Accepted, ""),
            task(
                "b",
                TaskState::Refused,
                "budget exhausted: 3.9 of 4.0 spent",
            ),
        ];
        match verdict(tasks.iter(), 2) {
            Verdict::Refused(reason) => {
                assert!(reason.contains("only 1 of min_sites 2"), "{reason}");
                assert!(reason.contains("b: refused (budget exhausted"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_doomed_round_waits_for_every_answer_before_failing() {
        let mut tasks = [
            task("a", TaskState::Refused, "budget exhausted"),
            task("b", TaskState::Sent, ""),
        ];
        assert_eq!(verdict(tasks.iter(), 2), Verdict::AwaitAnswers);
        tasks[1] = task("b", TaskState::Refused, "kind not allowed");
        match verdict(tasks.iter(), 2) {
            Verdict::Refused(reason) => {
                assert!(reason.contains("only 0 of min_sites 2"), "{reason}");
                assert!(reason.contains("a: refused (budget exhausted)"), "{reason}");
                assert!(reason.contains("b: refused (kind not allowed)"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn failures_with_enough_non_refusing_sites_are_retryable() {
        let tasks = [
            task("a", TaskState::Failed, "site disconnected"),
            task("b", TaskState::Done, ""),
        ];
        assert!(matches!(verdict(tasks.iter(), 2), Verdict::QuorumLost(_)));
    }
}

//! Task executors: one file per job kind.
//!
//! Every executor follows the same order, which is the site's privacy contract:
//!
//! 1. **policy** ([`crate::policy::admit`]): kind, spec, dataset, per-job cap;
//! 2. **calibrate** from the spec alone and **check the release**
//!    ([`crate::policy::check_release`]): noise floor, task never charged, budget;
//! 3. read the data, bound contributions, compute the clipped statistic (exact, secret);
//! 4. **charge** the ledger, committed and fsynced ([`crate::ledger::Ledger::charge`]);
//! 5. add noise (secure generator), check the result is finite, serialise it.
//!
//! Nothing leaves before step 4 has returned (DESIGN section 2, rule 2): the executor
//! returns the result bytes only after the charge, and the daemon sends them only after
//! the executor returns. Steps 1-2 refuse; failures in 3 leave the budget untouched;
//! a failure in 5 wastes the charged budget (never the other way around).

mod contrastive_svd;
mod dp_stats;
mod pmi_svd;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use silo_common::privacy::noise::{NoiseSource, SecureRng};
use silo_common::spec::JobKind;
use silo_proto::{Charge, Task};

use crate::config::SiteConfig;
use crate::ledger::Ledger;
use crate::policy::{self, Refusal, TaskRequest};

/// A progress report from a running task, forwarded as a `TaskUpdate`.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// The task passed the policy and budget checks; work starts.
    Accepted,
    /// Work in progress: a fraction in [0, 1] and what is happening.
    Running {
        /// Fraction done.
        progress: f64,
        /// What is happening.
        message: String,
    },
}

/// How a task ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// Released: the charges committed for it, then the result bytes (JSON for dp_stats).
    Done {
        /// What the site charged, committed before the noise was added.
        charges: Vec<Charge>,
        /// The result document.
        result: Vec<u8>,
    },
    /// Refused before anything was computed or charged; the reason is one actionable line.
    Refused(String),
    /// Failed while running; the reason says whether budget was charged.
    Failed(String),
}

impl Outcome {
    /// The state name sent in `TaskUpdate.state`.
    pub fn state(&self) -> &'static str {
        match self {
            Outcome::Done { .. } => "done",
            Outcome::Refused(_) => "refused",
            Outcome::Failed(_) => "failed",
        }
    }
}

impl From<Refusal> for Outcome {
    fn from(r: Refusal) -> Self {
        Outcome::Refused(r.reason)
    }
}

/// Runs tasks against the site's config and ledger. Cheap to clone; `Send + Sync`.
///
/// Tasks are synchronous (OpenDP measurements are not `Send`): the daemon calls
/// [`Executor::execute`] on a blocking thread.
#[derive(Clone, Debug)]
pub struct Executor {
    config: Arc<SiteConfig>,
    ledger: Arc<Mutex<Ledger>>,
}

impl Executor {
    /// An executor over `config` and the ledger it charges.
    pub fn new(config: Arc<SiteConfig>, ledger: Arc<Mutex<Ledger>>) -> Self {
        Executor { config, ledger }
    }

    /// The site config.
    pub fn config(&self) -> &SiteConfig {
        &self.config
    }

    /// The ledger (locked). A poisoned lock is recovered: the ledger's state lives in
    /// SQLite, whose transactions a panic cannot leave half-done.
    pub fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `task` with noise from the operating system's secure generator.
    ///
    /// `cancelled` is checked before the charge: a task cancelled before then is not
    /// charged. `progress` receives `Accepted` once the task passed every check.
    pub fn execute(
        &self,
        task: &Task,
        cancelled: &AtomicBool,
        progress: &mut dyn FnMut(Progress),
    ) -> Outcome {
        match SecureRng::from_os() {
            Ok(mut rng) => self.execute_with_rng(task, cancelled, progress, &mut rng),
            Err(e) => Outcome::Failed(format!("no secure noise source: {e}; nothing was charged")),
        }
    }

    /// [`Executor::execute`] with an explicit noise source. Crate-private so that only
    /// tests can pass a seeded (insecure) generator.
    pub(crate) fn execute_with_rng<R: NoiseSource + ?Sized>(
        &self,
        task: &Task,
        cancelled: &AtomicBool,
        progress: &mut dyn FnMut(Progress),
        rng: &mut R,
    ) -> Outcome {
        let request = TaskRequest {
            task_id: &task.task_id,
            kind: &task.kind,
            dataset: &task.dataset,
            spec_json: &task.spec_json,
        };
        if task.task_id.is_empty() || task.job_id.is_empty() {
            return Outcome::Refused(
                "the task has no task id or job id; the coordinator must send both".into(),
            );
        }
        let admitted = match policy::admit(&self.config, &request) {
            Ok(a) => a,
            Err(r) => return r.into(),
        };
        let ctx = TaskContext {
            executor: self,
            task,
            cancelled,
        };
        match admitted.spec.kind {
            JobKind::DpStats => dp_stats::run(&ctx, &admitted, progress, rng),
            JobKind::PmiSvd => pmi_svd::run(&ctx, &admitted, progress, rng),
            JobKind::ContrastiveSvd => contrastive_svd::run(&ctx, &admitted, progress, rng),
            other => Outcome::Refused(format!(
                "job kind {other} is not implemented by silo-site {}; upgrade the site daemon",
                crate::VERSION
            )),
        }
    }
}

/// What a job-kind executor gets.
pub(crate) struct TaskContext<'a> {
    pub executor: &'a Executor,
    pub task: &'a Task,
    pub cancelled: &'a AtomicBool,
}

impl TaskContext<'_> {
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Gate 2 for a release with `events` on `dataset` (noise floor, task never charged,
    /// budget), before any data are read; on success reports `Accepted`. `Err` is the
    /// refusal to return.
    pub fn accept(
        &self,
        dataset: &crate::config::DatasetConfig,
        events: &[silo_common::privacy::Composition],
        kind: &str,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), Outcome> {
        let budget = {
            let ledger = self.executor.ledger();
            policy::check_release(
                self.executor.config(),
                &ledger,
                dataset,
                &self.task.task_id,
                events,
            )
            .map_err(Outcome::from)?
        };
        tracing::info!(
            task = %self.task.task_id, dataset = %dataset.name, spent = budget.spent,
            after = budget.after, cap = budget.budget, "{kind} task accepted"
        );
        progress(Progress::Accepted);
        Ok(())
    }

    /// The failure for a dataset that cannot be read. The full error (file, line, header)
    /// goes to the site's log only: it describes the data, and only declared metadata may
    /// leave the site (DESIGN section 2, rule 1b).
    pub fn unreadable(
        &self,
        dataset: &crate::config::DatasetConfig,
        error: &dyn std::fmt::Display,
    ) -> Outcome {
        tracing::error!(task = %self.task.task_id, error = %error, "cannot read dataset {}", dataset.name);
        Outcome::Failed(format!(
            "dataset {} could not be read at the site (details in the site log); nothing was charged",
            dataset.name
        ))
    }

    /// The ledger entry of this task's release on `dataset`.
    pub fn new_charge(
        &self,
        dataset: &crate::config::DatasetConfig,
        events: Vec<silo_common::privacy::Composition>,
        mechanism: &str,
        parameters: serde_json::Value,
        sensitivity: serde_json::Value,
        guarantee: String,
    ) -> crate::ledger::NewCharge {
        crate::ledger::NewCharge {
            job_id: self.task.job_id.clone(),
            task_id: self.task.task_id.clone(),
            dataset: dataset.name.clone(),
            mechanism: mechanism.to_string(),
            parameters,
            sensitivity,
            guarantee,
            events,
            delta: dataset.delta,
            epsilon_budget: dataset.epsilon_budget,
        }
    }

    /// Step 4: refuses if cancelled, else charges `new` durably. `Err` is the outcome to
    /// return (nothing charged, or a refusal when the budget ran out meanwhile).
    pub fn charge(
        &self,
        new: &crate::ledger::NewCharge,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Charge, Outcome> {
        use crate::ledger::LedgerError;
        if self.is_cancelled() {
            return Err(Outcome::Failed(
                "cancelled by the coordinator before the charge; nothing was charged".into(),
            ));
        }
        progress(Progress::Running {
            progress: 0.8,
            message: "charging the privacy ledger".into(),
        });
        let charge = match self.executor.ledger().charge(new) {
            Ok(c) => c,
            Err(e @ (LedgerError::BudgetExceeded { .. } | LedgerError::AlreadyCharged { .. })) => {
                return Err(Outcome::Refused(e.to_string()));
            }
            Err(e) => {
                return Err(Outcome::Failed(format!(
                    "could not charge the ledger: {e}; nothing was released"
                )));
            }
        };
        tracing::info!(
            task = %self.task.task_id, seq = charge.seq, epsilon = charge.epsilon,
            spent = charge.epsilon_spent, "charged the privacy ledger"
        );
        progress(Progress::Running {
            progress: 0.9,
            message: "adding noise".into(),
        });
        Ok(charge)
    }
}

/// The outcome of step 5: the release bytes with the charge, or a failure that says the
/// charge stands.
pub(crate) fn released<E: std::fmt::Display>(
    charge: Charge,
    result: Result<Vec<u8>, E>,
) -> Outcome {
    match result {
        Ok(result) => Outcome::Done {
            charges: vec![charge],
            result,
        },
        Err(e) => Outcome::Failed(format!(
            "{e}; the charge (ledger entry {}) stands and nothing was released",
            charge.seq
        )),
    }
}

#[cfg(test)]
mod tests;

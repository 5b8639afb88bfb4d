//! The `dp_stats` executor: a noisy count, sum, mean or histogram of one CSV column.
//!
//! The math (sensitivities, calibration, noise, the release format) lives in
//! [`silo_common::stats`]; this file is the site-side order of operations around it.

use silo_common::privacy::noise::NoiseSource;
use silo_common::stats::{DpStatsPlan, bound_contributions};

use super::{Outcome, Progress, TaskContext};
use crate::data::csv;
use crate::ledger::{LedgerError, NewCharge};
use crate::policy::{self, Admitted};

pub(crate) fn run<R: NoiseSource + ?Sized>(
    ctx: &TaskContext<'_>,
    admitted: &Admitted<'_>,
    progress: &mut dyn FnMut(Progress),
    rng: &mut R,
) -> Outcome {
    let config = ctx.executor.config();
    let dataset = admitted.dataset;
    let task = ctx.task;

    // Calibrate from the spec alone, then check the release against the floor, the
    // ledger and the budget: all before any data are read.
    let plan = match DpStatsPlan::new(&admitted.spec) {
        Ok(p) => p,
        Err(e) => return Outcome::Refused(format!("{e}")),
    };
    let events = plan.events();
    let budget = {
        let ledger = ctx.executor.ledger();
        match policy::check_release(config, &ledger, dataset, &task.task_id, &events) {
            Ok(b) => b,
            Err(r) => return r.into(),
        }
    };
    tracing::info!(
        task = %task.task_id, dataset = %dataset.name, spent = budget.spent, after = budget.after,
        cap = budget.budget, "dp_stats task accepted"
    );
    progress(Progress::Accepted);

    // Read, bound, aggregate: exact values that stay in this function.
    progress(Progress::Running {
        progress: 0.1,
        message: "reading data".into(),
    });
    let Some(path) = dataset.path.as_deref() else {
        return Outcome::Failed(format!(
            "dataset {} has no path; nothing was charged",
            dataset.name
        ));
    };
    let params = plan.params();
    // A count with a column counts the rows whose value parses; without one, every row.
    let column = params.column.as_deref();
    let data = match csv::read_unit_values(path, &dataset.privacy_unit, column) {
        Ok(d) => d,
        Err(e) => return Outcome::Failed(data_failure(&dataset.name, &task.task_id, &e)),
    };
    if let Some(summary) = data.skipped_summary() {
        // Local log only: exact counts never leave the site.
        tracing::warn!(task = %task.task_id, file = %path.display(), "{summary}");
    }
    progress(Progress::Running {
        progress: 0.4,
        message: "bounding contributions".into(),
    });
    let kept = bound_contributions(data.rows, params.max_rows_per_unit as usize, rng);
    let aggregate = match plan.aggregate(&kept) {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(task = %task.task_id, error = %e, "dp_stats aggregate refused");
            return Outcome::Failed(format!(
                "the statistic on dataset {} is not finite and was not released (details in the site log); nothing was charged",
                dataset.name
            ));
        }
    };
    drop(kept);

    if ctx.is_cancelled() {
        return Outcome::Failed(
            "cancelled by the coordinator before the charge; nothing was charged".into(),
        );
    }

    // Charge, durably, before any noise is drawn or anything is sent.
    progress(Progress::Running {
        progress: 0.7,
        message: "charging the privacy ledger".into(),
    });
    let new = NewCharge {
        job_id: task.job_id.clone(),
        task_id: task.task_id.clone(),
        dataset: dataset.name.clone(),
        mechanism: plan.mechanism_name().to_string(),
        parameters: plan.parameters_json(),
        sensitivity: plan.sensitivity_json(),
        guarantee: plan.guarantee(&dataset.privacy_unit),
        events,
        delta: dataset.delta,
        epsilon_budget: dataset.epsilon_budget,
    };
    let charge = match ctx.executor.ledger().charge(&new) {
        Ok(c) => c,
        Err(e @ (LedgerError::BudgetExceeded { .. } | LedgerError::AlreadyCharged { .. })) => {
            return Outcome::Refused(e.to_string());
        }
        Err(e) => {
            return Outcome::Failed(format!(
                "could not charge the ledger: {e}; nothing was released"
            ));
        }
    };
    tracing::info!(
        task = %task.task_id, seq = charge.seq, epsilon = charge.epsilon, spent = charge.epsilon_spent,
        "charged the privacy ledger"
    );

    // Only now: noise, then the result.
    progress(Progress::Running {
        progress: 0.9,
        message: "adding noise".into(),
    });
    match plan.release(aggregate, rng) {
        Ok(release) => Outcome::Done {
            charges: vec![charge],
            result: release.to_json(),
        },
        Err(e) => Outcome::Failed(format!(
            "{e}; the charge (ledger entry {}) stands and nothing was released",
            charge.seq
        )),
    }
}

/// The reason sent to the coordinator when the data cannot be read. The full error (file,
/// line, header) goes to the site's log only: line numbers and header contents describe
/// the data, and only declared metadata may leave the site (DESIGN section 2, rule 1b).
/// A missing column is named, since the job asked for it by name.
fn data_failure(dataset: &str, task_id: &str, e: &csv::CsvError) -> String {
    tracing::error!(task = %task_id, error = %e, "cannot read dataset {dataset}");
    match e {
        csv::CsvError::MissingColumn { column, role, .. } => {
            format!("dataset {dataset} has no column {column:?} ({role}); nothing was charged")
        }
        _ => format!(
            "dataset {dataset} could not be read at the site (details in the site log); nothing was charged"
        ),
    }
}

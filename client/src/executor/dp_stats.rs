//! The `dp_stats` executor: a noisy count, sum, mean or histogram of one CSV column.
//!
//! The math (sensitivities, calibration, noise, the release format) lives in
//! [`silo_common::stats`]; this file is the site-side order of operations around it.

use silo_common::privacy::noise::NoiseSource;
use silo_common::stats::{DpStatsPlan, bound_contributions};

use super::{Outcome, Progress, TaskContext, released};
use crate::data::csv;
use crate::policy::Admitted;

pub(crate) fn run<R: NoiseSource + ?Sized>(
    ctx: &TaskContext<'_>,
    admitted: &Admitted<'_>,
    progress: &mut dyn FnMut(Progress),
    rng: &mut R,
) -> Outcome {
    let dataset = admitted.dataset;
    let task = ctx.task;

    // Calibrate from the spec alone, then check the release against the floor, the
    // ledger and the budget: all before any data are read.
    let plan = match DpStatsPlan::new(&admitted.spec) {
        Ok(p) => p,
        Err(e) => return Outcome::Refused(format!("{e}")),
    };
    let events = plan.events();
    if let Err(refused) = ctx.accept(dataset, &events, "dp_stats", progress) {
        return refused;
    }

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

    let new = ctx.new_charge(
        dataset,
        events,
        plan.mechanism_name(),
        plan.parameters_json(),
        plan.sensitivity_json(),
        plan.guarantee(&dataset.privacy_unit),
    );
    let charge = match ctx.charge(&new, progress) {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    released(charge, plan.release(aggregate, rng).map(|r| r.to_json()))
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

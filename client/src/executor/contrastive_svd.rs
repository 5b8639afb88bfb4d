//! The `contrastive_svd` executor: the site's clipped, noised contrastive sums (one round).
//!
//! The math (clipping, the sensitivity of 2, calibration, the release format) lives in
//! [`silo_common::contrastive`]; this file is the site-side order of operations: calibrate
//! from the spec, check the budget, read the features (training split only), sum, charge,
//! then noise.

use silo_common::contrastive::{ContrastivePlan, Features};
use silo_common::privacy::noise::NoiseSource;

use super::{Outcome, Progress, TaskContext, released};
use crate::data::pairs;
use crate::policy::Admitted;

pub(crate) fn run<R: NoiseSource + ?Sized>(
    ctx: &TaskContext<'_>,
    admitted: &Admitted<'_>,
    progress: &mut dyn FnMut(Progress),
    rng: &mut R,
) -> Outcome {
    let dataset = admitted.dataset;
    let task = ctx.task;
    let plan = match ContrastivePlan::new(&admitted.spec) {
        Ok(p) => p,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let events = plan.events();
    if let Err(refused) = ctx.accept(dataset, &events, "contrastive_svd", progress) {
        return refused;
    }
    progress(Progress::Running {
        progress: 0.1,
        message: "reading features".into(),
    });
    let data = match pairs::load(dataset) {
        Ok(d) => d,
        Err(e) => return ctx.unreadable(dataset, &e),
    };
    // Train on the training split only: held-out rows stay out of every release of this job.
    let train = data.train_indices();
    let mut image = Vec::with_capacity(train.len() * data.d1);
    let mut text = Vec::with_capacity(train.len() * data.d2);
    for &i in &train {
        image.extend_from_slice(data.image_row(i));
        text.extend_from_slice(data.text_row(i));
    }
    let empty: &[f32] = &[];
    let features = Features {
        image: &image,
        text: &text,
        d1: data.d1,
        d2: data.d2,
        image_only: data
            .image_only
            .as_ref()
            .map_or(empty, |(v, _)| v.as_slice()),
        text_only: data.text_only.as_ref().map_or(empty, |(v, _)| v.as_slice()),
    };
    progress(Progress::Running {
        progress: 0.4,
        message: format!("summing {} clipped pairs", train.len()),
    });
    let exact = match plan.sums(&features) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(task = %task.task_id, error = %e, "contrastive sums refused");
            return Outcome::Failed(format!(
                "the features of dataset {} cannot be summed (details in the site log); nothing was charged",
                dataset.name
            ));
        }
    };
    drop((image, text, data));
    let new = ctx.new_charge(
        dataset,
        events,
        "gaussian",
        plan.parameters_json(exact.d1, exact.d2),
        plan.sensitivity_json(),
        plan.guarantee(&dataset.privacy_unit),
    );
    let charge = match ctx.charge(&new, progress) {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    released(charge, plan.release(exact, rng).map(|r| r.to_json()))
}

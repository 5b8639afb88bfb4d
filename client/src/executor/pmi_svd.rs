//! The `pmi_svd` executor: the site's vocabulary release (round 1 with `top:K`) or its
//! noisy co-occurrence counts.
//!
//! The math (bounding, sensitivities, calibration, thresholds, the wire formats) lives in
//! [`silo_common::ehr`]; this file is the site-side order of operations around it:
//! calibrate from the spec, check the budget, read the timelines, count, charge, noise.

use serde::Deserialize;
use silo_common::ehr::ConceptKey;
use silo_common::ehr::cooccur::{self, CooccurrenceParams};
use silo_common::ehr::plan::PmiPlan;
use silo_common::ehr::vocab::vocabulary_index;
use silo_common::privacy::noise::NoiseSource;
use silo_common::spec::MAX_VOCABULARY;

use super::{Outcome, Progress, TaskContext};
use crate::data::ehr;
use crate::policy::Admitted;

/// The round parameters the coordinator sends.
#[derive(Deserialize)]
struct RoundParams {
    stage: Stage,
    #[serde(default)]
    vocabulary_size: Option<usize>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Stage {
    Vocabulary,
    Counts,
}

pub(crate) fn run<R: NoiseSource + ?Sized>(
    ctx: &TaskContext<'_>,
    admitted: &Admitted<'_>,
    progress: &mut dyn FnMut(Progress),
    rng: &mut R,
) -> Outcome {
    let dataset = admitted.dataset;
    let task = ctx.task;

    // Calibrate from the spec alone; read what the round asks for.
    let plan = match PmiPlan::new(&admitted.spec) {
        Ok(p) => p,
        Err(e) => return Outcome::Refused(e.to_string()),
    };
    let round: RoundParams = match serde_json::from_slice(&task.params_json) {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Refused(format!(
                "round parameters are not a pmi_svd round ({e}); upgrade the coordinator or the site"
            ));
        }
    };
    let vocabulary = match (round.stage, plan.selection().is_some()) {
        (Stage::Vocabulary, true) => None,
        (Stage::Vocabulary, false) => {
            return Outcome::Refused(
                "the coordinator asked for a vocabulary round, but this job's vocabulary is a file"
                    .into(),
            );
        }
        (Stage::Counts, _) => match parse_vocabulary(&task.payload, round.vocabulary_size) {
            Ok(v) => Some(v),
            Err(e) => return Outcome::Refused(e),
        },
    };
    let events = match vocabulary {
        None => plan.selection_events(),
        Some(_) => plan.count_events(),
    };
    if let Err(refused) = ctx.accept(dataset, &events, "pmi_svd", progress) {
        return refused;
    }

    // Read the timelines: exact data that stay in this function.
    progress(Progress::Running {
        progress: 0.05,
        message: "reading EHR data".into(),
    });
    let load = match ehr::load(dataset) {
        Ok(l) => l,
        Err(e) => return ctx.unreadable(dataset, &e),
    };
    for file in &load.files {
        if let Some(summary) = file.skipped_summary() {
            // Local log only: exact counts never leave the site.
            tracing::warn!(task = %task.task_id, "{summary}");
        }
    }
    let timelines = load.timelines;
    let params = plan.params();
    // Sampling seeds for contribution bounding; the bound holds whatever the sample.
    let seed = rng.next_u64();

    // Compute the exact statistic (secret), then charge, then noise.
    let (exact, parameters, sensitivity, mechanism) = match vocabulary {
        None => {
            progress(Progress::Running {
                progress: 0.4,
                message: format!("counting {} concepts", timelines.concepts.len()),
            });
            let counts = cooccur::concept_patients(
                &timelines,
                params.max_concepts_per_patient as usize,
                seed,
            );
            (
                Exact::Vocabulary {
                    concepts: timelines.concepts,
                    counts,
                },
                plan.selection_parameters_json(),
                plan.selection_sensitivity_json(),
                "gaussian+threshold",
            )
        }
        Some(vocabulary) => {
            let n = vocabulary.len();
            let map = vocabulary_index(&timelines.concepts, &vocabulary);
            let patients = timelines.patients().max(1);
            let mut report = |done: usize| {
                progress(Progress::Running {
                    progress: 0.1 + 0.6 * done as f64 / patients as f64,
                    message: format!("counting co-occurrences: {done} of {patients} patients"),
                })
            };
            let counts = cooccur::count(
                &timelines,
                &map,
                n,
                CooccurrenceParams {
                    window_days: params.window_days,
                    max_pairs_per_patient: params.max_pairs_per_patient as usize,
                },
                seed,
                &mut report,
            );
            drop(timelines);
            tracing::info!(
                task = %task.task_id, patients_with_pairs = counts.patients_with_pairs,
                patients_capped = counts.patients_capped, "co-occurrences counted (local log only)"
            );
            (
                Exact::Counts(counts),
                plan.count_parameters_json(n),
                plan.count_sensitivity_json(),
                "gaussian",
            )
        }
    };
    let new = ctx.new_charge(
        dataset,
        events,
        mechanism,
        parameters,
        sensitivity,
        plan.guarantee(&dataset.privacy_unit),
    );

    let charge = match ctx.charge(&new, progress) {
        Ok(c) => c,
        Err(outcome) => return outcome,
    };
    let result = match exact {
        Exact::Vocabulary { concepts, counts } => plan
            .release_vocabulary(&concepts, &counts, rng)
            .map(|r| r.to_json()),
        Exact::Counts(counts) => plan.release_counts(counts, rng).map(|r| r.to_bytes()),
    };
    super::released(charge, result)
}

/// The exact (secret) statistic of a round, waiting for its charge.
enum Exact {
    /// Round 1: patients per concept of the dataset.
    Vocabulary {
        concepts: Vec<ConceptKey>,
        counts: Vec<u32>,
    },
    /// The counts round.
    Counts(cooccur::Cooccurrence),
}

/// The vocabulary the coordinator sent: a JSON list of `[system, code]`, of the size the
/// round parameters announce, without duplicates.
fn parse_vocabulary(payload: &[u8], announced: Option<usize>) -> Result<Vec<ConceptKey>, String> {
    let list: Vec<ConceptKey> = serde_json::from_slice(payload)
        .map_err(|e| format!("the vocabulary sent with the task is not a concept list: {e}"))?;
    if list.len() < 2 || list.len() > MAX_VOCABULARY {
        return Err(format!(
            "the vocabulary sent with the task has {} concepts; expected 2 to {MAX_VOCABULARY}",
            list.len()
        ));
    }
    if announced.is_some_and(|n| n != list.len()) {
        return Err(format!(
            "the vocabulary sent has {} concepts but the round announced {}",
            list.len(),
            announced.unwrap_or(0)
        ));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = list.iter().find(|k| !seen.insert(*k)) {
        return Err(format!(
            "the vocabulary sent lists {},{} twice",
            dup.0, dup.1
        ));
    }
    Ok(list)
}

//! The `pmi_svd` state machine (DESIGN §4.2).
//!
//! - With `vocabulary = "top:K"`: round 1 asks every site for its thresholded noisy
//!   concept frequencies; closing it picks the K largest sums (post-processing). Round 2
//!   sends that vocabulary and collects each site's noisy co-occurrence counts.
//! - With a vocabulary file (read here, when the job is created): one counts round.
//!
//! Finalizing sums the counts, runs the SPPMI + SVD pipeline
//! ([`silo_common::pmi::pipeline`]) and writes `embeddings.csv`, `embeddings.npy` and
//! `report.json`; with a pairs file the report also evaluates each site's release alone
//! (the floor the federation must beat).
//!
//! Every check on a site's release is against the plan the coordinator computes from the
//! same spec: a release with less noise than planned, another vocabulary size, or
//! malformed bytes is refused.

mod finalize;

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;
use silo_common::ehr::ConceptKey;
use silo_common::ehr::plan::{CountsRelease, PmiPlan};
use silo_common::ehr::vocab::{VocabularyRelease, parse_concept_list, select_top_k};
use silo_common::eval::KnownPair;
use silo_common::spec::{JobSpec, VocabularySource};

use super::{FinalizeContext, JobError, JobKind, JobOutput, RoundPlan};

/// Relative slack on the noise a release must carry (float round-trips).
const NOISE_SLACK: f64 = 1e-6;

#[derive(Debug)]
pub struct PmiSvd {
    plan: PmiPlan,
    /// Requested vocabulary size (top:K) or the file's length.
    requested: usize,
    vocabulary: Option<Vec<ConceptKey>>,
    pairs: Option<(String, Vec<KnownPair>)>,
    pending_vocab: BTreeMap<String, VocabularyRelease>,
    vocab_sites: Vec<String>,
    pending_counts: BTreeMap<String, CountsRelease>,
    counts: BTreeMap<String, CountsRelease>,
}

impl PmiSvd {
    pub fn new(spec: &JobSpec) -> Result<Self, JobError> {
        let plan = PmiPlan::new(spec).map_err(|e| JobError::Params(e.to_string()))?;
        let params = plan.params();
        let (requested, vocabulary) = match params.vocabulary_source() {
            Ok(VocabularySource::Top(k)) => (k, None),
            Ok(VocabularySource::File(path)) => {
                let text = read(&path, "params.vocabulary")?;
                let list = parse_concept_list(&text)
                    .map_err(|e| JobError::Params(format!("params.vocabulary: {path}: {e}")))?;
                if list.len() < 2 || list.len() > silo_common::spec::MAX_VOCABULARY {
                    return Err(JobError::Params(format!(
                        "params.vocabulary: {path} lists {} concepts; expected 2 to {}",
                        list.len(),
                        silo_common::spec::MAX_VOCABULARY
                    )));
                }
                (list.len(), Some(list))
            }
            Err(e) => return Err(JobError::Params(format!("params.vocabulary: {e}"))),
        };
        let pairs = match &params.pairs {
            Some(path) => {
                let text = read(path, "params.pairs")?;
                let pairs = crate::cli::eval::parse_pairs(Path::new(path), &text)
                    .map_err(|e| JobError::Params(format!("params.pairs: {e}")))?;
                Some((path.clone(), pairs))
            }
            None => None,
        };
        Ok(PmiSvd {
            plan,
            requested,
            vocabulary,
            pairs,
            pending_vocab: BTreeMap::new(),
            vocab_sites: Vec::new(),
            pending_counts: BTreeMap::new(),
            counts: BTreeMap::new(),
        })
    }

    fn is_vocabulary_round(&self, round: u32) -> bool {
        self.plan.selection().is_some() && round == 1
    }

    fn check_counts(&self, release: &CountsRelease) -> Result<(), JobError> {
        let vocabulary = self.vocabulary.as_ref().ok_or_else(|| {
            JobError::InvalidResult("counts arrived before the vocabulary was agreed".into())
        })?;
        let h = &release.header;
        let params = self.plan.params();
        let planned = self.plan.counts_mechanism().sigma();
        let problems = [
            (h.n != vocabulary.len()).then(|| {
                format!(
                    "counts over {} concepts, the vocabulary has {}",
                    h.n,
                    vocabulary.len()
                )
            }),
            (h.noise_std < planned * (1.0 - NOISE_SLACK))
                .then(|| format!("noise std {} is below the planned {planned}", h.noise_std)),
            (h.window_days != params.window_days).then(|| {
                format!(
                    "window of {} days, the job asked for {}",
                    h.window_days, params.window_days
                )
            }),
            (h.max_pairs_per_patient != params.max_pairs_per_patient).then(|| {
                format!(
                    "{} pairs per patient, the job asked for {}",
                    h.max_pairs_per_patient, params.max_pairs_per_patient
                )
            }),
        ];
        match problems.into_iter().flatten().next() {
            Some(p) => Err(JobError::InvalidResult(p)),
            None => Ok(()),
        }
    }
}

fn read(path: &str, field: &str) -> Result<String, JobError> {
    std::fs::read_to_string(path).map_err(|e| {
        JobError::Params(format!(
            "{field}: cannot read {path} on the coordinator: {e} (paths in a spec are read by the coordinator; `silo job submit` makes relative ones absolute)"
        ))
    })
}

impl JobKind for PmiSvd {
    fn rounds(&self) -> u32 {
        self.plan.rounds()
    }

    fn plan_round(&mut self, round: u32) -> Result<RoundPlan, JobError> {
        if round == 0 || round > self.rounds() {
            return Err(JobError::Aggregate(format!(
                "pmi_svd has {} round(s); round {round} was asked for",
                self.rounds()
            )));
        }
        if self.is_vocabulary_round(round) {
            let params_json = serde_json::to_vec(&json!({ "round": round, "stage": "vocabulary" }))
                .map_err(|e| JobError::Params(e.to_string()))?;
            return Ok(RoundPlan {
                params_json,
                payload: Vec::new(),
            });
        }
        let vocabulary = self.vocabulary.as_ref().ok_or_else(|| {
            JobError::Aggregate("the vocabulary round has not been completed".into())
        })?;
        let params_json = serde_json::to_vec(&json!({
            "round": round,
            "stage": "counts",
            "vocabulary_size": vocabulary.len(),
        }))
        .map_err(|e| JobError::Params(e.to_string()))?;
        let payload =
            serde_json::to_vec(vocabulary).map_err(|e| JobError::Params(e.to_string()))?;
        Ok(RoundPlan {
            params_json,
            payload,
        })
    }

    fn on_result(&mut self, round: u32, site: &str, result: &[u8]) -> Result<(), JobError> {
        if self.is_vocabulary_round(round) {
            let release = VocabularyRelease::from_json(result).map_err(JobError::InvalidResult)?;
            let planned = self.plan.selection().map_or(0.0, |s| s.mechanism.sigma());
            if release.noise_std < planned * (1.0 - NOISE_SLACK) {
                return Err(JobError::InvalidResult(format!(
                    "vocabulary noise std {} is below the planned {planned}",
                    release.noise_std
                )));
            }
            self.pending_vocab.insert(site.to_string(), release);
            return Ok(());
        }
        let release = CountsRelease::from_bytes(result)
            .map_err(|e| JobError::InvalidResult(e.to_string()))?;
        self.check_counts(&release)?;
        self.pending_counts.insert(site.to_string(), release);
        Ok(())
    }

    fn abort_round(&mut self, round: u32) {
        if self.is_vocabulary_round(round) {
            self.pending_vocab.clear();
        } else {
            self.pending_counts.clear();
        }
    }

    fn end_round(&mut self, round: u32) -> Result<(), JobError> {
        if self.is_vocabulary_round(round) {
            let releases = std::mem::take(&mut self.pending_vocab);
            let refs: Vec<&VocabularyRelease> = releases.values().collect();
            let chosen: Vec<ConceptKey> = select_top_k(&refs, self.requested)
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            if chosen.len() < 2 {
                return Err(JobError::Aggregate(format!(
                    "only {} concept(s) passed the sites' release thresholds; need at least 2 \
                     (more patients, a larger epsilon or a smaller max_concepts_per_patient)",
                    chosen.len()
                )));
            }
            self.vocab_sites = releases.keys().cloned().collect();
            self.vocabulary = Some(chosen);
            return Ok(());
        }
        if self.pending_counts.is_empty() {
            return Err(JobError::Aggregate(
                "no site release to close the round with".into(),
            ));
        }
        self.counts = std::mem::take(&mut self.pending_counts);
        Ok(())
    }

    fn finalize(&mut self, ctx: &FinalizeContext<'_>) -> Result<JobOutput, JobError> {
        let vocabulary = self
            .vocabulary
            .as_ref()
            .ok_or_else(|| JobError::Aggregate("no vocabulary".into()))?;
        finalize::finalize(finalize::Inputs {
            ctx,
            plan: &self.plan,
            requested: self.requested,
            vocabulary,
            vocab_sites: &self.vocab_sites,
            counts: &self.counts,
            pairs: self.pairs.as_ref(),
        })
    }
}

#[cfg(test)]
mod tests;

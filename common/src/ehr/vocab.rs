//! The vocabulary a `pmi_svd` job counts over.
//!
//! Either a concept list given with the job (read by the coordinator: [`parse_concept_list`])
//! or the K most frequent concepts across sites, selected privately: each site releases
//! the Gaussian-noised patient counts of the concepts whose noisy count passes a threshold
//! (see [`crate::ehr::plan`] for the mechanism and its accounting), and the coordinator
//! keeps the K largest sums ([`select_top_k`]).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::ConceptKey;
use super::cooccur::NOT_IN_VOCABULARY;

/// One concept in a site's vocabulary release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReleasedConcept {
    /// Coding system (`ICD10CM`, `RXNORM`, ...).
    pub system: String,
    /// Code within the system.
    pub code: String,
    /// Noisy number of patients (bounded contributions), above the threshold.
    pub count: f64,
}

/// A site's answer to the vocabulary round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VocabularyRelease {
    /// Standard deviation of the noise on each count.
    pub noise_std: f64,
    /// The release threshold every released count exceeds.
    pub threshold: f64,
    /// Distinct concepts one patient contributed at most.
    pub max_concepts_per_patient: u32,
    /// The concepts that passed the threshold, with their noisy counts.
    pub concepts: Vec<ReleasedConcept>,
}

impl VocabularyRelease {
    /// JSON bytes for the wire.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a vocabulary release always serialises")
    }

    /// Parses and checks a release received from a site: finite counts above the stated
    /// threshold, non-empty keys, no duplicates.
    pub fn from_json(bytes: &[u8]) -> Result<VocabularyRelease, String> {
        let r: VocabularyRelease =
            serde_json::from_slice(bytes).map_err(|e| format!("not a vocabulary release: {e}"))?;
        if !(r.noise_std.is_finite() && r.noise_std > 0.0 && r.threshold.is_finite()) {
            return Err(format!(
                "noise_std {} and threshold {} must be finite, noise_std > 0",
                r.noise_std, r.threshold
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for c in &r.concepts {
            if c.system.is_empty() || c.code.is_empty() {
                return Err("a released concept has an empty system or code".into());
            }
            if !(c.count.is_finite() && c.count > r.threshold) {
                return Err(format!(
                    "concept {},{} has count {} (expected finite and above the threshold {})",
                    c.system, c.code, c.count, r.threshold
                ));
            }
            if !seen.insert((&c.system, &c.code)) {
                return Err(format!("concept {},{} is released twice", c.system, c.code));
            }
        }
        Ok(r)
    }
}

/// The `k` concepts with the largest summed noisy counts over `releases` (a concept a site
/// did not release counts 0 there), largest first; ties broken by (system, code). Fewer
/// than `k` when fewer concepts were released. Post-processing: costs no budget.
pub fn select_top_k(releases: &[&VocabularyRelease], k: usize) -> Vec<(ConceptKey, f64)> {
    let mut sums: BTreeMap<ConceptKey, f64> = BTreeMap::new();
    for r in releases {
        for c in &r.concepts {
            *sums
                .entry((c.system.clone(), c.code.clone()))
                .or_insert(0.0) += c.count;
        }
    }
    let mut ranked: Vec<(ConceptKey, f64)> = sums.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.truncate(k);
    ranked
}

/// For each concept of a dataset (`concepts`, as in [`super::Timelines::concepts`]), its
/// index in `vocabulary`, or [`NOT_IN_VOCABULARY`].
pub fn vocabulary_index(concepts: &[ConceptKey], vocabulary: &[ConceptKey]) -> Vec<u32> {
    let position: HashMap<&ConceptKey, u32> = vocabulary
        .iter()
        .enumerate()
        .map(|(i, k)| (k, i as u32))
        .collect();
    concepts
        .iter()
        .map(|k| position.get(k).copied().unwrap_or(NOT_IN_VOCABULARY))
        .collect()
}

/// Parses a concept list: one `system,code` per line; a first line `system,code` is a
/// header; blank lines are skipped; more fields are ignored (so `embeddings.csv` and
/// `concepts.csv` files work too). Errors name the line: a missing field or a duplicate.
pub fn parse_concept_list(text: &str) -> Result<Vec<ConceptKey>, String> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut fields = line.split(',').map(str::trim);
        let (system, code) = (fields.next().unwrap_or(""), fields.next().unwrap_or(""));
        if i == 0 && system.eq_ignore_ascii_case("system") {
            continue;
        }
        if system.is_empty() || code.is_empty() {
            return Err(format!(
                "line {}: expected system,code (two non-empty fields)",
                i + 1
            ));
        }
        let key = (system.to_string(), code.to_string());
        if !seen.insert(key.clone()) {
            return Err(format!("line {}: {system},{code} is listed twice", i + 1));
        }
        out.push(key);
    }
    if out.is_empty() {
        return Err("no concepts listed; expected one system,code per line".into());
    }
    Ok(out)
}

//! The calibrated plan of a `pmi_svd` job at one site, and its two releases.
//!
//! # Privacy
//!
//! Neighbouring relation: add/remove one patient (all their records). The job's per-site
//! target (ε, δ) is met by at most two releases:
//!
//! 1. **Vocabulary** (only for `vocabulary = "top:K"`), Gaussian partition selection
//!    (Wilson et al. 2020, arXiv 1909.01917; Gopi et al. 2020, arXiv 2002.09745): each
//!    patient contributes to at most m₀ = `max_concepts_per_patient` distinct concepts
//!    (uniform sample when over), count 1 each, so the count vector over all concept keys
//!    has L2 sensitivity √m₀. Gaussian noise σ₁ = z₁·√m₀ is added to every concept the site
//!    holds, and only counts above τ = 1 + σ₁·t are released, where m₀·Φ̄(t) ≤ δ_sel.
//!    For keys held by both neighbours the release is post-processing of the Gaussian
//!    counts (event `Gaussian(z₁)`); a key held by the differing patient alone (count 1)
//!    passes with probability Φ̄((τ−1)/σ₁), at most δ_sel over its ≤ m₀ keys (event
//!    `Threshold(δ_sel)`).
//! 2. **Co-occurrence counts**: the packed upper triangle of bounded pair counts
//!    (see [`super::cooccur`], L2 sensitivity √m with m = `max_pairs_per_patient`) plus
//!    N(0, σ₂²), σ₂ = z₂·√m (event `Gaussian(z₂)`).
//!
//! Calibration: z is the smallest Gaussian noise multiplier the PLD accountant certifies
//! at (ε, δ − δ_sel) for one release. Two Gaussians compose exactly into one with
//! 1/z² = 1/z₁² + 1/z₂², so z₁ = z/√s and z₂ = z/√(1 − s), with s = `selection_share`;
//! δ_sel = `selection_delta_share`·δ. With a vocabulary file there is no first release and
//! z₂ = z at δ. Both multipliers are rounded up by 1e-9 relative, never down.

use serde::{Deserialize, Serialize};

use super::ConceptKey;
use super::cooccur::{Cooccurrence, packed_len};
use super::vocab::{ReleasedConcept, VocabularyRelease};
use crate::privacy::calibrate;
use crate::privacy::mechanisms::{GaussianMechanism, Mechanism};
use crate::privacy::noise::NoiseSource;
use crate::privacy::pld::PldAccountant;
use crate::privacy::special::norm_sf;
use crate::privacy::{Composition, PrivacyError, PrivacyEvent};
use crate::spec::{JobSpec, PmiSvdParams, VocabularySource};

/// Relative margin added to calibrated noise multipliers (always more noise).
const SIGMA_MARGIN: f64 = 1e-9;

/// Why a plan or a release could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The spec is not a valid `pmi_svd` spec.
    #[error("{0}")]
    Spec(String),
    /// Calibration or noise failed.
    #[error("{0}")]
    Privacy(#[from] PrivacyError),
    /// A release is malformed (coordinator side).
    #[error("invalid counts release: {0}")]
    Release(String),
}

/// The vocabulary-selection release.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SelectionPlan {
    /// Gaussian on the concept counts, sensitivity √max_concepts_per_patient.
    pub mechanism: GaussianMechanism,
    /// Counts must exceed this to be released.
    pub threshold: f64,
    /// Probability bound of the threshold's failure event.
    pub failure_delta: f64,
}

/// The calibrated plan of a `pmi_svd` job (identical at every site and the coordinator).
#[derive(Clone, Debug, PartialEq)]
pub struct PmiPlan {
    params: PmiSvdParams,
    epsilon: f64,
    delta: f64,
    selection: Option<SelectionPlan>,
    counts: GaussianMechanism,
}

impl PmiPlan {
    /// Validates the spec's params and calibrates both releases.
    pub fn new(spec: &JobSpec) -> Result<PmiPlan, PlanError> {
        let params = PmiSvdParams::from_spec(spec)
            .map_err(|issues| PlanError::Spec(crate::spec::describe(&issues)))?;
        let epsilon = spec.privacy.epsilon;
        let delta = spec
            .privacy
            .delta
            .ok_or_else(|| PlanError::Spec("privacy.delta: pmi_svd needs a delta".into()))?;
        let top_k = matches!(params.vocabulary_source(), Ok(VocabularySource::Top(_)));
        let pld = PldAccountant::default();
        let pair_sensitivity = f64::from(params.max_pairs_per_patient).sqrt();
        let (selection, counts) = if top_k {
            let failure_delta = params.selection_delta_share * delta;
            let z = calibrate::gaussian(&pld, epsilon, delta - failure_delta, 1)?.noise_multiplier;
            let z1 = z / params.selection_share.sqrt() * (1.0 + SIGMA_MARGIN);
            let z2 = z / (1.0 - params.selection_share).sqrt() * (1.0 + SIGMA_MARGIN);
            let m0 = f64::from(params.max_concepts_per_patient);
            let s = m0.sqrt();
            let mechanism = GaussianMechanism::new(s, z1 * s)?;
            let t = tail_quantile(failure_delta / m0);
            let threshold = 1.0 + mechanism.sigma() * t;
            (
                Some(SelectionPlan {
                    mechanism,
                    threshold,
                    failure_delta,
                }),
                GaussianMechanism::new(pair_sensitivity, z2 * pair_sensitivity)?,
            )
        } else {
            let z = calibrate::gaussian(&pld, epsilon, delta, 1)?.noise_multiplier;
            let z2 = z * (1.0 + SIGMA_MARGIN);
            (
                None,
                GaussianMechanism::new(pair_sensitivity, z2 * pair_sensitivity)?,
            )
        };
        Ok(PmiPlan {
            params,
            epsilon,
            delta,
            selection,
            counts,
        })
    }

    /// The validated params.
    pub fn params(&self) -> &PmiSvdParams {
        &self.params
    }

    /// The vocabulary release, when the job selects its vocabulary.
    pub fn selection(&self) -> Option<&SelectionPlan> {
        self.selection.as_ref()
    }

    /// The Gaussian mechanism on the co-occurrence counts.
    pub fn counts_mechanism(&self) -> &GaussianMechanism {
        &self.counts
    }

    /// Rounds of the job: 2 with vocabulary selection, else 1.
    pub fn rounds(&self) -> u32 {
        if self.selection.is_some() { 2 } else { 1 }
    }

    /// Events of the vocabulary release (empty without selection).
    pub fn selection_events(&self) -> Vec<Composition> {
        self.selection.map_or_else(Vec::new, |s| {
            vec![
                Composition::new(s.mechanism.event(), 1),
                Composition::new(
                    PrivacyEvent::Threshold {
                        delta: s.failure_delta,
                    },
                    1,
                ),
            ]
        })
    }

    /// Events of the counts release.
    pub fn count_events(&self) -> Vec<Composition> {
        vec![Composition::new(self.counts.event(), 1)]
    }

    /// Every event of the job at one site.
    pub fn all_events(&self) -> Vec<Composition> {
        let mut all = self.selection_events();
        all.extend(self.count_events());
        all
    }

    /// The guarantee in words, for the ledger.
    pub fn guarantee(&self, privacy_unit: &str) -> String {
        format!(
            "({}, {:e})-DP over the whole job (Gaussian, PLD-calibrated{}), add/remove one {privacy_unit}",
            self.epsilon,
            self.delta,
            if self.selection.is_some() {
                ", with thresholded vocabulary selection"
            } else {
                ""
            }
        )
    }

    /// Ledger parameters of the vocabulary release.
    pub fn selection_parameters_json(&self) -> serde_json::Value {
        let s = self.selection.as_ref();
        serde_json::json!({
            "stage": "vocabulary",
            "epsilon_job": self.epsilon,
            "delta_job": self.delta,
            "noise_std": s.map(|s| s.mechanism.sigma()),
            "threshold": s.map(|s| s.threshold),
            "failure_delta": s.map(|s| s.failure_delta),
            "max_concepts_per_patient": self.params.max_concepts_per_patient,
            "selection_share": self.params.selection_share,
        })
    }

    /// Ledger sensitivity of the vocabulary release.
    pub fn selection_sensitivity_json(&self) -> serde_json::Value {
        let m0 = self.params.max_concepts_per_patient;
        serde_json::json!({
            "relation": "add/remove one patient",
            "norm": "l2",
            "value": f64::from(m0).sqrt(),
            "why": format!("each patient counts once in at most {m0} distinct concepts"),
        })
    }

    /// Ledger parameters of the counts release.
    pub fn count_parameters_json(&self, n: usize) -> serde_json::Value {
        serde_json::json!({
            "stage": "counts",
            "epsilon_job": self.epsilon,
            "delta_job": self.delta,
            "vocabulary_size": n,
            "cells": packed_len(n),
            "window_days": self.params.window_days,
            "noise_std": self.counts.sigma(),
        })
    }

    /// Ledger sensitivity of the counts release.
    pub fn count_sensitivity_json(&self) -> serde_json::Value {
        let m = self.params.max_pairs_per_patient;
        serde_json::json!({
            "relation": "add/remove one patient",
            "norm": "l2",
            "value": f64::from(m).sqrt(),
            "why": format!("each patient counts once in at most {m} distinct concept pairs"),
        })
    }

    /// The vocabulary release of a site: noise on every concept count in `patients`
    /// (indexed like `concepts`), then only the counts above the threshold.
    ///
    /// Call only after the charge is committed.
    pub fn release_vocabulary<R: NoiseSource + ?Sized>(
        &self,
        concepts: &[ConceptKey],
        patients: &[u32],
        rng: &mut R,
    ) -> Result<VocabularyRelease, PlanError> {
        let s = self.selection.as_ref().ok_or_else(|| {
            PlanError::Spec("this job's vocabulary is given, not selected".into())
        })?;
        let mut noisy: Vec<f64> = patients.iter().map(|&c| f64::from(c)).collect();
        s.mechanism.release_f64(&mut noisy, rng)?;
        let released = concepts
            .iter()
            .zip(noisy)
            .filter(|(_, c)| c.is_finite() && *c > s.threshold)
            .map(|((system, code), count)| ReleasedConcept {
                system: system.clone(),
                code: code.clone(),
                count,
            })
            .collect();
        Ok(VocabularyRelease {
            noise_std: s.mechanism.sigma(),
            threshold: s.threshold,
            max_concepts_per_patient: self.params.max_concepts_per_patient,
            concepts: released,
        })
    }

    /// The counts release of a site. Call only after the charge is committed.
    pub fn release_counts<R: NoiseSource + ?Sized>(
        &self,
        exact: Cooccurrence,
        rng: &mut R,
    ) -> Result<CountsRelease, PlanError> {
        let mut counts: Vec<f32> = exact.counts.iter().map(|&c| c as f32).collect();
        drop(exact.counts);
        self.counts.release_f32(&mut counts, rng)?;
        if counts.iter().any(|c| !c.is_finite()) {
            return Err(PlanError::Release(
                "noise produced a non-finite count".into(),
            ));
        }
        Ok(CountsRelease {
            header: CountsHeader {
                n: exact.n,
                noise_std: self.counts.sigma(),
                window_days: self.params.window_days,
                max_pairs_per_patient: self.params.max_pairs_per_patient,
            },
            counts,
        })
    }
}

/// The smallest t (rounded up) with Φ̄(t) ≤ p, for p in (0, 1/2).
fn tail_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if norm_sf(mid) <= p {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// What a counts release says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountsHeader {
    /// Vocabulary size n; the payload has n(n−1)/2 cells.
    pub n: usize,
    /// Standard deviation of the noise on each cell.
    pub noise_std: f64,
    /// Window length used.
    pub window_days: u32,
    /// The per-patient pair bound used.
    pub max_pairs_per_patient: u32,
}

/// A site's noisy co-occurrence counts: the packed strict upper triangle.
#[derive(Clone, Debug, PartialEq)]
pub struct CountsRelease {
    /// Its description.
    pub header: CountsHeader,
    /// n(n−1)/2 noisy counts, row-major over i < j.
    pub counts: Vec<f32>,
}

const MAGIC: &[u8; 8] = b"SILOPMI1";

impl CountsRelease {
    /// Wire bytes: `SILOPMI1`, the header's JSON length (u32 LE), the header JSON, then
    /// the counts as f32 LE.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).expect("a header always serialises");
        let mut out = Vec::with_capacity(12 + header.len() + 4 * self.counts.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        for c in &self.counts {
            out.extend_from_slice(&c.to_le_bytes());
        }
        out
    }

    /// Parses wire bytes; refuses a wrong magic, a bad header, a length that does not
    /// match n, or a non-finite count.
    pub fn from_bytes(bytes: &[u8]) -> Result<CountsRelease, PlanError> {
        let bad = |m: String| PlanError::Release(m);
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(bad("expected the SILOPMI1 format".into()));
        }
        let len = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) as usize;
        let body = bytes
            .get(12..12 + len)
            .ok_or_else(|| bad("truncated header".into()))?;
        let header: CountsHeader =
            serde_json::from_slice(body).map_err(|e| bad(format!("header: {e}")))?;
        if !(header.noise_std.is_finite() && header.noise_std > 0.0) {
            return Err(bad(format!("noise_std {} must be > 0", header.noise_std)));
        }
        let payload = &bytes[12 + len..];
        let cells = packed_len(header.n);
        if payload.len() != 4 * cells {
            return Err(bad(format!(
                "{} bytes of counts for n = {} (expected {})",
                payload.len(),
                header.n,
                4 * cells
            )));
        }
        let counts: Vec<f32> = payload
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        if let Some(i) = counts.iter().position(|c| !c.is_finite()) {
            return Err(bad(format!("cell {i} is not finite")));
        }
        Ok(CountsRelease { header, counts })
    }
}

//! `contrastive_svd` (DESIGN §4.3): one-round linear multimodal contrastive learning from
//! a noisy contrastive cross-covariance (following the linear analysis of multimodal
//! contrastive learning with unpaired data, Nakada et al. 2023, arXiv 2302.06232: the
//! linear contrastive loss is minimised by the top-r singular vectors of
//! S = E[x yᵀ over matched pairs] − λ·E[x yᵀ over non-matched pairs]).
//!
//! # What a site releases, and its privacy
//!
//! Neighbouring relation: add/remove one unit, where a unit is one row: a matched pair,
//! or one unpaired image or text feature vector. Every feature vector is clipped to L2
//! norm C (`clip_norm`). The site releases, in one Gaussian release, the normalised sums
//!
//! - A/C² = Σ x̃ ỹᵀ / C² over its pairs (d1×d2), sx/C = Σ x̃ / C, sy/C = Σ ỹ / C, n;
//! - with unpaired data: ux/C = Σ x̃ / C over image-only rows and their count, uy/C and
//!   its count over text-only rows.
//!
//! A pair changes A/C² by x̃ỹᵀ/C² (Frobenius norm ≤ 1), sx/C and sy/C by ≤ 1 each and n by
//! 1: L2 norm ≤ 2. An unpaired row changes one sum by ≤ 1 and one count by 1: ≤ √2. So the
//! whole vector has L2 sensitivity Δ = 2 and the release is a Gaussian mechanism with
//! σ = z·Δ (event `Gaussian(z)`), z calibrated by the PLD accountant for the job's
//! (ε, δ). The coordinator's estimate of S and its SVD are post-processing.

use faer::Mat;
use serde::{Deserialize, Serialize};

use crate::linalg::RandomizedSvd;
use crate::privacy::calibrate;
use crate::privacy::mechanisms::{GaussianMechanism, Mechanism};
use crate::privacy::noise::NoiseSource;
use crate::privacy::pld::PldAccountant;
use crate::privacy::{Composition, PrivacyError};
use crate::spec::{ContrastiveSvdParams, JobSpec, MAX_FEATURE_DIM};

/// L2 sensitivity of the normalised release (see the module docs).
pub const SENSITIVITY: f64 = 2.0;

/// Relative margin added to the calibrated noise multiplier (always more noise).
const SIGMA_MARGIN: f64 = 1e-9;

/// Why a plan, a release or the encoders could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ContrastiveError {
    /// The spec is not a valid `contrastive_svd` spec.
    #[error("{0}")]
    Spec(String),
    /// Calibration or noise failed.
    #[error("{0}")]
    Privacy(#[from] PrivacyError),
    /// Features have the wrong shape or values.
    #[error("{0}")]
    Data(String),
    /// A release is malformed or does not match the others.
    #[error("invalid release: {0}")]
    Release(String),
    /// The SVD failed.
    #[error("SVD: {0}")]
    Svd(String),
}

/// A site's features: row-major matrices.
#[derive(Clone, Copy, Debug)]
pub struct Features<'a> {
    /// Image features of the pairs, n×d1.
    pub image: &'a [f32],
    /// Text features of the pairs, n×d2.
    pub text: &'a [f32],
    /// Image dimension d1.
    pub d1: usize,
    /// Text dimension d2.
    pub d2: usize,
    /// Image-only rows, m1×d1 (may be empty).
    pub image_only: &'a [f32],
    /// Text-only rows, m2×d2 (may be empty).
    pub text_only: &'a [f32],
}

/// The exact clipped sums of one site (secret until noised), normalised as released.
#[derive(Clone, Debug, PartialEq)]
pub struct ExactSums {
    /// d1.
    pub d1: usize,
    /// d2.
    pub d2: usize,
    /// The layout of [`ContrastiveRelease::values`], unnoised.
    pub values: Vec<f64>,
}

/// Where each block sits in the released vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// d1.
    pub d1: usize,
    /// d2.
    pub d2: usize,
}

impl Layout {
    /// A/C², row-major d1×d2.
    pub fn cross(&self) -> std::ops::Range<usize> {
        0..self.d1 * self.d2
    }
    /// sx/C.
    pub fn sum_x(&self) -> std::ops::Range<usize> {
        let s = self.d1 * self.d2;
        s..s + self.d1
    }
    /// sy/C.
    pub fn sum_y(&self) -> std::ops::Range<usize> {
        let s = self.sum_x().end;
        s..s + self.d2
    }
    /// n.
    pub fn pairs(&self) -> usize {
        self.sum_y().end
    }
    /// ux/C (image-only sums).
    pub fn unpaired_x(&self) -> std::ops::Range<usize> {
        let s = self.pairs() + 1;
        s..s + self.d1
    }
    /// Number of image-only rows.
    pub fn unpaired_x_count(&self) -> usize {
        self.unpaired_x().end
    }
    /// uy/C (text-only sums).
    pub fn unpaired_y(&self) -> std::ops::Range<usize> {
        let s = self.unpaired_x_count() + 1;
        s..s + self.d2
    }
    /// Number of text-only rows.
    pub fn unpaired_y_count(&self) -> usize {
        self.unpaired_y().end
    }
    /// Length of the released vector.
    pub fn len(&self) -> usize {
        self.unpaired_y_count() + 1
    }
    /// Never empty.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// `v` scaled to L2 norm at most `c` (unchanged when shorter), as f64.
fn clipped(v: &[f32], c: f64, out: &mut Vec<f64>) {
    out.clear();
    out.extend(v.iter().map(|&x| f64::from(x)));
    let norm = out.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > c {
        let s = c / norm;
        out.iter_mut().for_each(|x| *x *= s);
    }
}

/// The calibrated plan of a `contrastive_svd` release (same at every site).
#[derive(Clone, Debug, PartialEq)]
pub struct ContrastivePlan {
    params: ContrastiveSvdParams,
    epsilon: f64,
    delta: f64,
    mechanism: GaussianMechanism,
}

impl ContrastivePlan {
    /// Validates the spec and calibrates the Gaussian.
    pub fn new(spec: &JobSpec) -> Result<ContrastivePlan, ContrastiveError> {
        let params = ContrastiveSvdParams::from_spec(spec)
            .map_err(|issues| ContrastiveError::Spec(crate::spec::describe(&issues)))?;
        let delta = spec
            .privacy
            .delta
            .ok_or_else(|| ContrastiveError::Spec("privacy.delta: needed".into()))?;
        let z = calibrate::gaussian(&PldAccountant::default(), spec.privacy.epsilon, delta, 1)?
            .noise_multiplier
            * (1.0 + SIGMA_MARGIN);
        Ok(ContrastivePlan {
            params,
            epsilon: spec.privacy.epsilon,
            delta,
            mechanism: GaussianMechanism::new(SENSITIVITY, z * SENSITIVITY)?,
        })
    }

    /// The validated params.
    pub fn params(&self) -> &ContrastiveSvdParams {
        &self.params
    }

    /// The Gaussian mechanism (on the normalised vector).
    pub fn mechanism(&self) -> &GaussianMechanism {
        &self.mechanism
    }

    /// The release's privacy events.
    pub fn events(&self) -> Vec<Composition> {
        vec![Composition::new(self.mechanism.event(), 1)]
    }

    /// The guarantee in words, for the ledger.
    pub fn guarantee(&self, privacy_unit: &str) -> String {
        format!(
            "({}, {:e})-DP (Gaussian, PLD-calibrated), add/remove one {privacy_unit}",
            self.epsilon, self.delta
        )
    }

    /// Ledger parameters.
    pub fn parameters_json(&self, d1: usize, d2: usize) -> serde_json::Value {
        serde_json::json!({
            "d1": d1,
            "d2": d2,
            "clip_norm": self.params.clip_norm,
            "use_unpaired": self.params.use_unpaired,
            "noise_std_normalised": self.mechanism.sigma(),
            "epsilon": self.epsilon,
            "delta": self.delta,
        })
    }

    /// Ledger sensitivity.
    pub fn sensitivity_json(&self) -> serde_json::Value {
        serde_json::json!({
            "relation": "add/remove one row (a pair or an unpaired feature vector)",
            "norm": "l2",
            "value": SENSITIVITY,
            "why": "features clipped to clip_norm C; a pair moves Σx̃ỹᵀ/C², Σx̃/C, Σỹ/C and n by at most 1 each (norm ≤ 2); an unpaired row moves one sum and one count by at most 1 each (≤ √2)",
        })
    }

    /// The exact normalised sums of `f` (clipped): secret until [`Self::release`].
    pub fn sums(&self, f: &Features<'_>) -> Result<ExactSums, ContrastiveError> {
        let (d1, d2) = (f.d1, f.d2);
        if d1 == 0 || d2 == 0 || d1 > MAX_FEATURE_DIM || d2 > MAX_FEATURE_DIM {
            return Err(ContrastiveError::Data(format!(
                "feature dimensions {d1} and {d2}: expected 1 to {MAX_FEATURE_DIM}"
            )));
        }
        if !f.image.len().is_multiple_of(d1)
            || !f.text.len().is_multiple_of(d2)
            || f.image.len() / d1 != f.text.len() / d2
            || !f.image_only.len().is_multiple_of(d1)
            || !f.text_only.len().is_multiple_of(d2)
        {
            return Err(ContrastiveError::Data(
                "image and text features do not have matching shapes".into(),
            ));
        }
        let c = self.params.clip_norm;
        let layout = Layout { d1, d2 };
        let mut v = vec![0.0f64; layout.len()];
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for (xi, yi) in f.image.chunks_exact(d1).zip(f.text.chunks_exact(d2)) {
            clipped(xi, c, &mut x);
            clipped(yi, c, &mut y);
            let cross = &mut v[layout.cross()];
            for (a, &xa) in x.iter().enumerate() {
                let row = &mut cross[a * d2..(a + 1) * d2];
                let xa = xa / (c * c);
                for (cell, &yb) in row.iter_mut().zip(&y) {
                    *cell += xa * yb;
                }
            }
            for (s, &xa) in v[layout.sum_x()].iter_mut().zip(&x) {
                *s += xa / c;
            }
            for (s, &yb) in v[layout.sum_y()].iter_mut().zip(&y) {
                *s += yb / c;
            }
            v[layout.pairs()] += 1.0;
        }
        if self.params.use_unpaired {
            for xi in f.image_only.chunks_exact(d1) {
                clipped(xi, c, &mut x);
                for (s, &xa) in v[layout.unpaired_x()].iter_mut().zip(&x) {
                    *s += xa / c;
                }
                v[layout.unpaired_x_count()] += 1.0;
            }
            for yi in f.text_only.chunks_exact(d2) {
                clipped(yi, c, &mut y);
                for (s, &yb) in v[layout.unpaired_y()].iter_mut().zip(&y) {
                    *s += yb / c;
                }
                v[layout.unpaired_y_count()] += 1.0;
            }
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(ContrastiveError::Data(
                "the clipped sums are not finite (a feature is NaN or infinite)".into(),
            ));
        }
        Ok(ExactSums { d1, d2, values: v })
    }

    /// Adds the noise. Call only after the charge is committed.
    pub fn release<R: NoiseSource + ?Sized>(
        &self,
        mut exact: ExactSums,
        rng: &mut R,
    ) -> Result<ContrastiveRelease, ContrastiveError> {
        self.mechanism.release_f64(&mut exact.values, rng)?;
        Ok(ContrastiveRelease {
            d1: exact.d1,
            d2: exact.d2,
            clip_norm: self.params.clip_norm,
            noise_std: self.mechanism.sigma(),
            values: exact.values,
        })
    }
}

/// A site's noisy normalised sums (JSON on the wire: at most a few MB for d ≤ 1024).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContrastiveRelease {
    /// Image dimension.
    pub d1: usize,
    /// Text dimension.
    pub d2: usize,
    /// The clip norm C the sums are normalised by.
    pub clip_norm: f64,
    /// Noise standard deviation on every normalised value.
    pub noise_std: f64,
    /// The vector in [`Layout`] order.
    pub values: Vec<f64>,
}

impl ContrastiveRelease {
    /// JSON bytes.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a release always serialises")
    }

    /// Parses and checks a release: length, finiteness, positive noise.
    pub fn from_json(bytes: &[u8]) -> Result<ContrastiveRelease, ContrastiveError> {
        let r: ContrastiveRelease =
            serde_json::from_slice(bytes).map_err(|e| ContrastiveError::Release(e.to_string()))?;
        let layout = Layout { d1: r.d1, d2: r.d2 };
        if r.d1 == 0 || r.d2 == 0 || r.values.len() != layout.len() {
            return Err(ContrastiveError::Release(format!(
                "{} values for d1 = {}, d2 = {} (expected {})",
                r.values.len(),
                r.d1,
                r.d2,
                layout.len()
            )));
        }
        if !(r.noise_std.is_finite() && r.noise_std > 0.0 && r.clip_norm > 0.0) {
            return Err(ContrastiveError::Release(
                "noise_std and clip_norm must be > 0".into(),
            ));
        }
        if r.values.iter().any(|v| !v.is_finite()) {
            return Err(ContrastiveError::Release("a value is not finite".into()));
        }
        Ok(r)
    }
}

/// The learned linear encoders.
#[derive(Clone, Debug)]
pub struct Encoders {
    /// Image encoder, d1×r (orthonormal columns).
    pub image: Mat<f64>,
    /// Text encoder, d2×r.
    pub text: Mat<f64>,
    /// Singular values of the estimated S.
    pub singular_values: Vec<f64>,
    /// Pairs summed (noisy).
    pub pairs: f64,
}

impl Encoders {
    /// The image encoder as row-major f32 (d1×r), for files.
    pub fn image_f32(&self) -> Vec<f32> {
        row_major_f32(&self.image)
    }

    /// The text encoder as row-major f32 (d2×r).
    pub fn text_f32(&self) -> Vec<f32> {
        row_major_f32(&self.text)
    }
}

/// Retrieval and zero-shot accuracy of encoders on a labelled evaluation set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetrievalReport {
    /// Evaluation pairs.
    pub pairs: usize,
    /// Image → text: fraction of images whose own caption ranks first.
    pub recall_at_1: f64,
    /// … among the top 5.
    pub recall_at_5: f64,
    /// … among the top 10.
    pub recall_at_10: f64,
    /// Fraction of images whose nearest class prompt is their label (with labels and
    /// prompts).
    pub zero_shot_accuracy: Option<f64>,
    /// The accuracy of guessing: 1 / classes.
    pub zero_shot_chance: Option<f64>,
}

impl Encoders {
    /// Embeds row-major `rows` (each of length `w.nrows()`) as unit vectors of Σ^½ Wᵀ x.
    fn embed(&self, w: &Mat<f64>, rows: &[f32]) -> Vec<Vec<f64>> {
        let (d, r) = (w.nrows(), w.ncols());
        rows.chunks_exact(d)
            .map(|x| {
                let mut z: Vec<f64> = (0..r)
                    .map(|k| {
                        let dot: f64 = (0..d).map(|a| w[(a, k)] * f64::from(x[a])).sum();
                        dot * self.singular_values[k].max(0.0).sqrt()
                    })
                    .collect();
                let norm = z.iter().map(|v| v * v).sum::<f64>().sqrt();
                if norm > 0.0 {
                    z.iter_mut().for_each(|v| *v /= norm);
                }
                z
            })
            .collect()
    }

    /// Image → text retrieval on `image`/`text` (row-major, matched by row) and, with
    /// `labels` and class `prompts` (text features [K, d2] with their class ids), zero-shot
    /// classification of the images. Shapes are the caller's to check.
    pub fn evaluate(
        &self,
        image: &[f32],
        text: &[f32],
        labels: Option<&[i64]>,
        prompts: Option<(&[f32], &[i64])>,
    ) -> RetrievalReport {
        let zi = self.embed(&self.image, image);
        let zt = self.embed(&self.text, text);
        let n = zi.len().min(zt.len());
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let mut hits = [0usize; 3];
        for i in 0..n {
            let own = dot(&zi[i], &zt[i]);
            let rank = (0..n)
                .filter(|&j| j != i && dot(&zi[i], &zt[j]) > own)
                .count();
            for (h, k) in hits.iter_mut().zip([1, 5, 10]) {
                *h += usize::from(rank < k);
            }
        }
        let frac = |h: usize| if n == 0 { 0.0 } else { h as f64 / n as f64 };
        let (mut accuracy, mut chance) = (None, None);
        if let (Some(labels), Some((prompt_rows, classes))) = (labels, prompts) {
            let zp = self.embed(&self.text, prompt_rows);
            let correct = zi
                .iter()
                .zip(labels)
                .filter(|(z, label)| {
                    let best = zp
                        .iter()
                        .enumerate()
                        .max_by(|a, b| dot(z, a.1).total_cmp(&dot(z, b.1)))
                        .map(|(c, _)| classes[c]);
                    best == Some(**label)
                })
                .count();
            accuracy = Some(frac(correct));
            chance = (!classes.is_empty()).then(|| 1.0 / classes.len() as f64);
        }
        RetrievalReport {
            pairs: n,
            recall_at_1: frac(hits[0]),
            recall_at_5: frac(hits[1]),
            recall_at_10: frac(hits[2]),
            zero_shot_accuracy: accuracy,
            zero_shot_chance: chance,
        }
    }
}

fn row_major_f32(m: &Mat<f64>) -> Vec<f32> {
    (0..m.nrows())
        .flat_map(|i| (0..m.ncols()).map(move |j| m[(i, j)] as f32))
        .collect()
}

/// Sums `releases` and takes the rank-`rank` SVD of
/// S = A/n − λ·μx μyᵀ, with A = Σ x̃ỹᵀ and μ the modality means (over pairs and, when
/// released, unpaired rows). Noisy counts below 2 are read as 2 (post-processing).
pub fn encoders(
    releases: &[&ContrastiveRelease],
    lambda: f64,
    rank: usize,
    seed: u64,
) -> Result<Encoders, ContrastiveError> {
    let first = releases
        .first()
        .ok_or_else(|| ContrastiveError::Release("no releases".into()))?;
    let layout = Layout {
        d1: first.d1,
        d2: first.d2,
    };
    let c = first.clip_norm;
    let mut total = vec![0.0f64; layout.len()];
    for r in releases {
        if r.d1 != layout.d1 || r.d2 != layout.d2 || r.clip_norm != c {
            return Err(ContrastiveError::Release(format!(
                "sites disagree on dimensions or clip norm: {}×{} C={} vs {}×{} C={}",
                r.d1, r.d2, r.clip_norm, layout.d1, layout.d2, c
            )));
        }
        for (t, v) in total.iter_mut().zip(&r.values) {
            *t += v;
        }
    }
    let n = total[layout.pairs()].max(2.0);
    let nx = n + total[layout.unpaired_x_count()].max(0.0);
    let ny = n + total[layout.unpaired_y_count()].max(0.0);
    let mu_x: Vec<f64> = (0..layout.d1)
        .map(|a| c * (total[layout.sum_x()][a] + total[layout.unpaired_x()][a]) / nx)
        .collect();
    let mu_y: Vec<f64> = (0..layout.d2)
        .map(|b| c * (total[layout.sum_y()][b] + total[layout.unpaired_y()][b]) / ny)
        .collect();
    let cross = &total[layout.cross()];
    let s = Mat::from_fn(layout.d1, layout.d2, |a, b| {
        c * c * cross[a * layout.d2 + b] / n - lambda * mu_x[a] * mu_y[b]
    });
    let rank = rank.min(layout.d1).min(layout.d2);
    let svd = RandomizedSvd::new(rank)
        .with_seed(seed)
        .compute(s.as_ref())
        .map_err(|e| ContrastiveError::Svd(e.to_string()))?;
    Ok(Encoders {
        image: svd.u,
        text: svd.v,
        singular_values: svd.s,
        pairs: total[layout.pairs()],
    })
}

#[cfg(test)]
mod tests;

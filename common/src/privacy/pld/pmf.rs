//! Discretised privacy loss distributions: a probability mass function on the grid
//! {k·d : k ∈ ℤ} plus a mass at +∞, with composition and the (ε, δ) queries.
//!
//! Port of dp-accounting's `pld_pmf.py`: a *sparse* form (a few points, e.g. randomized
//! response) and a *dense* form (offset + vector) that composes by FFT. Every step is
//! pessimistic — truncated low-loss mass is moved up to the lowest kept loss, truncated
//! high-loss mass goes to +∞ — so δ(ε) of the result is never below the true one.

use std::collections::BTreeMap;

use super::fft;
use crate::privacy::PrivacyError;

/// dp-accounting's `_MAX_PMF_SPARSE_SIZE`: above this many points a PMF is stored dense.
const MAX_SPARSE_SIZE: usize = 1000;

/// Sparse ⊗ sparse stays sparse while the pairwise product has at most this many terms
/// (dp-accounting uses 1000; a quadratic loop in Rust affords more and avoids densifying
/// widely spaced pure-DP supports).
const MAX_SPARSE_PRODUCT: usize = 1 << 20;

/// Why building a PLD stopped.
#[derive(Debug)]
pub(crate) enum PldError {
    /// A grid or FFT would exceed [`fft::MAX_LEN`]; a coarser interval fixes it.
    TooLarge {
        /// The length that was asked for.
        len: u128,
    },
    /// Anything else, reported as is.
    Failed(PrivacyError),
}

impl From<PrivacyError> for PldError {
    fn from(e: PrivacyError) -> Self {
        PldError::Failed(e)
    }
}

/// A discretised PLD: probability of each loss k·d, plus the mass at +∞.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Pmf {
    /// Few points, sorted by loss index, no duplicates.
    Sparse {
        /// (loss index, probability).
        points: Vec<(i64, f64)>,
        /// Probability of an infinite loss (a δ no ε can absorb).
        infinity_mass: f64,
    },
    /// Contiguous grid starting at loss index `lower`.
    Dense {
        /// Loss index of `probs[0]`.
        lower: i64,
        /// Probability of loss (lower + i)·d.
        probs: Vec<f64>,
        /// Probability of an infinite loss.
        infinity_mass: f64,
    },
}

impl Pmf {
    /// The PLD of a mechanism that reveals nothing: loss 0 with probability 1.
    pub(crate) fn identity() -> Self {
        Pmf::Sparse {
            points: vec![(0, 1.0)],
            infinity_mass: 0.0,
        }
    }

    /// A PMF from (loss index, probability) pairs: sparse when small, dense otherwise
    /// (dp-accounting's `create_pmf`). Duplicate indices are summed.
    pub(crate) fn from_points(
        points: impl IntoIterator<Item = (i64, f64)>,
        infinity_mass: f64,
    ) -> Result<Self, PldError> {
        let mut merged = BTreeMap::new();
        for (k, p) in points {
            *merged.entry(k).or_insert(0.0) += p;
        }
        let points: Vec<(i64, f64)> = merged.into_iter().collect();
        if points.len() <= MAX_SPARSE_SIZE {
            return Ok(Pmf::Sparse {
                points,
                infinity_mass,
            });
        }
        sparse_to_dense(&points, infinity_mass)
    }

    /// A dense PMF on consecutive indices from `lower` (used by connect-the-dots).
    pub(crate) fn from_grid(lower: i64, probs: Vec<f64>, infinity_mass: f64) -> Self {
        if probs.len() <= MAX_SPARSE_SIZE {
            let points = (lower..).zip(probs).filter(|&(_, p)| p != 0.0).collect();
            return Pmf::Sparse {
                points,
                infinity_mass,
            };
        }
        Pmf::Dense {
            lower,
            probs,
            infinity_mass,
        }
    }

    /// The probability of an infinite loss.
    pub(crate) fn infinity_mass(&self) -> f64 {
        match self {
            Pmf::Sparse { infinity_mass, .. } | Pmf::Dense { infinity_mass, .. } => *infinity_mass,
        }
    }

    /// (lower index, dense probabilities, infinity mass), consuming the PMF.
    fn into_dense(self) -> Result<(i64, Vec<f64>, f64), PldError> {
        match self {
            Pmf::Dense {
                lower,
                probs,
                infinity_mass,
            } => Ok((lower, probs, infinity_mass)),
            sparse => sparse.to_dense(),
        }
    }

    /// (lower index, dense probabilities, infinity mass).
    fn to_dense(&self) -> Result<(i64, Vec<f64>, f64), PldError> {
        match self {
            Pmf::Dense {
                lower,
                probs,
                infinity_mass,
            } => Ok((*lower, probs.clone(), *infinity_mass)),
            Pmf::Sparse {
                points,
                infinity_mass,
            } => match sparse_to_dense(points, *infinity_mass)? {
                Pmf::Dense {
                    lower,
                    probs,
                    infinity_mass,
                } => Ok((lower, probs, infinity_mass)),
                Pmf::Sparse { .. } => unreachable!("sparse_to_dense returns a dense PMF"),
            },
        }
    }

    /// The PLD of running both mechanisms (convolution of the PMFs), with up to
    /// `tail_mass_truncation` of mass truncated pessimistically (dp-accounting's
    /// `compose_pmfs`).
    pub(crate) fn compose(&self, other: &Pmf, tail_mass_truncation: f64) -> Result<Pmf, PldError> {
        let a = self.infinity_mass();
        let b = other.infinity_mass();
        let infinity_mass = a + b - a * b;
        match (self, other) {
            (Pmf::Sparse { points: p, .. }, Pmf::Sparse { points: q, .. })
                if p.len().saturating_mul(q.len()) <= MAX_SPARSE_PRODUCT =>
            {
                let mut sums = BTreeMap::new();
                for &(k1, v1) in p {
                    for &(k2, v2) in q {
                        *sums.entry(k1 + k2).or_insert(0.0) += v1 * v2;
                    }
                }
                let (keys, probs): (Vec<i64>, Vec<f64>) = sums.into_iter().unzip();
                let (offset, probs, right) = truncate_tails(probs, tail_mass_truncation);
                let points = keys[offset..].iter().copied().zip(probs).collect();
                Ok(Pmf::Sparse {
                    points,
                    infinity_mass: infinity_mass + right,
                })
            }
            // A handful of points against a long grid: shift-and-add beats densifying.
            (Pmf::Sparse { points, .. }, dense @ Pmf::Dense { .. })
            | (dense @ Pmf::Dense { .. }, Pmf::Sparse { points, .. })
                if !points.is_empty() && points.len() <= 64 =>
            {
                let Pmf::Dense { lower, probs, .. } = dense else {
                    unreachable!("matched as dense")
                };
                let (min_k, max_k) = (points[0].0, points[points.len() - 1].0);
                let len = fft::check_len((max_k - min_k) as u128 + probs.len() as u128)?;
                let mut out = vec![0.0; len];
                for &(k, v) in points {
                    let start = (k - min_k) as usize;
                    for (o, &p) in out[start..start + probs.len()].iter_mut().zip(probs) {
                        *o += v * p;
                    }
                }
                Ok(finish_dense(
                    lower + min_k,
                    out,
                    infinity_mass,
                    tail_mass_truncation,
                    0.0,
                ))
            }
            _ => {
                let (lower1, probs1, _) = self.to_dense()?;
                let (lower2, probs2, _) = other.to_dense()?;
                let mut probs = fft::convolve(&probs1, &probs2)?;
                let clipped = fft::clip_negatives(&mut probs);
                Ok(finish_dense(
                    lower1 + lower2,
                    probs,
                    infinity_mass,
                    tail_mass_truncation,
                    clipped,
                ))
            }
        }
    }

    /// [`Self::compose`] taking both operands, so that composing a dense PMF with the
    /// identity (loss 0 with probability 1, where every history's composition starts)
    /// reuses its storage instead of copying it. Same result as [`Self::compose`], whose
    /// shift-and-add multiplies by 1.0 and adds to 0.0 there.
    pub(crate) fn compose_owned(
        self,
        other: Pmf,
        tail_mass_truncation: f64,
    ) -> Result<Pmf, PldError> {
        let (shift, dense) = match (self.identity_shift(), other.identity_shift()) {
            (Some(shift), None) if matches!(other, Pmf::Dense { .. }) => (shift, other),
            (None, Some(shift)) if matches!(self, Pmf::Dense { .. }) => (shift, self),
            _ => return self.compose(&other, tail_mass_truncation),
        };
        let Pmf::Dense {
            lower,
            probs,
            infinity_mass,
        } = dense
        else {
            unreachable!("matched as dense")
        };
        Ok(finish_dense(
            lower + shift,
            probs,
            infinity_mass,
            tail_mass_truncation,
            0.0,
        ))
    }

    /// For a point mass 1 at loss index k with nothing at +∞ (the identity shifted by k),
    /// Some(k).
    fn identity_shift(&self) -> Option<i64> {
        match self {
            Pmf::Sparse {
                points,
                infinity_mass,
            } if *infinity_mass == 0.0 && points.len() == 1 && points[0].1 == 1.0 => {
                Some(points[0].0)
            }
            _ => None,
        }
    }

    /// The PLD of `num_times` runs of this mechanism (dp-accounting's `self_compose`).
    ///
    /// Dense PMFs go through one FFT raised to the T-th power on the Chernoff window;
    /// `tail_mass_truncation` (the most the window can miss) is booked at +∞. A two-point
    /// sparse PMF (randomized response) composes exactly as a binomial.
    #[cfg(test)]
    pub(crate) fn self_compose(
        &self,
        num_times: u64,
        tail_mass_truncation: f64,
    ) -> Result<Pmf, PldError> {
        self.clone()
            .into_self_composed(num_times, tail_mass_truncation)
    }

    /// [`Self::self_compose`], consuming the PMF (a dense one is transformed without a
    /// copy).
    pub(crate) fn into_self_composed(
        self,
        num_times: u64,
        tail_mass_truncation: f64,
    ) -> Result<Pmf, PldError> {
        if num_times == 0 {
            return Ok(Pmf::identity());
        }
        if num_times == 1 {
            return Ok(self);
        }
        if let Pmf::Sparse {
            points,
            infinity_mass,
        } = &self
        {
            if points.len() == 2 {
                return binomial(points[0], points[1], *infinity_mass, num_times);
            }
            // dp-accounting composes small sparse PMFs point by point, truncating only on
            // the last step.
            let small = u32::try_from(num_times)
                .ok()
                .and_then(|t| points.len().checked_pow(t))
                .is_some_and(|size| size <= MAX_SPARSE_SIZE);
            if small {
                let mut result = self.clone();
                for step in 2..=num_times {
                    let truncation = if step == num_times {
                        tail_mass_truncation
                    } else {
                        0.0
                    };
                    result = result.compose(&self, truncation)?;
                }
                return Ok(result);
            }
        }
        let (lower, probs, infinity_mass) = self.into_dense()?;
        let (window_lower, mut out) = fft::self_convolve(&probs, num_times, tail_mass_truncation)?;
        let clipped = fft::clip_negatives(&mut out);
        let t = i64::try_from(num_times).map_err(|_| PldError::TooLarge {
            len: u128::from(num_times),
        })?;
        let lower = lower
            .checked_mul(t)
            .and_then(|l| l.checked_add(window_lower))
            .ok_or(PldError::TooLarge {
                len: u128::from(num_times),
            })?;
        // 1 − (1 − m)^T, computed stably, plus everything the window may have missed.
        let composed_infinity = -((num_times as f64) * (-infinity_mass).ln_1p()).exp_m1();
        Ok(Pmf::Dense {
            lower,
            probs: out,
            infinity_mass: tail_mass_truncation + composed_infinity + clipped,
        })
    }

    /// Calls `f(loss, probability)` from the highest loss down while it returns true.
    fn for_each_descending(&self, d: f64, mut f: impl FnMut(f64, f64) -> bool) {
        match self {
            Pmf::Sparse { points, .. } => {
                for &(k, p) in points.iter().rev() {
                    if !f(k as f64 * d, p) {
                        return;
                    }
                }
            }
            Pmf::Dense { lower, probs, .. } => {
                for (i, &p) in probs.iter().enumerate().rev() {
                    if !f((lower + i as i64) as f64 * d, p) {
                        return;
                    }
                }
            }
        }
    }

    /// δ(ε) = m_∞ + Σ_{loss > ε} (1 − e^{ε − loss})·p: the hockey-stick divergence.
    pub(crate) fn delta_for_epsilon(&self, d: f64, epsilon: f64) -> f64 {
        let mut delta = self.infinity_mass();
        self.for_each_descending(d, |loss, p| {
            if loss <= epsilon {
                return false;
            }
            delta += -(epsilon - loss).exp_m1() * p;
            true
        });
        delta
    }

    /// The smallest ε ≥ 0 with δ(ε) ≤ `delta`; +∞ when the mass at +∞ alone exceeds δ.
    /// Port of dp-accounting's `_get_epsilon_for_delta`.
    ///
    /// Where e^{−loss} underflows (losses above ~745 nats) the discount e^{ε − loss} is
    /// dropped, as in dp-accounting: the answer is then the loss at which the tail mass
    /// reaches δ — larger than the exact ε by at most a few nats, never smaller.
    pub(crate) fn epsilon_for_delta(&self, d: f64, delta: f64) -> f64 {
        let infinity_mass = self.infinity_mass();
        if infinity_mass > delta {
            return f64::INFINITY;
        }
        let mut mass_upper = infinity_mass;
        let mut mass_lower = 0.0;
        let mut early = None;
        if let Pmf::Dense { lower, probs, .. } = self {
            let top = (lower + probs.len() as i64 - 1) as f64 * d;
            let bottom = *lower as f64 * d;
            if top <= 700.0 && bottom >= -700.0 {
                // The same scan with e^{−loss} stepped by e^d (re-anchored every 64
                // points, so within ~1e-14) and the stopping test multiplied out.
                let step = d.exp();
                let mut discount = 0.0;
                for (n, (i, &p)) in probs.iter().enumerate().rev().enumerate() {
                    let loss = (lower + i as i64) as f64 * d;
                    discount = if n % 64 == 0 {
                        (-loss).exp()
                    } else {
                        discount * step
                    };
                    if mass_upper > delta
                        && mass_lower > 0.0
                        && (mass_upper - delta) * discount >= mass_lower
                    {
                        break;
                    }
                    mass_upper += p;
                    mass_lower += discount * p;
                    if mass_upper >= delta && mass_lower == 0.0 {
                        early = Some(loss.max(0.0));
                        break;
                    }
                }
                return match early {
                    Some(eps) => eps,
                    None if mass_upper <= mass_lower + delta => 0.0,
                    None => ((mass_upper - delta) / mass_lower).ln(),
                };
            }
        }
        self.for_each_descending(d, |loss, p| {
            // δ(ε) on [loss, next loss) is mass_upper − e^ε·mass_lower: if its root lies at
            // or above this loss, the remaining points cannot matter.
            if mass_upper > delta
                && mass_lower > 0.0
                && ((mass_upper - delta) / mass_lower).ln() >= loss
            {
                return false;
            }
            mass_upper += p;
            mass_lower += (-loss).exp() * p;
            if mass_upper >= delta && mass_lower == 0.0 {
                // e^{−loss} underflowed: the loss is huge, and ε is this loss.
                early = Some(loss.max(0.0));
                return false;
            }
            true
        });
        if let Some(eps) = early {
            return eps;
        }
        if mass_upper <= mass_lower + delta {
            return 0.0;
        }
        ((mass_upper - delta) / mass_lower).ln()
    }
}

/// Builds a dense PMF spanning the sparse support.
fn sparse_to_dense(points: &[(i64, f64)], infinity_mass: f64) -> Result<Pmf, PldError> {
    let lower = points.first().map_or(0, |p| p.0);
    let upper = points.last().map_or(0, |p| p.0);
    let len = fft::check_len((upper - lower) as u128 + 1)?;
    let mut probs = vec![0.0; len];
    for &(k, p) in points {
        probs[(k - lower) as usize] += p;
    }
    Ok(Pmf::Dense {
        lower,
        probs,
        infinity_mass,
    })
}

/// Truncates a freshly composed dense vector and books the right tail (and the clipped
/// round-off) at +∞.
fn finish_dense(
    lower: i64,
    probs: Vec<f64>,
    infinity_mass: f64,
    tail_mass_truncation: f64,
    clipped: f64,
) -> Pmf {
    let (offset, probs, right) = truncate_tails(probs, tail_mass_truncation);
    Pmf::Dense {
        lower: lower + offset as i64,
        probs,
        infinity_mass: infinity_mass + right + clipped,
    }
}

/// Cuts the longest prefix and suffix each holding ≤ `tail_mass_truncation`/2. The prefix
/// mass is added to the first kept point (its loss rounded *up*), the suffix mass is
/// returned for +∞ — both pessimistic. Port of dp-accounting's `_truncate_tails` with
/// `pessimistic_estimate=True`. Returns (prefix length, kept values, suffix mass).
pub(crate) fn truncate_tails(probs: Vec<f64>, tail_mass_truncation: f64) -> (usize, Vec<f64>, f64) {
    if tail_mass_truncation == 0.0 || probs.is_empty() {
        return (0, probs, 0.0);
    }
    let half = tail_mass_truncation / 2.0;
    let prefix = |iter: &mut dyn Iterator<Item = &f64>| -> usize {
        let mut sum = 0.0;
        let mut count = 0;
        for &p in iter {
            sum += p;
            if sum > half {
                return count;
            }
            count += 1;
        }
        count
    };
    // Keep at least one point, even if the whole vector is within the allowance.
    let left = prefix(&mut probs.iter()).min(probs.len() - 1);
    let right_start = (probs.len() - prefix(&mut probs.iter().rev())).max(left + 1);
    let left_mass: f64 = probs[..left].iter().sum();
    let right_mass: f64 = probs[right_start..].iter().sum();
    let mut kept = probs;
    kept.truncate(right_start);
    kept.drain(..left);
    kept[0] += left_mass;
    (left, kept, right_mass)
}

/// T-fold composition of a two-point PMF {a: p_a, b: p_b} (randomized response): loss
/// k·a + (T − k)·b with binomial probability. Computed outward from the mode by the ratio
/// recurrence and cut where the relative weight drops below 1e-40; a geometric bound on
/// each cut tail is added pessimistically (left tail to the lowest kept loss, right tail
/// to +∞).
fn binomial(
    (a, p_a): (i64, f64),
    (b, p_b): (i64, f64),
    infinity_mass: f64,
    num_times: u64,
) -> Result<Pmf, PldError> {
    // Orient so that `hi` is the larger loss; k counts draws of `hi`.
    let ((hi, p_hi), (lo, p_lo)) = if a > b {
        ((a, p_a), (b, p_b))
    } else {
        ((b, p_b), (a, p_a))
    };
    let t = num_times as f64;
    let total = p_hi + p_lo;
    let p = p_hi / total;
    const CUT: f64 = 1e-40;
    let too_large = PldError::TooLarge {
        len: u128::from(num_times),
    };
    if p == 0.0 || p == 1.0 {
        let k = if p == 1.0 { t } else { 0.0 };
        let loss = binomial_loss(k as u64, num_times, hi, lo).ok_or(too_large)?;
        let composed_infinity = -(t * (-infinity_mass).ln_1p()).exp_m1();
        return Ok(Pmf::Sparse {
            points: vec![(loss, total.powf(t))],
            infinity_mass: composed_infinity,
        });
    }
    let odds = p / (1.0 - p);
    let mode = ((t + 1.0) * p).floor().min(t) as u64;
    // Weights relative to the mode.
    let mut up = Vec::new(); // k = mode + 1, mode + 2, …
    let (mut w, mut k) = (1.0f64, mode);
    let mut right_tail = 0.0;
    while k < num_times {
        let ratio = (t - k as f64) / (k as f64 + 1.0) * odds;
        w *= ratio;
        k += 1;
        if w < CUT {
            // Past the mode the ratios only fall: the rest is at most a geometric series.
            let r = (t - k as f64) / (k as f64 + 1.0) * odds;
            right_tail = geometric_tail(w, r, num_times - k + 1);
            break;
        }
        up.push(w);
        if up.len() > fft::MAX_LEN {
            return Err(too_large);
        }
    }
    let mut down = Vec::new(); // k = mode − 1, mode − 2, …
    let (mut w, mut k) = (1.0f64, mode);
    let mut left_tail = 0.0;
    while k > 0 {
        let ratio = k as f64 / (t - k as f64 + 1.0) / odds;
        w *= ratio;
        k -= 1;
        if w < CUT {
            let r = k as f64 / (t - k as f64 + 1.0) / odds;
            left_tail = geometric_tail(w, r, k + 1);
            break;
        }
        down.push(w);
        if down.len() > fft::MAX_LEN {
            return Err(too_large);
        }
    }
    let sum: f64 = 1.0 + up.iter().sum::<f64>() + down.iter().sum::<f64>();
    // The binomial's total mass is total^T (< 1 when the input carries mass at +∞).
    let scale = total.powf(t) / sum;
    let first_k = mode - down.len() as u64;
    let mut points = Vec::with_capacity(down.len() + 1 + up.len());
    for (i, &w) in down
        .iter()
        .rev()
        .chain(std::iter::once(&1.0))
        .chain(&up)
        .enumerate()
    {
        let loss =
            binomial_loss(first_k + i as u64, num_times, hi, lo).ok_or(PldError::TooLarge {
                len: u128::from(num_times),
            })?;
        points.push((loss, w * scale));
    }
    points[0].1 += left_tail * scale;
    let composed_infinity = -(t * (-infinity_mass).ln_1p()).exp_m1();
    Ok(Pmf::Sparse {
        points,
        infinity_mass: composed_infinity + right_tail * scale,
    })
}

/// Bound on w + w·r + w·r² + … over `terms` terms, for ratios that only decrease from r.
fn geometric_tail(w: f64, r: f64, terms: u64) -> f64 {
    let all_terms = w * terms as f64;
    if r < 1.0 {
        (w / (1.0 - r)).min(all_terms)
    } else {
        all_terms
    }
}

/// k·hi + (T − k)·lo without overflow.
fn binomial_loss(k: u64, t: u64, hi: i64, lo: i64) -> Option<i64> {
    let v = i128::from(k) * i128::from(hi) + i128::from(t - k) * i128::from(lo);
    i64::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: f64 = 1e-4;

    #[test]
    fn identity_has_zero_epsilon() {
        let id = Pmf::identity();
        assert_eq!(id.epsilon_for_delta(D, 1e-6), 0.0);
        assert_eq!(id.delta_for_epsilon(D, 0.0), 0.0);
    }

    #[test]
    fn truncation_is_pessimistic() {
        let probs = vec![1e-17, 2e-17, 0.3, 0.4, 0.3, 1e-17];
        let (offset, kept, right) = truncate_tails(probs, 1e-15);
        assert_eq!(offset, 2);
        assert_eq!(kept.len(), 3);
        assert!((kept[0] - (0.3 + 3e-17)).abs() < 1e-18);
        assert!((right - 1e-17).abs() < 1e-30);
    }

    #[test]
    fn truncation_keeps_a_point_of_a_negligible_vector() {
        let (offset, kept, right) = truncate_tails(vec![1e-17, 1e-17, 1e-17], 1e-15);
        assert_eq!((offset, kept.len()), (2, 1));
        assert!((kept[0] - 3e-17).abs() < 1e-30 && right == 0.0);
    }

    #[test]
    fn randomized_response_matches_exact_binomial() {
        // ε = 1 on the grid: losses ±10000, T = 5.
        let eps: f64 = 1.0;
        let m = 10_000;
        let p = 1.0 / (1.0 + (-eps).exp());
        let pmf = Pmf::Sparse {
            points: vec![(-m, 1.0 - p), (m, p)],
            infinity_mass: 0.0,
        };
        let five = pmf.self_compose(5, 0.0).unwrap();
        let repeated = (1..5)
            .try_fold(pmf.clone(), |acc, _| acc.compose(&pmf, 0.0))
            .unwrap();
        for &e in &[0.0, 0.5, 1.0, 2.0, 3.0] {
            let x = five.delta_for_epsilon(D, e);
            let y = repeated.delta_for_epsilon(D, e);
            assert!((x - y).abs() < 1e-14, "ε={e}: {x} vs {y}");
        }
    }

    #[test]
    fn dense_self_compose_agrees_with_repeated_convolution() {
        // A small asymmetric PLD on 1500 points (dense), composed 3 times both ways.
        let n = 1500;
        let raw: Vec<f64> = (0..n)
            .map(|i| (-(i as f64 - 900.0).powi(2) / 5e4).exp())
            .collect();
        let total: f64 = raw.iter().sum();
        let probs: Vec<f64> = raw.iter().map(|p| p / total).collect();
        let pmf = Pmf::Dense {
            lower: -600,
            probs,
            infinity_mass: 0.0,
        };
        let fast = pmf.self_compose(3, 0.0).unwrap();
        let slow = pmf.compose(&pmf, 0.0).unwrap().compose(&pmf, 0.0).unwrap();
        for &e in &[0.0, 0.05, 0.1, 0.2] {
            let x = fast.delta_for_epsilon(D, e);
            let y = slow.delta_for_epsilon(D, e);
            assert!((x - y).abs() < 1e-12, "ε={e}: {x} vs {y}");
        }
    }

    #[test]
    fn epsilon_for_delta_inverts_delta_for_epsilon() {
        let pmf = Pmf::Sparse {
            points: vec![(-5000, 0.3), (0, 0.3), (5000, 0.3999)],
            infinity_mass: 1e-4,
        };
        let eps = pmf.epsilon_for_delta(D, 0.01);
        let back = pmf.delta_for_epsilon(D, eps);
        assert!((back - 0.01).abs() < 1e-12, "{back}");
        assert_eq!(pmf.epsilon_for_delta(D, 1e-5), f64::INFINITY);
    }
}

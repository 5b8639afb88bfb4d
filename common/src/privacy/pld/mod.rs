//! The PLD accountant: privacy loss distributions composed by FFT.
//!
//! A port of Google's dp-accounting `PLDAccountant` (python/dp_accounting/pld/) with its
//! defaults: pessimistic connect-the-dots discretisation (Doroshenko et al. 2022,
//! arXiv 2207.04380) on a grid of 1e-4, FFT self-composition (Koskela, Jälkö & Honkela
//! 2020, arXiv 1906.03049) on a Chernoff window with 1e-15 tail mass booked at +∞, and
//! ε = the worse of the REMOVE and ADD directions.
//!
//! - [`losses`]: each mechanism's privacy loss and exact hockey-stick curve δ(ε);
//! - `connect_dots`: from δ(ε) at the grid points to a dominating discrete PLD;
//! - `pmf`: the discrete PLD, its composition and the (ε, δ) queries;
//! - `fft`: convolution and T-fold self-convolution.
//!
//! Differences from dp-accounting, each exact or on the safe side: identical events are
//! merged before composing (one self-composition per distinct event instead of one per
//! ledger entry); all Gaussian releases (and subsampled ones with q = 1) are merged into
//! one Gaussian with 1/σ² = Σ count/σᵢ², the exact composition (Dong, Roth & Su 2019,
//! arXiv 1905.02383); pure-DP events compose exactly as a binomial; the Gaussian grid is
//! cut where μ_upper (not μ) has ½e⁻⁵⁰ of tail left; FFT round-off below zero is clipped
//! and its mass booked at +∞; the FFT window is cut at a searched Chernoff order rather
//! than the best of dp-accounting's 40 fixed ones (the same tail guarantee, a window
//! typically 5–15 % narrower); the ADD curve of a subsampled Gaussian is read off the
//! REMOVE one through the exact hockey-stick duality instead of evaluated afresh.
//!
//! Speed (ε of 10⁴ DP-SGD steps at q = 0.01, σ = 1 in ~8 ms, ~50× dp-accounting): one
//! δ-curve evaluation per grid point for both directions, Φ stepped along the grid by
//! Taylor polynomials from exact anchors, one real FFT per direction
//! with the power taken in the same pass that untangles the spectrum, FFT lengths chosen
//! for rustfft's fastest kernels, and no multi-megabyte allocation per query beyond the
//! result itself.

mod connect_dots;
mod fft;
pub mod losses;
mod pmf;

pub use losses::{AdditiveNoiseLoss, Adjacency, Noise};

use super::error::{self, PrivacyError};
use super::{Accountant, AccountantKind, Composition, PrivacyEvent};
use pmf::{PldError, Pmf};

/// dp-accounting's `PLDAccountant` default grid spacing of privacy losses.
pub const DEFAULT_VALUE_DISCRETIZATION_INTERVAL: f64 = 1e-4;

/// Mass each composition may truncate from the tails (dp-accounting's default); it is
/// booked at +∞, so δ below ~1e-14 cannot be certified at any finite ε.
pub const TAIL_MASS_TRUNCATION: f64 = 1e-15;

/// How many times the grid spacing may be doubled when a history needs a grid longer than
/// the memory cap (2²⁵ points).
const MAX_COARSENINGS: u32 = 16;

/// Privacy accounting by privacy loss distributions.
///
/// # Privacy
///
/// - **Neighbouring relation**: add/remove one privacy unit. Each history is accounted in
///   both directions (REMOVE: the unit is in D; ADD: it is in D′) and the larger ε is
///   reported, as dp-accounting's `PLDAccountant` does with `ADD_OR_REMOVE_ONE`.
/// - **Sensitivity**: events arrive normalised by sensitivity ([`PrivacyEvent`]), so every
///   loss is computed for a unit shift; see [`AdditiveNoiseLoss`].
/// - **Guarantee**: the reported ε is an upper bound on the smallest ε at which the
///   composed history is (ε, δ)-DP: each event's PLD dominates the mechanism
///   (connect-the-dots, arXiv 2207.04380), composition of dominating PLDs dominates the
///   composition, and every truncation moves mass to higher losses or to +∞.
/// - **Papers**: Koskela, Jälkö & Honkela 2020 (arXiv 1906.03049); Doroshenko, Ghazi,
///   Kamath, Kumar & Manurangsi 2022 (arXiv 2207.04380).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PldAccountant {
    value_discretization_interval: f64,
}

impl Default for PldAccountant {
    /// dp-accounting's default: losses on a grid of 1e-4.
    fn default() -> Self {
        PldAccountant {
            value_discretization_interval: DEFAULT_VALUE_DISCRETIZATION_INTERVAL,
        }
    }
}

impl PldAccountant {
    /// An accountant whose privacy losses live on a grid of `value_discretization_interval`
    /// (in (0, 1]; smaller is tighter and slower).
    pub fn new(value_discretization_interval: f64) -> Result<Self, PrivacyError> {
        if value_discretization_interval > 0.0 && value_discretization_interval <= 1.0 {
            Ok(PldAccountant {
                value_discretization_interval,
            })
        } else {
            Err(PrivacyError::invalid(
                "value discretization interval",
                value_discretization_interval,
                "a number in (0, 1]",
            ))
        }
    }

    /// The grid spacing of privacy losses.
    pub fn value_discretization_interval(&self) -> f64 {
        self.value_discretization_interval
    }

    /// The composed privacy loss distribution of `history` (both directions), for
    /// repeated (ε, δ) queries on one history.
    ///
    /// If the history needs a grid longer than 2²⁵ points (e.g. a Gaussian composed so
    /// often that its losses spread over thousands of nats), the grid spacing is doubled
    /// until it fits; the result stays an upper bound, only looser, and
    /// [`PrivacyLossDistribution::value_discretization_interval`] says which spacing won.
    pub fn distribution(
        &self,
        history: &[Composition],
    ) -> Result<PrivacyLossDistribution, PrivacyError> {
        for c in history {
            c.event.validate()?;
        }
        let groups = merge(history)?;
        let mut interval = self.value_discretization_interval;
        let mut needed = 0;
        for _ in 0..=MAX_COARSENINGS {
            match build(&groups, interval) {
                Ok(pld) => return Ok(pld),
                Err(PldError::TooLarge { len }) => {
                    needed = len;
                    interval *= 2.0;
                }
                Err(PldError::Failed(e)) => return Err(e),
            }
        }
        Err(PrivacyError::Numerical(format!(
            "PLD grid of {needed} points exceeds the memory cap even at a discretization \
             interval of {}",
            interval / 2.0
        )))
    }

    /// Smallest δ for which `history` is (ε, δ)-DP, as far as the PLD can prove (the
    /// hockey-stick divergence of the composed PLD, worse direction).
    pub fn delta_for_epsilon(
        &self,
        history: &[Composition],
        epsilon: f64,
    ) -> Result<f64, PrivacyError> {
        check_epsilon(epsilon)?;
        self.distribution(history)?.delta_for_epsilon(epsilon)
    }
}

impl Accountant for PldAccountant {
    /// ε for `delta`; `f64::INFINITY` when δ is below the PLD's mass at +∞ (then no finite
    /// ε is provable — e.g. δ < 1e-15, the truncation allowance).
    fn epsilon(&self, history: &[Composition], delta: f64) -> Result<f64, PrivacyError> {
        error::delta(delta)?;
        let distribution = self.distribution(history)?;
        // Threshold failure events take their δ off the target (their PLD would be pure
        // mass at +∞; subtracting is the same union bound the RDP accountant uses).
        match super::accountant::delta_after_thresholds(history, delta) {
            Some(left) => distribution.epsilon_for_delta(left),
            None => Ok(f64::INFINITY),
        }
    }

    fn kind(&self) -> AccountantKind {
        AccountantKind::Pld
    }
}

/// A composed privacy loss distribution in both adjacency directions.
#[derive(Clone, Debug, PartialEq)]
pub struct PrivacyLossDistribution {
    interval: f64,
    remove: Pmf,
    /// `None` when the ADD direction equals the REMOVE one (every event symmetric).
    add: Option<Pmf>,
}

impl PrivacyLossDistribution {
    fn identity(interval: f64) -> Self {
        PrivacyLossDistribution {
            interval,
            remove: Pmf::identity(),
            add: None,
        }
    }

    /// The grid spacing the losses were discretised on.
    pub fn value_discretization_interval(&self) -> f64 {
        self.interval
    }

    /// Whether both adjacency directions have the same PLD (no subsampling with q < 1).
    pub fn is_symmetric(&self) -> bool {
        self.add.is_none()
    }

    /// Smallest ε ≥ 0 with δ(ε) ≤ `delta` in both directions (the larger of the two);
    /// `f64::INFINITY` when the mass at +∞ exceeds δ.
    pub fn epsilon_for_delta(&self, delta: f64) -> Result<f64, PrivacyError> {
        error::delta(delta)?;
        let remove = self.remove.epsilon_for_delta(self.interval, delta);
        let add = self
            .add
            .as_ref()
            .map_or(remove, |pmf| pmf.epsilon_for_delta(self.interval, delta));
        let epsilon = remove.max(add);
        if epsilon.is_nan() {
            return Err(PrivacyError::Numerical("PLD epsilon is NaN".into()));
        }
        Ok(epsilon)
    }

    /// The hockey-stick divergence at `epsilon`, the worse of both directions.
    pub fn delta_for_epsilon(&self, epsilon: f64) -> Result<f64, PrivacyError> {
        check_epsilon(epsilon)?;
        let remove = self.remove.delta_for_epsilon(self.interval, epsilon);
        let add = self
            .add
            .as_ref()
            .map_or(remove, |pmf| pmf.delta_for_epsilon(self.interval, epsilon));
        let delta = remove.max(add);
        if delta.is_nan() {
            return Err(PrivacyError::Numerical("PLD delta is NaN".into()));
        }
        // Rounding can push a δ near 1 just past it; δ ≤ 1 always holds.
        Ok(delta.min(1.0))
    }

    fn compose(self, other: Self) -> Result<Self, PldError> {
        let add = match (self.add, other.add) {
            (None, None) => None,
            (mine, theirs) => {
                let mine = mine.unwrap_or_else(|| self.remove.clone());
                let theirs = theirs.unwrap_or_else(|| other.remove.clone());
                Some(mine.compose_owned(theirs, TAIL_MASS_TRUNCATION)?)
            }
        };
        let remove = self
            .remove
            .compose_owned(other.remove, TAIL_MASS_TRUNCATION)?;
        Ok(PrivacyLossDistribution {
            interval: self.interval,
            remove,
            add,
        })
    }
}

fn check_epsilon(epsilon: f64) -> Result<(), PrivacyError> {
    if epsilon.is_finite() && epsilon >= 0.0 {
        Ok(())
    } else {
        Err(PrivacyError::invalid(
            "epsilon",
            epsilon,
            "a finite number >= 0",
        ))
    }
}

/// A repeated mechanism other than the plain Gaussian.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Repeated {
    /// A Poisson-subsampled Gaussian with q < 1.
    Subsampled { q: f64, sigma: f64 },
    /// A Laplace mechanism with scale b.
    Laplace { scale: f64 },
    /// A pure ε-DP mechanism.
    PureDp { epsilon: f64 },
}

/// A history reduced to its distinct mechanisms.
#[derive(Clone, Debug, Default, PartialEq)]
struct Groups {
    /// Σ count/σ² over every Gaussian release: their composition is exactly the Gaussian
    /// with σ = (Σ count/σ²)^(−1/2).
    gaussian_inverse_variance: f64,
    /// Each other mechanism with its total count, in order of first appearance.
    repeated: Vec<(Repeated, u64)>,
}

/// Merges identical events and all Gaussians (the input is validated).
fn merge(history: &[Composition]) -> Result<Groups, PrivacyError> {
    let mut groups = Groups::default();
    for c in history.iter().filter(|c| c.count > 0) {
        let mechanism = match c.event {
            // Sampling every unit (q = 1) is the plain Gaussian.
            PrivacyEvent::Gaussian { noise_multiplier }
            | PrivacyEvent::SubsampledGaussian {
                sample_rate: 1.0,
                noise_multiplier,
            } => {
                groups.gaussian_inverse_variance +=
                    c.count as f64 / (noise_multiplier * noise_multiplier);
                continue;
            }
            PrivacyEvent::SubsampledGaussian {
                sample_rate,
                noise_multiplier,
            } => Repeated::Subsampled {
                q: sample_rate,
                sigma: noise_multiplier,
            },
            PrivacyEvent::Laplace { noise_multiplier } => Repeated::Laplace {
                scale: noise_multiplier,
            },
            PrivacyEvent::PureDp { epsilon } => Repeated::PureDp { epsilon },
            // Not a loss distribution: `Accountant::epsilon` takes its δ off the target.
            PrivacyEvent::Threshold { .. } => continue,
        };
        match groups.repeated.iter_mut().find(|(m, _)| *m == mechanism) {
            Some((_, total)) => {
                *total = total.checked_add(c.count).ok_or_else(|| {
                    PrivacyError::Numerical("composition count overflows u64".into())
                })?;
            }
            None => groups.repeated.push((mechanism, c.count)),
        }
    }
    if !groups.gaussian_inverse_variance.is_finite() {
        return Err(PrivacyError::Numerical(
            "composed Gaussian noise multiplier underflows".into(),
        ));
    }
    Ok(groups)
}

/// Composes the groups' PLDs on the grid `d`.
fn build(groups: &Groups, d: f64) -> Result<PrivacyLossDistribution, PldError> {
    let mut pld = PrivacyLossDistribution::identity(d);
    if groups.gaussian_inverse_variance > 0.0 {
        let sigma = groups.gaussian_inverse_variance.sqrt().recip();
        let loss = AdditiveNoiseLoss::gaussian(sigma, 1.0, Adjacency::Remove)?;
        let one = PrivacyLossDistribution {
            interval: d,
            remove: connect_dots::pessimistic_pmf(&loss, d)?,
            add: None,
        };
        pld = pld.compose(one)?;
    }
    for &(mechanism, count) in &groups.repeated {
        pld = pld.compose(repeated_pld(mechanism, count, d)?)?;
    }
    Ok(pld)
}

/// The PLD of `count` runs of `mechanism`.
fn repeated_pld(
    mechanism: Repeated,
    count: u64,
    d: f64,
) -> Result<PrivacyLossDistribution, PldError> {
    let repeat = |pmf: Pmf| pmf.into_self_composed(count, TAIL_MASS_TRUNCATION);
    let (remove, add) = match mechanism {
        Repeated::Subsampled { q, sigma } => {
            let remove = AdditiveNoiseLoss::gaussian(sigma, q, Adjacency::Remove)?;
            let (remove, add) = connect_dots::pessimistic_pmf_pair(&remove, d)?;
            (repeat(remove)?, Some(repeat(add)?))
        }
        Repeated::Laplace { scale } => {
            let loss = AdditiveNoiseLoss::laplace(scale, Adjacency::Remove)?;
            (repeat(connect_dots::pessimistic_pmf(&loss, d)?)?, None)
        }
        Repeated::PureDp { epsilon } => (repeat(randomized_response(epsilon, d)?)?, None),
    };
    Ok(PrivacyLossDistribution {
        interval: d,
        remove,
        add,
    })
}

/// The dominating pair of any pure ε-DP mechanism: loss +ε with probability
/// e^ε/(1 + e^ε) and −ε otherwise, each rounded *up* to the grid (dp-accounting's
/// `from_privacy_parameters` with δ = 0).
///
/// # Privacy
///
/// - **Neighbouring relation**: add/remove one unit; the pair is symmetric, so both
///   directions coincide.
/// - **Sensitivity**: already inside ε (an ε-DP mechanism at its own sensitivity).
/// - **Guarantee**: randomized response with parameter ε dominates every ε-DP mechanism
///   in the hockey-stick sense (Kairouz, Oh & Viswanath 2015, arXiv 1311.0776), and it is
///   exact for the discrete Laplace mechanism, whose loss takes only the values ±ε;
///   rounding the losses up keeps the domination.
fn randomized_response(epsilon: f64, d: f64) -> Result<Pmf, PldError> {
    let up = (epsilon / d).ceil();
    let down = (-epsilon / d).ceil();
    if up > fft::MAX_LEN as f64 {
        return Err(PldError::TooLarge { len: up as u128 });
    }
    // 1/(1 + e^{−ε}) and 1/(1 + e^{ε}), written to stay accurate for large ε.
    let p_up = 1.0 / (1.0 + (-epsilon).exp());
    let p_down = 1.0 / (1.0 + epsilon.exp());
    Pmf::from_points([(up as i64, p_up), (down as i64, p_down)], 0.0)
}

#[cfg(test)]
mod tests;

//! The Rényi-DP accountant (Mironov 2017, arXiv 1702.07476).
//!
//! A history is tracked as an RDP *curve*: one divergence bound per order α on a fixed
//! grid. Rényi divergences of a composition add (Mironov 2017, Prop. 1), so the curve of a
//! history is the count-weighted sum of its events' curves, and converting the curve to
//! (ε, δ) ([`conversion`]) picks the best order. Storing the curve (not ε) in the ledger
//! lets later releases compose with earlier ones exactly as if they had been accounted
//! together.
//!
//! - [`orders`]: the order grid (Opacus's by default);
//! - `closed_form`: the Gaussian, Laplace and pure-DP (randomized response) events;
//! - `subsampled_gaussian`: the DP-SGD step (Mironov, Talwar & Zhang 2019);
//! - [`conversion`]: curve → (ε, δ) (Balle et al. 2020).

mod closed_form;
pub mod conversion;
pub mod orders;
mod subsampled_gaussian;

use std::collections::BTreeMap;

pub use conversion::{RdpEpsilon, epsilon_from_curve};
pub use orders::default_orders;

use super::{Accountant, AccountantKind, Composition, PrivacyError, PrivacyEvent};

/// Rényi-DP accountant over a fixed grid of orders.
///
/// The default grid is Opacus's, so that ε agrees with Opacus's `RDPAccountant` on the
/// same history; [`RdpAccountant::with_orders`] takes any other grid.
#[derive(Debug, Clone, PartialEq)]
pub struct RdpAccountant {
    orders: Vec<f64>,
}

impl Default for RdpAccountant {
    fn default() -> Self {
        RdpAccountant {
            orders: default_orders(),
        }
    }
}

impl RdpAccountant {
    /// An accountant on a custom grid; every order must be finite and > 1.
    pub fn with_orders(orders: Vec<f64>) -> Result<Self, PrivacyError> {
        orders::validate(&orders)?;
        Ok(RdpAccountant { orders })
    }

    /// The order grid, in the order curves are reported.
    pub fn orders(&self) -> &[f64] {
        &self.orders
    }

    /// The RDP curve of a history: `curve[k]` bounds the Rényi divergence of order
    /// `self.orders()[k]` of the whole composition. Values may be +∞; an empty history
    /// (or all counts 0) gives all zeros.
    ///
    /// Every event is validated, including those with count 0. Identical events are
    /// grouped so a history of many single steps costs one curve evaluation.
    ///
    /// # Privacy
    ///
    /// Adaptive composition of RDP mechanisms adds their divergences order by order
    /// (Mironov 2017, arXiv 1702.07476, Prop. 1), so the curve of `count` repetitions is
    /// `count` × the per-event curve. Each event's curve is under add/remove-one-unit.
    pub fn curve(&self, history: &[Composition]) -> Result<Vec<f64>, PrivacyError> {
        // Group identical events (keyed by their exact bits, so the grouping and hence the
        // floating-point summation order are deterministic).
        let mut groups: BTreeMap<(u8, u64, u64), (PrivacyEvent, u64)> = BTreeMap::new();
        for composition in history {
            composition.event.validate()?;
            if composition.count == 0 {
                continue;
            }
            let entry = groups
                .entry(event_key(&composition.event))
                .or_insert((composition.event, 0));
            entry.1 = entry
                .1
                .checked_add(composition.count)
                .ok_or_else(|| PrivacyError::Numerical("total event count overflows u64".into()))?;
        }

        let mut curve = vec![0.0; self.orders.len()];
        for (event, count) in groups.into_values() {
            let count = count as f64;
            for (total, &order) in curve.iter_mut().zip(&self.orders) {
                *total += count * rdp_of_validated(&event, order)?;
            }
        }
        Ok(curve)
    }

    /// The (ε, δ) guarantee of a history and the order that gives it.
    ///
    /// ε is 0 exactly for an empty history (or all counts 0) and +∞ if no order has a
    /// finite divergence. δ must lie in (0, 1).
    ///
    /// # Privacy
    ///
    /// [`RdpAccountant::curve`] composed under add/remove-one-unit, then
    /// [`epsilon_from_curve`] (Balle et al. 2020, arXiv 1905.09982, Thm. 21).
    pub fn epsilon_and_order(
        &self,
        history: &[Composition],
        delta: f64,
    ) -> Result<RdpEpsilon, PrivacyError> {
        super::error::delta(delta)?;
        let curve = self.curve(history)?;
        // Threshold failure events take their δ off the target; they add no divergence.
        let Some(delta) = super::accountant::delta_after_thresholds(history, delta) else {
            return Ok(RdpEpsilon {
                epsilon: f64::INFINITY,
                order: None,
            });
        };
        epsilon_from_curve(&self.orders, &curve, delta)
    }
}

impl Accountant for RdpAccountant {
    fn epsilon(&self, history: &[Composition], delta: f64) -> Result<f64, PrivacyError> {
        Ok(self.epsilon_and_order(history, delta)?.epsilon)
    }

    fn kind(&self) -> AccountantKind {
        AccountantKind::Rdp
    }
}

/// The RDP ε(α) of one event at one order, normalised by sensitivity.
///
/// Validates the event and the order. Never exactly 0 for a valid event: a divergence that
/// underflows is reported as the smallest positive double, so that a weak mechanism is
/// never mistaken for the identity.
///
/// # Privacy
///
/// All events are under add/remove one privacy unit, normalised by the sensitivity that
/// the event's noise multiplier is relative to. Per event:
/// - `Gaussian`: α/(2σ²) (Mironov 2017, arXiv 1702.07476, Prop. 7);
/// - `Laplace`: Mironov 2017, Prop. 6;
/// - `PureDp`: randomized response with the same ε, which dominates every ε-DP mechanism;
/// - `SubsampledGaussian`: Mironov, Talwar & Zhang 2019 (arXiv 1908.10530), as Opacus
///   computes it.
///
/// See the per-mechanism functions for the details and rounding.
pub fn event_rdp(event: &PrivacyEvent, order: f64) -> Result<f64, PrivacyError> {
    event.validate()?;
    orders::validate_one(order)?;
    rdp_of_validated(event, order)
}

/// [`event_rdp`] without the checks, for callers that validated already.
fn rdp_of_validated(event: &PrivacyEvent, order: f64) -> Result<f64, PrivacyError> {
    let value = match *event {
        PrivacyEvent::Gaussian { noise_multiplier } => {
            closed_form::gaussian(noise_multiplier, order)
        }
        PrivacyEvent::Laplace { noise_multiplier } => closed_form::laplace(noise_multiplier, order),
        PrivacyEvent::PureDp { epsilon } => closed_form::pure_dp(epsilon, order),
        PrivacyEvent::SubsampledGaussian {
            sample_rate,
            noise_multiplier,
        } => subsampled_gaussian::rdp(sample_rate, noise_multiplier, order)?,
        // Accounted as a δ taken off the target in `epsilon_and_order`, not as a divergence.
        PrivacyEvent::Threshold { .. } => return Ok(0.0),
    };
    if value.is_nan() {
        return Err(PrivacyError::Numerical(format!(
            "RDP of {event:?} at order {order} is NaN"
        )));
    }
    // Round up: every valid event has a strictly positive divergence.
    Ok(value.max(f64::MIN_POSITIVE))
}

/// An exact key for grouping identical events.
fn event_key(event: &PrivacyEvent) -> (u8, u64, u64) {
    match *event {
        PrivacyEvent::Gaussian { noise_multiplier } => (0, noise_multiplier.to_bits(), 0),
        PrivacyEvent::Laplace { noise_multiplier } => (1, noise_multiplier.to_bits(), 0),
        PrivacyEvent::PureDp { epsilon } => (2, epsilon.to_bits(), 0),
        PrivacyEvent::SubsampledGaussian {
            sample_rate,
            noise_multiplier,
        } => (3, sample_rate.to_bits(), noise_multiplier.to_bits()),
        PrivacyEvent::Threshold { delta } => (4, delta.to_bits(), 0),
    }
}

#[cfg(test)]
mod tests;

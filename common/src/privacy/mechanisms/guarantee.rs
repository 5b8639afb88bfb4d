//! What a mechanism promises, and the interface every mechanism shares.

use serde::{Deserialize, Serialize};

use super::multiplier_down;
use crate::privacy::error::{self, PrivacyError};
use crate::privacy::event::PrivacyEvent;

/// The privacy guarantee of one release, under the add/remove-one-unit relation.
///
/// Only the two notions Silo's mechanisms are calibrated in: (ε, δ) is derived from them by
/// the accountants (which compose the exact [`PrivacyEvent`]s, a tighter route than
/// converting each release to (ε, δ) and adding).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Guarantee {
    /// Pure ε-DP (Laplace, discrete Laplace).
    PureDp {
        /// ε > 0.
        epsilon: f64,
    },
    /// ρ-zero-concentrated DP (Bun & Steinke 2016, arXiv 1605.02065): Gaussian and discrete
    /// Gaussian, ρ = Δ₂² / (2σ²).
    Zcdp {
        /// ρ > 0.
        rho: f64,
    },
}

impl Guarantee {
    /// A pure-DP guarantee; ε must be finite and > 0.
    pub fn pure_dp(epsilon: f64) -> Result<Self, PrivacyError> {
        error::positive("epsilon", epsilon)?;
        Ok(Guarantee::PureDp { epsilon })
    }

    /// A zCDP guarantee; ρ must be finite and > 0.
    pub fn zcdp(rho: f64) -> Result<Self, PrivacyError> {
        error::positive("rho", rho)?;
        Ok(Guarantee::Zcdp { rho })
    }

    /// The event an accountant composes for a mechanism known only by this guarantee.
    ///
    /// `PureDp { ε }` maps to [`PrivacyEvent::PureDp`], whose dominating pair is valid for
    /// every ε-DP mechanism. `Zcdp { ρ }` maps to the Gaussian event with noise multiplier
    /// `1/sqrt(2ρ)` (rounded down): a Gaussian's privacy curve depends only on σ/Δ₂, so this
    /// is exact for the Gaussian, and safe for the discrete Gaussian (whose Rényi
    /// divergences are no larger; Canonne, Kamath & Steinke 2020, arXiv 2004.00010). It is
    /// **not** valid for an arbitrary ρ-zCDP mechanism, which Silo does not have.
    ///
    /// Mechanisms with a tighter description (Laplace: [`PrivacyEvent::Laplace`]) return it
    /// from [`Mechanism::event`] instead.
    pub fn event(&self) -> PrivacyEvent {
        match *self {
            Guarantee::PureDp { epsilon } => PrivacyEvent::PureDp { epsilon },
            Guarantee::Zcdp { rho } => PrivacyEvent::Gaussian {
                noise_multiplier: multiplier_down(1.0 / (2.0 * rho).sqrt()),
            },
        }
    }
}

/// A DP mechanism: its sensitivity, its noise, its guarantee, and the event to charge.
///
/// Implemented by [`super::GaussianMechanism`], [`super::LaplaceMechanism`],
/// [`super::DiscreteLaplace`] and [`super::DiscreteGaussian`]. (The DP-SGD descriptor
/// [`super::SubsampledGaussian`] yields a composition of events instead.)
pub trait Mechanism {
    /// The sensitivity the noise is calibrated to: L2 for the Gaussians, L1 for the Laplaces.
    fn sensitivity(&self) -> f64;

    /// The noise scale: the standard deviation σ for the Gaussians, b for the Laplaces.
    fn noise_scale(&self) -> f64;

    /// The guarantee of one release, rounded toward more privacy loss.
    fn guarantee(&self) -> Guarantee;

    /// The event the accountants compose for one release.
    fn event(&self) -> PrivacyEvent;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_reject_invalid_values() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                Guarantee::pure_dp(bad),
                Err(PrivacyError::InvalidParameter {
                    name: "epsilon",
                    ..
                })
            ));
            assert!(matches!(
                Guarantee::zcdp(bad),
                Err(PrivacyError::InvalidParameter { name: "rho", .. })
            ));
        }
    }

    #[test]
    fn events_from_guarantees() {
        assert_eq!(
            Guarantee::pure_dp(0.7).unwrap().event(),
            PrivacyEvent::PureDp { epsilon: 0.7 }
        );
        // ρ = 1/8 is the Gaussian with σ/Δ = 2.
        let PrivacyEvent::Gaussian { noise_multiplier } = Guarantee::zcdp(0.125).unwrap().event()
        else {
            panic!("expected a Gaussian event");
        };
        assert!(noise_multiplier < 2.0 && noise_multiplier > 2.0 * (1.0 - 1e-14));
    }

    #[test]
    fn serialises_with_a_kind_tag() {
        let json = serde_json::to_string(&Guarantee::Zcdp { rho: 0.5 }).unwrap();
        assert_eq!(json, r#"{"kind":"zcdp","rho":0.5}"#);
        let back: Guarantee = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Guarantee::Zcdp { rho: 0.5 });
    }
}

//! Privacy events: what an accountant needs to know about one release.
//!
//! An event is a mechanism's privacy-relevant parameters *normalised by its sensitivity*,
//! so the accountants never see raw noise scales: a Gaussian with standard deviation 3 on a
//! query of L2 sensitivity 2 is the event `Gaussian { noise_multiplier: 1.5 }`.

use serde::{Deserialize, Serialize};

use super::error::{self, PrivacyError};

/// One release of a DP mechanism, normalised by sensitivity.
///
/// All events assume the *add/remove-one-unit* neighbouring relation (one privacy unit's
/// records are present or absent); the accountants report the worst of both directions.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mechanism", rename_all = "snake_case")]
pub enum PrivacyEvent {
    /// Gaussian mechanism: noise standard deviation = `noise_multiplier` × L2 sensitivity.
    /// Also used for the discrete Gaussian, whose Rényi divergences are no larger than the
    /// continuous one's (Canonne, Kamath & Steinke 2020, arXiv 2004.00010, Prop. 10).
    Gaussian {
        /// σ / Δ₂.
        noise_multiplier: f64,
    },
    /// Laplace mechanism: noise scale b = `noise_multiplier` × L1 sensitivity (pure ε = 1/b).
    Laplace {
        /// b / Δ₁.
        noise_multiplier: f64,
    },
    /// Any pure ε-DP mechanism, accounted by its dominating pair (randomized response with
    /// ε). Exact for the discrete Laplace (geometric) mechanism, whose privacy loss takes
    /// only the values ±ε.
    PureDp {
        /// The mechanism's ε.
        epsilon: f64,
    },
    /// The Poisson-subsampled Gaussian of DP-SGD: each unit is included independently with
    /// probability `sample_rate`, then a Gaussian with `noise_multiplier` × sensitivity is
    /// added to the (clipped) sum.
    SubsampledGaussian {
        /// Poisson sampling probability q ∈ (0, 1].
        sample_rate: f64,
        /// σ / Δ₂.
        noise_multiplier: f64,
    },
    /// The failure event of a thresholded release (Gaussian partition selection): with
    /// probability at most `delta` a key held by the one differing unit alone passes the
    /// release threshold; otherwise the release is post-processing of the Gaussian counts
    /// it is paired with (accounted as their own `Gaussian` event). Accountants compose
    /// the other events at the target δ minus the sum of these δs (a union bound over the
    /// failure events; Wilson et al. 2020, arXiv 1909.01917, §3; Gopi et al. 2020,
    /// arXiv 2002.09745).
    Threshold {
        /// Probability of the failure event, in (0, 1).
        delta: f64,
    },
}

impl PrivacyEvent {
    /// A Gaussian event; σ/Δ must be finite and > 0.
    pub fn gaussian(noise_multiplier: f64) -> Result<Self, PrivacyError> {
        error::positive("noise multiplier", noise_multiplier)?;
        Ok(PrivacyEvent::Gaussian { noise_multiplier })
    }

    /// A Laplace event; b/Δ must be finite and > 0.
    pub fn laplace(noise_multiplier: f64) -> Result<Self, PrivacyError> {
        error::positive("laplace scale", noise_multiplier)?;
        Ok(PrivacyEvent::Laplace { noise_multiplier })
    }

    /// A pure-DP event; ε must be finite and > 0.
    pub fn pure_dp(epsilon: f64) -> Result<Self, PrivacyError> {
        error::positive("epsilon", epsilon)?;
        Ok(PrivacyEvent::PureDp { epsilon })
    }

    /// A Poisson-subsampled Gaussian event; q ∈ (0, 1], σ > 0.
    pub fn subsampled_gaussian(
        sample_rate: f64,
        noise_multiplier: f64,
    ) -> Result<Self, PrivacyError> {
        error::sample_rate(sample_rate)?;
        error::positive("noise multiplier", noise_multiplier)?;
        Ok(PrivacyEvent::SubsampledGaussian {
            sample_rate,
            noise_multiplier,
        })
    }

    /// A threshold-release failure event; δ must lie in (0, 1).
    pub fn threshold(delta: f64) -> Result<Self, PrivacyError> {
        error::delta(delta)?;
        Ok(PrivacyEvent::Threshold { delta })
    }

    /// Re-checks the parameters (events can also arrive deserialised from a ledger).
    pub fn validate(&self) -> Result<(), PrivacyError> {
        match *self {
            PrivacyEvent::Gaussian { noise_multiplier } => Self::gaussian(noise_multiplier),
            PrivacyEvent::Laplace { noise_multiplier } => Self::laplace(noise_multiplier),
            PrivacyEvent::PureDp { epsilon } => Self::pure_dp(epsilon),
            PrivacyEvent::SubsampledGaussian {
                sample_rate,
                noise_multiplier,
            } => Self::subsampled_gaussian(sample_rate, noise_multiplier),
            PrivacyEvent::Threshold { delta } => Self::threshold(delta),
        }
        .map(|_| ())
    }
}

/// An event repeated `count` times (e.g. T steps of DP-SGD with the same q and σ).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Composition {
    /// The repeated event.
    pub event: PrivacyEvent,
    /// How many times it ran; 0 contributes nothing.
    pub count: u64,
}

impl Composition {
    /// `count` repetitions of `event`.
    pub fn new(event: PrivacyEvent, count: u64) -> Self {
        Composition { event, count }
    }
}

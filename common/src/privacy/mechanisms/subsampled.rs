//! The DP-SGD descriptor: T steps of the Poisson-subsampled Gaussian mechanism on clipped
//! gradients.

use serde::{Deserialize, Serialize};

use super::GaussianMechanism;
use crate::privacy::error::{self, PrivacyError};
use crate::privacy::event::{Composition, PrivacyEvent};
use crate::privacy::noise;

/// How a step's gradient is clipped, which sets the L2 sensitivity of the noised sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Clipping {
    /// Each unit's gradient is clipped to norm C, then the clipped gradients are summed
    /// (Abadi et al. 2016): adding or removing one unit adds or removes one term of norm
    /// ≤ C, so the sum moves by at most C. Sensitivity factor 1.
    PerExample,
    /// The gradient of the whole batch is clipped to norm C, as DP-CLIP does (Huang et al.
    /// 2023, arXiv 2306.08173): a contrastive loss couples every example of a batch, so
    /// per-example gradients do not exist. Adding or removing one unit can change every
    /// term of the batch loss, so the clipped batch gradient can move from one vector of
    /// norm ≤ C to any other: by the triangle inequality ‖g(B ∪ {u}) − g(B)‖ ≤ ‖g(B ∪ {u})‖ +
    /// ‖g(B)‖ ≤ 2C. Sensitivity factor 2.
    PerBatch,
}

impl Clipping {
    /// L2 sensitivity of the clipped gradient in units of the clipping norm C: 1 or 2.
    pub fn sensitivity_factor(self) -> f64 {
        match self {
            Clipping::PerExample => 1.0,
            Clipping::PerBatch => 2.0,
        }
    }
}

/// A DP-SGD run: each of `steps` steps samples every unit independently with probability
/// `sample_rate`, clips, and adds N(0, (σ·C)²) to each coordinate of the gradient.
///
/// # Privacy
///
/// - **Neighbouring relation:** add/remove one privacy unit (with Poisson sampling, the
///   unit is absent from, or independently sampled into, each step's batch).
/// - **Sensitivity:** the clipped gradient of a batch moves by at most
///   Δ₂ = factor · C when one unit is added or removed, where the factor is 1 for
///   per-example and 2 for per-batch clipping (reasoning on [`Clipping`]).
/// - **Guarantee:** each step is the Poisson-subsampled Gaussian mechanism with rate q and
///   noise multiplier σ_eff = σ·C/Δ₂ = σ/factor (Abadi et al. 2016, arXiv 1607.00133;
///   Rényi DP of the sampled Gaussian: Mironov, Talwar & Zhang 2019, arXiv 1908.10530);
///   the run is its T-fold adaptive composition, charged as one [`Composition`] and turned
///   into (ε, δ) by the RDP or PLD accountant. For per-batch clipping the shift between the
///   two mixtures depends on the rest of the batch; by joint convexity of the divergences
///   the worst case is a fixed batch, a pair shifted by a vector of norm ≤ 2C, which by
///   rotation invariance and monotonicity in the shift is dominated by the 1-D pair with
///   noise multiplier σ/2.
/// - **Sampling:** [`Self::step_mechanism`] adds each step's noise.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct SubsampledGaussian {
    sample_rate: f64,
    noise_multiplier: f64,
    steps: u64,
    clipping_norm: f64,
    clipping: Clipping,
}

impl SubsampledGaussian {
    /// A DP-SGD descriptor. Rejects q ∉ (0, 1], σ or C not finite and > 0, zero steps, and a
    /// noise std σ·C outside the fast sampler's range [2^-960, 2^960].
    pub fn new(
        sample_rate: f64,
        noise_multiplier: f64,
        steps: u64,
        clipping_norm: f64,
        clipping: Clipping,
    ) -> Result<Self, PrivacyError> {
        error::sample_rate(sample_rate)?;
        error::positive("noise multiplier", noise_multiplier)?;
        if steps == 0 {
            return Err(PrivacyError::invalid("steps", 0.0, "at least 1"));
        }
        error::positive("clipping norm", clipping_norm)?;
        let descriptor = SubsampledGaussian {
            sample_rate,
            noise_multiplier,
            steps,
            clipping_norm,
            clipping,
        };
        noise::check_scale("gaussian noise std", descriptor.noise_std())?;
        error::positive("l2 sensitivity", descriptor.l2_sensitivity())?;
        PrivacyEvent::subsampled_gaussian(sample_rate, descriptor.effective_noise_multiplier())?;
        Ok(descriptor)
    }

    /// q, the Poisson sampling rate.
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// σ, the noise multiplier relative to the clipping norm.
    pub fn noise_multiplier(&self) -> f64 {
        self.noise_multiplier
    }

    /// T, the number of steps.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// C, the clipping norm.
    pub fn clipping_norm(&self) -> f64 {
        self.clipping_norm
    }

    /// How gradients are clipped.
    pub fn clipping(&self) -> Clipping {
        self.clipping
    }

    /// Δ₂ = factor · C, the L2 sensitivity of one step's clipped gradient.
    pub fn l2_sensitivity(&self) -> f64 {
        self.clipping.sensitivity_factor() * self.clipping_norm
    }

    /// σ · C, the standard deviation of the noise added to each coordinate.
    pub fn noise_std(&self) -> f64 {
        self.noise_multiplier * self.clipping_norm
    }

    /// σ / factor = noise std / Δ₂, the multiplier the accountants see (exact: the factor
    /// is a power of two).
    pub fn effective_noise_multiplier(&self) -> f64 {
        self.noise_multiplier / self.clipping.sensitivity_factor()
    }

    /// One step's event: the subsampled Gaussian with rate q and σ / factor.
    pub fn event(&self) -> PrivacyEvent {
        PrivacyEvent::SubsampledGaussian {
            sample_rate: self.sample_rate,
            noise_multiplier: self.effective_noise_multiplier(),
        }
    }

    /// The whole run, to charge: [`Self::event`] repeated T times.
    pub fn composition(&self) -> Composition {
        Composition::new(self.event(), self.steps)
    }

    /// The Gaussian mechanism that noises one step's clipped gradient: Δ₂ = factor · C,
    /// σ_noise = σ · C.
    ///
    /// Use it to *add* the noise; charge [`Self::composition`], not this mechanism's own
    /// (un-amplified, much larger) guarantee.
    pub fn step_mechanism(&self) -> Result<GaussianMechanism, PrivacyError> {
        GaussianMechanism::new(self.l2_sensitivity(), self.noise_std())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::noise::SimulationRng;
    use crate::privacy::noise::testing::{self, Expected};

    fn name_of(r: Result<SubsampledGaussian, PrivacyError>) -> &'static str {
        match r {
            Err(PrivacyError::InvalidParameter { name, .. }) => name,
            other => panic!("expected an invalid parameter, got {other:?}"),
        }
    }

    #[test]
    fn constructor_rejects_invalid_parameters() {
        let ok = |q, s, t, c| SubsampledGaussian::new(q, s, t, c, Clipping::PerExample);
        for bad in [0.0, -0.1, 1.5, f64::NAN] {
            assert_eq!(name_of(ok(bad, 1.0, 10, 1.0)), "sample rate");
        }
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(name_of(ok(0.01, bad, 10, 1.0)), "noise multiplier");
            assert_eq!(name_of(ok(0.01, 1.0, 10, bad)), "clipping norm");
        }
        assert_eq!(name_of(ok(0.01, 1.0, 0, 1.0)), "steps");
        assert_eq!(name_of(ok(0.01, 1e-200, 10, 1e-200)), "gaussian noise std");
        assert!(ok(1.0, 1.0, 1, 1.0).is_ok());
    }

    #[test]
    fn per_example_composition_and_noise() {
        let d = SubsampledGaussian::new(0.01, 1.1, 1000, 0.5, Clipping::PerExample).unwrap();
        assert_eq!(d.l2_sensitivity(), 0.5);
        assert_eq!(d.noise_std(), 1.1 * 0.5);
        assert_eq!(
            d.composition(),
            Composition::new(
                PrivacyEvent::SubsampledGaussian {
                    sample_rate: 0.01,
                    noise_multiplier: 1.1
                },
                1000
            )
        );
    }

    #[test]
    fn per_batch_clipping_halves_the_effective_multiplier() {
        let d = SubsampledGaussian::new(0.02, 3.0, 50, 2.0, Clipping::PerBatch).unwrap();
        assert_eq!(d.l2_sensitivity(), 4.0);
        assert_eq!(d.noise_std(), 6.0);
        assert_eq!(d.effective_noise_multiplier(), 1.5);
        assert_eq!(d.composition().count, 50);
        assert_eq!(
            d.composition().event,
            PrivacyEvent::SubsampledGaussian {
                sample_rate: 0.02,
                noise_multiplier: 1.5
            }
        );
        assert_eq!(Clipping::PerExample.sensitivity_factor(), 1.0);
        assert_eq!(Clipping::PerBatch.sensitivity_factor(), 2.0);
    }

    #[test]
    fn step_mechanism_adds_sigma_times_c() {
        let d = SubsampledGaussian::new(0.01, 0.8, 10, 2.5, Clipping::PerBatch).unwrap();
        let step = d.step_mechanism().unwrap();
        assert_eq!(step.sigma(), 2.0);
        assert_eq!(step.l2_sensitivity(), 5.0);
        let mut rng = SimulationRng::seeded_insecure(17);
        let mut grad = vec![0.25_f32; 300_000];
        step.release_f32(&mut grad, &mut rng).unwrap();
        let grad: Vec<f64> = grad.iter().map(|&g| g as f64).collect();
        testing::check(&grad, &Expected::gaussian(0.25, 2.0)).unwrap();
    }

    #[test]
    fn clipping_serialises_in_snake_case() {
        assert_eq!(
            serde_json::to_string(&Clipping::PerBatch).unwrap(),
            r#""per_batch""#
        );
    }
}

//! Where the random bits for DP noise come from.
//!
//! Two generators implement [`NoiseSource`], both ChaCha20 (`rand_chacha`):
//!
//! - [`SecureRng`]: keyed from the operating system's entropy source. This is the only
//!   source a site may use for a real release (DESIGN section 2, rule 5).
//! - [`SimulationRng`]: keyed from a `u64` seed, so that synthetic data, simulations and
//!   tests are reproducible. Anyone who knows the seed knows the noise: it provides **no
//!   privacy at all**.
//!
//! The trait is sealed: no other generator (a fast non-cryptographic one, a mock) can be
//! passed to a mechanism by accident.

use std::fmt;

use rand::rngs::SysRng;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::privacy::error::PrivacyError;

mod sealed {
    /// Restricts [`super::NoiseSource`] to the generators of this module.
    pub trait Sealed {}
}

/// A generator of uniformly random 64-bit words for DP noise.
///
/// Implemented only by [`SecureRng`] (production) and [`SimulationRng`] (reproducible,
/// insecure). Mechanisms ask [`NoiseSource::is_secure`] to decide whether OpenDP's exact
/// samplers, which draw their own OS randomness, can be used for small releases.
pub trait NoiseSource: sealed::Sealed {
    /// The next 64 uniformly random bits.
    fn next_u64(&mut self) -> u64;

    /// `true` only for a generator keyed from operating-system entropy.
    fn is_secure(&self) -> bool;
}

/// ChaCha20 keyed from the operating system: the production noise source.
///
/// Not `Clone`: two copies would produce the same noise twice, and noise reused across two
/// releases cancels out in their difference. `Debug` does not print the key.
pub struct SecureRng {
    rng: ChaCha20Rng,
}

impl SecureRng {
    /// A generator with a fresh 256-bit key read from the OS (`getrandom`).
    ///
    /// Fails (rather than falling back to anything weaker) if the OS cannot provide
    /// entropy.
    pub fn from_os() -> Result<Self, PrivacyError> {
        ChaCha20Rng::try_from_rng(&mut SysRng)
            .map(|rng| SecureRng { rng })
            .map_err(|e| PrivacyError::Numerical(format!("OS entropy source failed: {e}")))
    }
}

impl sealed::Sealed for SecureRng {}

impl NoiseSource for SecureRng {
    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn is_secure(&self) -> bool {
        true
    }
}

impl fmt::Debug for SecureRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecureRng { .. }")
    }
}

/// ChaCha20 keyed from a `u64` seed: **for tests, synthetic data and simulation only.**
///
/// The same seed gives the same noise on every machine, which is what a reproducible
/// simulation needs and exactly what a real release must never have: the noise is a public
/// function of the seed, so it protects nothing. Mechanisms treat this source as insecure
/// (see [`NoiseSource::is_secure`]) and always use the fast samplers with it, so a seeded
/// run is reproducible end to end.
#[derive(Clone)]
pub struct SimulationRng {
    rng: ChaCha20Rng,
    seed: u64,
}

impl SimulationRng {
    /// A reproducible generator. **Insecure: never use it for a release that leaves a site.**
    pub fn seeded_insecure(seed: u64) -> Self {
        SimulationRng {
            rng: ChaCha20Rng::seed_from_u64(seed),
            seed,
        }
    }

    /// The seed this generator was built from.
    pub fn seed(&self) -> u64 {
        self.seed
    }
}

impl sealed::Sealed for SimulationRng {}

impl NoiseSource for SimulationRng {
    #[inline]
    fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn is_secure(&self) -> bool {
        false
    }
}

impl fmt::Debug for SimulationRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulationRng")
            .field("seed", &self.seed)
            .finish_non_exhaustive()
    }
}

/// 2^e as an f64, for `e` in the normal range.
const fn pow2(e: i32) -> f64 {
    f64::from_bits(((1023 + e) as u64) << 52)
}

/// After this many all-zero 11-bit prefixes (probability 2^-990) the draw stops refining.
/// Keeps every value normal: the result is at least 2^-1001.
const MAX_REFINEMENTS: u32 = 90;

/// A uniform draw from the open interval (0, 1) with 53 significant bits at every scale.
///
/// The textbook conversion `(bits >> 11) as f64 * 2^-53` has absolute resolution 2^-53, so
/// values near 0 carry few significant bits and `-ln(u)` (the tails of the Laplace and
/// Gaussian samplers) becomes coarse and gappy beyond about 16 scale units. Here the draw
/// reads the binary expansion of a uniform real `U = 0.b1 b2 b3 ...`: while the leading 11
/// bits of a word are all zero, `U < 2^-11` and `U · 2^11` is again uniform, so the draw
/// rescales and reads a fresh word; otherwise the word holds at least 53 significant bits,
/// which become the significand (truncated, so the result is never 0 and never 1).
#[inline]
pub(crate) fn open01<R: NoiseSource + ?Sized>(rng: &mut R) -> f64 {
    open01_and_bit(rng).0
}

/// [`open01`] and one more fair bit, independent of the draw: the lowest bit of the last
/// word, which the draw never reads (it reads the leading zeros and the next 53 bits, at
/// most 63 bits in all).
#[inline]
pub(crate) fn open01_and_bit<R: NoiseSource + ?Sized>(rng: &mut R) -> (f64, bool) {
    let mut scale = 1.0;
    for _ in 0..MAX_REFINEMENTS {
        let x = rng.next_u64();
        let lz = x.leading_zeros();
        if lz <= 10 {
            // x ∈ [2^(63-lz), 2^(64-lz)): keep its top 53 bits, m ∈ [2^52, 2^53).
            let m = x >> (11 - lz);
            return ((m as f64) * pow2(-53 - lz as i32) * scale, x & 1 == 1);
        }
        scale *= pow2(-11);
    }
    (scale, rng.next_u64() & 1 == 1)
}

/// A uniform draw from [0, 1) on the grid of multiples of 2^-53 (for angles).
#[inline]
pub(crate) fn unit53(bits: u64) -> f64 {
    (bits >> 11) as f64 * pow2(-53)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_sources_repeat_and_secure_sources_differ() {
        let mut a = SimulationRng::seeded_insecure(7);
        let mut b = SimulationRng::seeded_insecure(7);
        let mut c = SimulationRng::seeded_insecure(8);
        let xa: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
        assert!(!a.is_secure());

        let mut s1 = SecureRng::from_os().unwrap();
        let mut s2 = SecureRng::from_os().unwrap();
        assert!(s1.is_secure());
        assert_ne!(s1.next_u64(), s2.next_u64());
        assert_eq!(format!("{s1:?}"), "SecureRng { .. }");
    }

    #[test]
    fn open01_stays_inside_and_is_uniform() {
        let mut rng = SimulationRng::seeded_insecure(1);
        let n = 200_000;
        let draws: Vec<f64> = (0..n).map(|_| open01(&mut rng)).collect();
        assert!(draws.iter().all(|&u| u > 0.0 && u < 1.0));
        // Mean 1/2 and variance 1/12, within 5 standard errors.
        let mean = draws.iter().sum::<f64>() / n as f64;
        assert!(
            (mean - 0.5).abs() < 5.0 * (1.0 / 12.0 / n as f64).sqrt(),
            "{mean}"
        );
        // The fraction below 2^-11 (the refinement branch) is 2^-11.
        let p = pow2(-11);
        let small = draws.iter().filter(|&&u| u < p).count() as f64 / n as f64;
        assert!((small - p).abs() < 5.0 * (p / n as f64).sqrt(), "{small}");
    }

    #[test]
    fn the_spare_bit_is_fair_and_independent_of_the_draw() {
        let mut rng = SimulationRng::seeded_insecure(4);
        let n = 200_000;
        let (mut ones, mut low, mut ones_low) = (0, 0, 0);
        for _ in 0..n {
            let (u, bit) = open01_and_bit(&mut rng);
            ones += bit as usize;
            if u < 0.5 {
                low += 1;
                ones_low += bit as usize;
            }
        }
        let tolerance = |m: usize| 5.0 * (0.25 / m as f64).sqrt();
        assert!((ones as f64 / n as f64 - 0.5).abs() < tolerance(n));
        assert!((ones_low as f64 / low as f64 - 0.5).abs() < tolerance(low));
    }

    #[test]
    fn open01_keeps_precision_deep_in_the_refinement_branch() {
        // A source that yields zero words first forces the refinement path.
        struct Zeros(u32, u64);
        impl sealed::Sealed for Zeros {}
        impl NoiseSource for Zeros {
            fn next_u64(&mut self) -> u64 {
                if self.0 > 0 {
                    self.0 -= 1;
                    0
                } else {
                    self.1
                }
            }
            fn is_secure(&self) -> bool {
                false
            }
        }
        let word = 0x8000_0000_0000_0801_u64; // top bit set, low bits kept up to bit 11
        let u = open01(&mut Zeros(3, word));
        let expected = ((word >> 11) as f64) * pow2(-53) * pow2(-33);
        assert_eq!(u, expected);
        // Full 53-bit significand survives: u is not a multiple of a coarser power of two.
        assert_ne!(u, (u * pow2(85)).floor() * pow2(-85));
        // Exhausting the refinements returns the floor 2^-990 instead of 0.
        assert_eq!(open01(&mut Zeros(1000, 1)), pow2(-990));
    }

    #[test]
    fn unit53_bounds() {
        assert_eq!(unit53(0), 0.0);
        assert!(unit53(u64::MAX) < 1.0);
        assert_eq!(unit53(1 << 63), 0.5);
    }
}

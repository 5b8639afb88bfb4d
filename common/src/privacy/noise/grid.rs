//! The floating-point mitigation of the fast samplers: release the *exact* sum `x + noise`
//! rounded to a grid much coarser than the noise's floating-point resolution.
//!
//! # Security
//!
//! **The attack.** Mironov (2012, "On significance of the least significant bits for
//! differential privacy", CCS) showed that textbook floating-point Laplace noise leaks the
//! input: the computed noise takes only some floating-point values, unevenly spread, and the
//! rounding of `x + noise` depends on the low-order bits of `x`, so the *set* of possible
//! outputs differs between neighbouring inputs and a single output can reveal which input
//! was used. The same holds for Box–Muller or Ziggurat Gaussians.
//!
//! **The mitigation chosen: rounding to a noise grid, computed exactly.** For a noise scale
//! `s` (σ or b), the grid spacing `g` is the largest power of two ≤ `s · 2^-30`
//! ([`GRID_BITS`]). A released value is `F(x + N)` where
//!
//! - `x + N` is the **exact real sum** of the input and the computed noise: the rounding is
//!   decided on the exact sum (the rounding error of the floating-point addition, recovered
//!   with Knuth's error-free TwoSum when it matters), so the rounding error of `x + N`,
//!   which depends on `x`'s low bits, never reaches the output;
//! - `F` rounds a real to the nearest multiple of `g` (ties to even), or, when
//!   `|x + N| ≥ 2^52 · g` and the f64 spacing itself is ≥ `g`, to the nearest f64. The f32
//!   paths then cast the f64 result to f32.
//!
//! `F` is a fixed function of the exact sum, so the ideal mechanism `F(x + Ñ)` with a true
//! Gaussian/Laplace `Ñ` is post-processing of the textbook mechanism and has exactly its
//! guarantee (no extra sensitivity: unlike snapping schemes, `x` itself is never rounded).
//! The real mechanism differs from the ideal one only through the law of the computed `N`,
//! and only through the probabilities it gives to intervals of length ≥ `g`. The samplers
//! make `N` fine-grained everywhere: uniforms keep 53 significant bits at every scale
//! (see `source.rs`), so in units of `s` the computed noise has resolution about 2^-48
//! or finer (Gaussian: radius × a (π/4)·2^-53 angle grid, radius ≤ 37) or 2^-52
//! (Laplace), i.e. at least 2^17 possible noise values per grid cell, with no gaps up to
//! the truncation points (37 σ for the Gaussian, 694 b for the Laplace; beyond them the
//! ideal mass is below 10^-290). The low-bit channel of Mironov's attack is therefore
//! removed: every grid cell reachable from `x` is reachable from any neighbour, with
//! nearly the same probability.
//!
//! **Residual risk (stated honestly).** This is a heuristic, not a proof. The cell
//! probabilities of the computed noise approximate the ideal ones to a relative error that
//! we estimate at 2^-17 or better in the bulk of the distribution (discreteness of `N`, plus
//! ≤ 1 ulp errors of `ln`, `sqrt`, `sin`, `cos`), but there is no formal bound, so the
//! guarantee of a release is the ideal one up to an unquantified multiplicative error per
//! coordinate. No attack is known against this construction, but unlike OpenDP's samplers
//! (used for small releases) it has no proof. The rounding itself costs at most `g/2 ≤
//! s · 2^-31` of accuracy per value. Timing: the work per value does not depend on `x`
//! except for a branch on `|x + N|` (a function of the output, which is public anyway).

/// log2 of the ratio between the noise scale and the grid spacing (see the module docs).
pub const GRID_BITS: i32 = 30;

/// 2^51: below it the "magic number" rounding is exact.
const TWO_51: f64 = 2_251_799_813_685_248.0;
/// 1.5 · 2^52: adding and subtracting it rounds to an integer, ties to even.
const MAGIC: f64 = 6_755_399_441_055_744.0;

/// The spacing of the grid the fast samplers round to for noise scale `scale`: the largest
/// power of two ≤ `scale · 2^-30`. `scale` must lie in [2^-960, 2^960].
pub fn grid_spacing(scale: f64) -> Result<f64, crate::privacy::PrivacyError> {
    super::check_scale("noise scale", scale)?;
    Ok(Grid::for_scale(scale).spacing())
}

/// The rounding grid for one noise scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Grid {
    spacing: f64,
    inverse: f64,
    half: f64,
    /// 2^52 · spacing: at and beyond it, f64 spacing ≥ grid spacing.
    limit: f64,
}

impl Grid {
    /// The grid for noise scale `scale`, which the caller has checked lies in the range of
    /// [`super::check_scale`] (so every quantity here is a normal f64).
    pub(crate) fn for_scale(scale: f64) -> Self {
        let target = scale * f64::from_bits(((1023 - GRID_BITS) as u64) << 52);
        // Largest power of two ≤ target: clear the significand bits.
        let spacing = f64::from_bits(target.to_bits() & !((1_u64 << 52) - 1));
        Grid {
            spacing,
            inverse: 1.0 / spacing,
            half: 0.5 * spacing,
            limit: spacing * 4_503_599_627_370_496.0,
        }
    }

    /// The grid spacing `g`.
    pub(crate) fn spacing(&self) -> f64 {
        self.spacing
    }

    /// `F(x + n)`: the exact sum rounded to the grid (see the module docs).
    #[inline]
    pub(crate) fn round_sum(&self, x: f64, n: f64) -> f64 {
        let s = x + n;
        if s.is_nan() || s.abs() >= self.limit {
            // f64 spacing at s is ≥ g: s = fl(x + n) is already the coarser rounding of the
            // exact sum (and inf/NaN pass through: the caller rejects non-finite inputs).
            return s;
        }
        // r = nearest multiple of g to s, ties to even; every step is exact.
        let r = nearest_integer(s * self.inverse) * self.spacing;
        // d is exact: s and r are multiples of ulp(s) ≤ g/2, and |d| ≤ g/2. The exact sum is
        // s + e with |e| ≤ ulp(s)/2, so unless s sits exactly on a midpoint (|d| = g/2),
        // |d + e| < g/2 and r is also the nearest grid point to the exact sum.
        let d = s - r;
        if d.abs() != self.half {
            return r;
        }
        // On a midpoint the rounding error of `x + n` decides: recover it with Knuth's
        // TwoSum (s + e == x + n exactly).
        let b = s - x;
        let e = (x - (s - b)) + (n - b);
        if d == self.half && e > 0.0 {
            r + self.spacing
        } else if d == -self.half && e < 0.0 {
            r - self.spacing
        } else {
            r
        }
    }
}

/// Nearest integer, ties to even, for |y| < 2^52.
#[inline]
fn nearest_integer(y: f64) -> f64 {
    if y.abs() < TWO_51 {
        (y + MAGIC) - MAGIC
    } else {
        y.round_ties_even()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::noise::source::{NoiseSource, SimulationRng};

    /// Reference: the exact sum in integer units of 2^-100, rounded to the grid, ties to even.
    fn reference(x: f64, n: f64, grid_log2: i32) -> f64 {
        const UNIT: i32 = -100;
        let to_units = |v: f64| -> i128 {
            let scaled = v * 2f64.powi(-UNIT);
            assert_eq!(scaled, scaled.trunc(), "{v} is not a multiple of 2^{UNIT}");
            scaled as i128
        };
        let sum = to_units(x) + to_units(n);
        let step = 1_i128 << (grid_log2 - UNIT);
        let q = sum.div_euclid(step);
        let rem = sum.rem_euclid(step);
        let k = match (2 * rem).cmp(&step) {
            std::cmp::Ordering::Less => q,
            std::cmp::Ordering::Greater => q + 1,
            std::cmp::Ordering::Equal => q + (q & 1),
        };
        (k as f64) * 2f64.powi(grid_log2)
    }

    #[test]
    fn grid_is_a_power_of_two_just_below_the_scale() {
        for scale in [1.0, 0.3, 3.0, 1e-6, 1e6, 7.5] {
            let g = Grid::for_scale(scale).spacing();
            assert_eq!(g, 2f64.powi(g.log2() as i32));
            assert!(g <= scale * 2f64.powi(-GRID_BITS));
            assert!(2.0 * g > scale * 2f64.powi(-GRID_BITS));
        }
        assert_eq!(Grid::for_scale(1.0).spacing(), 2f64.powi(-30));
    }

    #[test]
    fn round_sum_matches_exact_reference_including_midpoints() {
        // Inputs are multiples of 2^-100 below 2^20 in magnitude: the reference is exact.
        let grid = Grid::for_scale(1.0); // g = 2^-30
        let mut rng = SimulationRng::seeded_insecure(11);
        let mut checked_midpoints = 0;
        for i in 0..200_000 {
            let bits = rng.next_u64();
            let exp_x = (bits % 50) as i32 - 30; // 2^-30 .. 2^19
            let exp_n = ((bits >> 8) % 50) as i32 - 40;
            let mant_x = (rng.next_u64() >> 11) as f64 * 2f64.powi(-53);
            let mant_n = (rng.next_u64() >> 11) as f64 * 2f64.powi(-53);
            let mut x = (mant_x * 2f64.powi(exp_x)) * if bits & 1 << 20 != 0 { -1.0 } else { 1.0 };
            let n = (mant_n * 2f64.powi(exp_n)) * if bits & 1 << 21 != 0 { -1.0 } else { 1.0 };
            if i % 4 == 0 {
                // Force x + n near a grid midpoint, where the TwoSum correction decides.
                let mid = ((x + n) * 2f64.powi(30)).floor() * 2f64.powi(-30) + 2f64.powi(-31);
                x = mid - n;
            }
            if ((x + n) * 2f64.powi(30)).fract().abs() == 0.5 {
                checked_midpoints += 1;
            }
            assert_eq!(
                grid.round_sum(x, n),
                reference(x, n, -30),
                "x = {x:e}, n = {n:e}"
            );
        }
        assert!(checked_midpoints > 1000);
    }

    #[test]
    fn low_order_bits_of_the_input_do_not_survive() {
        // Two inputs one ulp apart: every output is a grid multiple, whatever the low bits.
        let grid = Grid::for_scale(1.0);
        let x = 0.1_f64;
        for (i, x) in [x, x.next_up(), x.next_down()].into_iter().enumerate() {
            let mut rng = SimulationRng::seeded_insecure(i as u64);
            for _ in 0..1000 {
                let n = (rng.next_u64() >> 11) as f64 * 2f64.powi(-53) - 0.5;
                let out = grid.round_sum(x, n);
                assert_eq!((out * grid.inverse).fract(), 0.0);
            }
        }
    }

    #[test]
    fn huge_values_keep_the_floating_point_sum() {
        let grid = Grid::for_scale(1.0);
        let x = 1e10; // ≥ 2^52 · 2^-30 = 2^22
        assert_eq!(grid.round_sum(x, 0.123), x + 0.123);
        assert!(grid.round_sum(f64::MAX, f64::MAX).is_infinite());
        // Between 2^21 and 2^22 (slow rounding branch) results are still grid multiples.
        let y = grid.round_sum(3_000_000.123_456_789, 0.5e-9);
        assert_eq!((y * grid.inverse).fract(), 0.0);
        assert_eq!(y, reference(3_000_000.123_456_789, 0.5e-9, -30));
    }
}

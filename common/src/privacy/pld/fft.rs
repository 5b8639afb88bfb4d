//! FFT convolutions of probability vectors: one-off convolution of two PMFs and T-fold
//! self-convolution by raising the transform to the T-th power (Koskela, Jälkö & Honkela
//! 2020, arXiv 1906.03049), with the output window chosen by a Chernoff bound as in
//! dp-accounting's `common.self_convolve`.
//!
//! Round-off: an FFT leaves absolute errors around 1e-16 × the largest value, so entries
//! that should be 0 come back as ±1e-18-ish. The callers clip negatives (see
//! [`clip_negatives`]); the errors are far below the 1e-15 tail truncation.

use std::sync::{Arc, Mutex, OnceLock};

use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use super::pmf::PldError;

/// Longest FFT (and dense PMF) the accountant will allocate: 2²⁵ complex values = 512 MiB.
pub(crate) const MAX_LEN: usize = 1 << 25;

/// Below this many multiply-adds a direct convolution beats planning an FFT.
const DIRECT_CONVOLUTION_WORK: usize = 1 << 16;

/// A forward FFT of length n. Plans (twiddle tables) are cached process-wide: a history
/// queried again, or calibrated over σ, reuses them.
fn plan(n: usize) -> Arc<dyn Fft<f64>> {
    static PLANNER: OnceLock<Mutex<FftPlanner<f64>>> = OnceLock::new();
    let planner = PLANNER.get_or_init(|| Mutex::new(FftPlanner::new()));
    // A panic while planning cannot leave the planner's cache half-written in a way that
    // matters (it only caches finished plans), so a poisoned lock is still usable.
    let mut guard = planner
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    guard.plan_fft_forward(n)
}

/// Smallest 7-smooth integer ≥ n (rustfft has fast kernels for 2, 3, 5 and 7; the role of
/// SciPy's `next_fast_len`).
pub(crate) fn next_fast_len(n: usize) -> usize {
    if n <= 1 {
        return 1;
    }
    let mut best = n.next_power_of_two();
    let mut p7 = 1usize;
    while p7 < best {
        let mut p75 = p7;
        while p75 < best {
            let mut p753 = p75;
            while p753 < best {
                // Smallest power of two lifting p753 to at least n.
                let mut candidate = p753;
                while candidate < n {
                    candidate *= 2;
                }
                best = best.min(candidate);
                p753 *= 3;
            }
            p75 *= 5;
        }
        p7 *= 7;
    }
    best
}

/// Checks a requested length against [`MAX_LEN`].
pub(crate) fn check_len(len: u128) -> Result<usize, PldError> {
    if len > MAX_LEN as u128 {
        Err(PldError::TooLarge { len })
    } else {
        Ok(len as usize)
    }
}

/// Full linear convolution of `a` and `b` (length |a| + |b| − 1), like SciPy's
/// `signal.fftconvolve`.
pub(crate) fn convolve(a: &[f64], b: &[f64]) -> Result<Vec<f64>, PldError> {
    if a.is_empty() || b.is_empty() {
        return Ok(Vec::new());
    }
    let out_len = check_len(a.len() as u128 + b.len() as u128 - 1)?;
    if a.len().min(b.len()) <= 64 || a.len().saturating_mul(b.len()) <= DIRECT_CONVOLUTION_WORK {
        let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
        let mut out = vec![0.0; out_len];
        for (i, &s) in short.iter().enumerate() {
            if s == 0.0 {
                continue;
            }
            for (o, &l) in out[i..i + long.len()].iter_mut().zip(long) {
                *o += s * l;
            }
        }
        return Ok(out);
    }
    let half = real_half_len(out_len)?;
    let mut spectrum = rfft(a, half);
    for (x, y) in spectrum.iter_mut().zip(rfft(b, half)) {
        *x *= y;
    }
    let mut out = irfft(&spectrum, half);
    out.truncate(out_len);
    Ok(out)
}

/// The index window [lower, upper] outside which the T-fold self-convolution of `input`
/// has at most `tail_mass_truncation` mass, by the Chernoff bound at 40 orders (port of
/// dp-accounting's `compute_self_convolve_bounds`; supplementary material eq. (5)).
pub(crate) fn self_convolve_bounds(
    input: &[f64],
    num_times: u64,
    tail_mass_truncation: f64,
) -> (i64, i64) {
    let last = input.len().saturating_sub(1) as i64;
    let mut upper = last.saturating_mul(i64::try_from(num_times).unwrap_or(i64::MAX));
    let mut lower = 0i64;
    if tail_mass_truncation == 0.0 {
        return (lower, upper);
    }
    let len = input.len() as f64;
    let log_two_over_tail = (2.0 / tail_mass_truncation).ln();
    let t = num_times as f64;
    for k in (-20i32..0).chain(1..21) {
        let order = f64::from(k) / len;
        let bound = (t * log_mgf(input, order) + log_two_over_tail) / order;
        if !bound.is_finite() {
            continue;
        }
        // `as` saturates at the i64 range.
        if order > 0.0 {
            upper = upper.min(bound.ceil() as i64);
        } else {
            lower = lower.max(bound.floor() as i64);
        }
    }
    (lower, upper.max(lower))
}

/// ln Σᵢ input[i]·e^{order·i} (SciPy's `logsumexp(i * order, b=input)`), with |order·i| ≤
/// 20 so the plain sum cannot overflow. The exponentials are stepped by multiplication and
/// re-anchored every 256 entries to keep the round-off at a few ulp.
fn log_mgf(input: &[f64], order: f64) -> f64 {
    let step = order.exp();
    let mut sum = 0.0;
    for (block, chunk) in input.chunks(256).enumerate() {
        let mut w = (order * (block * 256) as f64).exp();
        for &p in chunk {
            sum += p * w;
            w *= step;
        }
    }
    sum.ln()
}

/// The T-fold self-convolution of `input` restricted to the Chernoff window: returns
/// (window start index, values). Port of dp-accounting's `common.self_convolve`: the
/// transform (of length ≥ both the window and the input) is raised to the T-th power and
/// inverted; mass outside the window wraps around onto it (it only adds mass, and the
/// caller also books `tail_mass_truncation` at +∞).
pub(crate) fn self_convolve(
    input: &[f64],
    num_times: u64,
    tail_mass_truncation: f64,
) -> Result<(i64, Vec<f64>), PldError> {
    let (lower, upper) = self_convolve_bounds(input, num_times, tail_mass_truncation);
    let out_len = check_len((upper - lower) as u128 + 1)?;
    let half = real_half_len(out_len.max(input.len()))?;
    let mut spectrum = rfft(input, half);
    for x in spectrum.iter_mut() {
        *x = complex_pow(*x, num_times);
    }
    let mut out = irfft(&spectrum, half);
    // Output index j is convolution index lower + j, taken modulo the length
    // (dp-accounting's `np.roll(out, -lower)[:out_len]`).
    let n = out.len() as i64;
    out.rotate_left(lower.rem_euclid(n) as usize);
    out.truncate(out_len);
    Ok((lower, out))
}

/// zᵗ by binary exponentiation, for |z| ≤ 1 (a transform of probabilities). When
/// |z|ᵗ < e⁻⁷⁰⁰ the power is below every round-off and is returned as 0; otherwise every
/// partial product is ≥ |z|ᵗ, so none is subnormal (which would be ~100× slower).
fn complex_pow(z: Complex<f64>, mut t: u64) -> Complex<f64> {
    if 0.5 * (t as f64) * z.norm_sqr().ln() < -700.0 {
        return Complex::new(0.0, 0.0);
    }
    let mut result = Complex::new(1.0, 0.0);
    let mut base = z;
    while t > 0 {
        if t & 1 == 1 {
            result *= base;
        }
        t >>= 1;
        if t > 0 {
            base = base * base;
        }
    }
    result
}

/// Half of the smallest even fast length ≥ `len`: a real transform of length 2m runs as
/// a complex transform of length m.
fn real_half_len(len: usize) -> Result<usize, PldError> {
    let half = next_fast_len(len.div_ceil(2).max(1));
    check_len(2 * half as u128)?;
    Ok(half)
}

/// e^{−πik/m} for k = 0..=m: the twiddles joining the two half-length transforms. Stepped
/// by multiplication and re-anchored with an exact sin/cos every 64 entries.
fn twiddles(m: usize) -> Vec<Complex<f64>> {
    let theta = -std::f64::consts::PI / m as f64;
    let step = Complex::from_polar(1.0, theta);
    let mut out = Vec::with_capacity(m + 1);
    let mut w = Complex::new(1.0, 0.0);
    for k in 0..=m {
        if k.is_multiple_of(64) {
            w = Complex::from_polar(1.0, theta * k as f64);
        }
        out.push(w);
        w *= step;
    }
    out
}

/// Bins 0..=m of the length-2m DFT of the real signal `x` (zero-padded), from one complex
/// transform of length m on z[j] = x[2j] + i·x[2j+1].
fn rfft(x: &[f64], m: usize) -> Vec<Complex<f64>> {
    let mut z = vec![Complex::new(0.0, 0.0); m];
    for (slot, pair) in z.iter_mut().zip(x.chunks(2)) {
        *slot = Complex::new(pair[0], pair.get(1).copied().unwrap_or(0.0));
    }
    plan(m).process(&mut z);
    let w = twiddles(m);
    let minus_half_i = Complex::new(0.0, -0.5);
    (0..=m)
        .map(|k| {
            let zk = z[k % m];
            let zc = z[(m - k) % m].conj();
            // The spectra of the even and the odd samples, joined by a butterfly.
            let even = (zk + zc) * 0.5;
            let odd = (zk - zc) * minus_half_i;
            even + w[k] * odd
        })
        .collect()
}

/// The real signal of length 2m whose DFT has bins 0..=m `spectrum` (Hermitian symmetry
/// gives the rest): the inverse of [`rfft`] by one complex transform of length m, run
/// forward on the conjugate (ifft(Y) = conj(fft(conj(Y)))/m).
fn irfft(spectrum: &[Complex<f64>], m: usize) -> Vec<f64> {
    let w = twiddles(m);
    let i = Complex::new(0.0, 1.0);
    let mut z: Vec<Complex<f64>> = (0..m)
        .map(|k| {
            let xk = spectrum[k];
            let xc = spectrum[m - k].conj();
            let even = (xk + xc) * 0.5;
            let odd = (xk - xc) * 0.5 * w[k].conj();
            // The spectrum of x[2j] + i·x[2j+1], conjugated for the forward transform.
            (even + i * odd).conj()
        })
        .collect();
    plan(m).process(&mut z);
    let scale = 1.0 / m as f64;
    let mut out = Vec::with_capacity(2 * m);
    for c in z {
        out.push(c.re * scale);
        out.push(-c.im * scale);
    }
    out
}

/// Replaces negative entries (FFT round-off around true zeros) by 0 and returns the mass
/// removed. Raising an entry never lowers δ(ε) = Σ_{loss > ε} (1 − e^{ε − loss})·p, so
/// clipping is on the safe side; the caller books the removed mass at +∞ as an allowance
/// for the round-off on the positive entries.
pub(crate) fn clip_negatives(values: &mut [f64]) -> f64 {
    let mut removed = 0.0;
    for v in values.iter_mut() {
        if *v < 0.0 {
            removed -= *v;
            *v = 0.0;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(a: &[f64], b: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; a.len() + b.len() - 1];
        for (i, x) in a.iter().enumerate() {
            for (j, y) in b.iter().enumerate() {
                out[i + j] += x * y;
            }
        }
        out
    }

    #[test]
    fn fast_lengths_are_smooth_and_minimal() {
        assert_eq!(next_fast_len(1), 1);
        assert_eq!(next_fast_len(11), 12);
        assert_eq!(next_fast_len(97), 98);
        assert_eq!(next_fast_len(1025), 1029);
        for n in 1..2000 {
            let m = next_fast_len(n);
            assert!(m >= n);
            let mut r = m;
            for p in [2, 3, 5, 7] {
                while r.is_multiple_of(p) {
                    r /= p;
                }
            }
            assert_eq!(r, 1, "{m}");
        }
    }

    #[test]
    fn fft_convolution_matches_direct() {
        let a: Vec<f64> = (0..300).map(|i| ((i * 7) % 13) as f64 / 100.0).collect();
        let b: Vec<f64> = (0..500).map(|i| ((i * 3) % 11) as f64 / 50.0).collect();
        let fast = convolve(&a, &b).unwrap();
        let slow = direct(&a, &b);
        assert_eq!(fast.len(), slow.len());
        for (x, y) in fast.iter().zip(&slow) {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
    }

    #[test]
    fn self_convolution_matches_repeated_direct() {
        let p = [0.2, 0.5, 0.3];
        let mut expected = vec![1.0];
        for _ in 0..6 {
            expected = direct(&expected, &p);
        }
        let (lower, got) = self_convolve(&p, 6, 0.0).unwrap();
        assert_eq!(lower, 0);
        assert_eq!(got.len(), expected.len());
        for (x, y) in got.iter().zip(&expected) {
            assert!((x - y).abs() < 1e-14);
        }
    }

    #[test]
    fn chernoff_window_keeps_all_but_the_tail() {
        // Binomial(1000, 1/2) on {0, 1}: mass outside the window must be ≤ 1e-15.
        let p = [0.5, 0.5];
        let (lower, upper) = self_convolve_bounds(&p, 1000, 1e-15);
        assert!(lower > 0 && upper < 1000 && lower < 500 && upper > 500);
        let (_, values) = self_convolve(&p, 1000, 1e-15).unwrap();
        let kept: f64 = values.iter().sum();
        assert!(kept > 1.0 - 1e-14 && kept < 1.0 + 1e-12, "{kept}");
    }

    #[test]
    fn powers_match_repeated_multiplication() {
        let z = Complex::new(0.6, -0.7);
        let mut expected = Complex::new(1.0, 0.0);
        for _ in 0..37 {
            expected *= z;
        }
        assert!((complex_pow(z, 37) - expected).norm() < 1e-14);
        assert_eq!(complex_pow(z, 0), Complex::new(1.0, 0.0));
    }

    #[test]
    fn real_transform_round_trips_and_matches_the_dft() {
        let x: Vec<f64> = (0..11).map(|i| ((i * 5) % 7) as f64 - 2.5).collect();
        for m in [1usize, 6, 7, 8] {
            if 2 * m < x.len() {
                continue;
            }
            let spectrum = rfft(&x, m);
            let n = 2 * m;
            for (k, got) in spectrum.iter().enumerate() {
                let mut want = Complex::new(0.0, 0.0);
                for (j, &v) in x.iter().enumerate() {
                    let angle = -2.0 * std::f64::consts::PI * (k * j) as f64 / n as f64;
                    want += Complex::from_polar(v, angle);
                }
                assert!((got - want).norm() < 1e-12, "m={m} k={k}: {got} vs {want}");
            }
            let back = irfft(&spectrum, m);
            for (j, &b) in back.iter().enumerate() {
                let want = x.get(j).copied().unwrap_or(0.0);
                assert!((b - want).abs() < 1e-12, "m={m} j={j}");
            }
        }
    }
}

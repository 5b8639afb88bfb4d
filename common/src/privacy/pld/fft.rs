//! FFT convolutions of probability vectors: one-off convolution of two PMFs and T-fold
//! self-convolution by raising the transform to the T-th power (Koskela, Jälkö & Honkela
//! 2020, arXiv 1906.03049), with the output window chosen by a Chernoff bound as in
//! dp-accounting's `common.self_convolve`.
//!
//! Round-off: an FFT leaves absolute errors around 1e-16 × the largest value, so entries
//! that should be 0 come back as ±1e-18-ish. The callers clip negatives (see
//! [`clip_negatives`]); the errors are far below the 1e-15 tail truncation.

use std::cell::RefCell;
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
#[cfg(test)]
pub(crate) fn next_fast_len(n: usize) -> usize {
    smooth_candidates(n).map(|(m, _)| m).min().unwrap_or(1)
}

/// The 7-smooth length ≥ n with the lowest expected transform time: rustfft's radix-5 and
/// radix-7 passes cost about 4 % more per element than its radix-2/3/4/8 ones (measured on
/// lengths 10⁵–1.5·10⁵), so e.g. 139 968 = 2⁶·3⁷ beats 140 625 = 3²·5⁶.
pub(crate) fn fast_len(n: usize) -> usize {
    let cost = |(m, slow): (usize, u32)| m as f64 * (1.0 + 0.04 * f64::from(slow));
    smooth_candidates(n)
        .min_by(|&a, &b| cost(a).total_cmp(&cost(b)))
        .map_or(1, |(m, _)| m)
}

/// For each odd 7-smooth part, the smallest multiple of it by a power of two that is ≥ n
/// (and ≤ the next power of two), with the number of factors 5 and 7 it contains.
fn smooth_candidates(n: usize) -> impl Iterator<Item = (usize, u32)> {
    let n = n.max(1);
    let limit = n.next_power_of_two();
    let mut out = Vec::new();
    let mut p7 = 1usize;
    let mut e7 = 0;
    while p7 <= limit {
        let (mut p75, mut e5) = (p7, 0);
        while p75 <= limit {
            let mut p753 = p75;
            while p753 <= limit {
                let mut candidate = p753;
                while candidate < n {
                    candidate *= 2;
                }
                if candidate <= limit {
                    out.push((candidate, e5 + e7));
                }
                p753 *= 3;
            }
            p75 *= 5;
            e5 += 1;
        }
        p7 *= 7;
        e7 += 1;
    }
    out.into_iter()
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

/// How many Chernoff orders one pass over the input evaluates (independent multiply
/// chains, which the compiler vectorises and the CPU overlaps).
const ORDERS_PER_PASS: usize = 8;

/// Passes of the search for the best Chernoff orders (each narrows the bracket to 2/5).
const ORDER_SEARCH_PASSES: usize = 3;

/// Largest |order·index| used: e^{±600} is far from overflow and from subnormals.
const MAX_EXPONENT: f64 = 600.0;

/// The index window [lower, upper] outside which the T-fold self-convolution of `input`
/// has at most `tail_mass_truncation` mass (at most half of it on each side).
///
/// The Chernoff bound of dp-accounting's `compute_self_convolve_bounds` (supplementary
/// material of arXiv 1906.03049, eq. (5)): for every order λ > 0, the mass of the T-fold
/// sum above (T·K(λ) + ln(2/τ))/λ is at most τ/2, where K(λ) = ln Σᵢ input[i]·e^{λi}
/// (and symmetrically below for λ < 0). dp-accounting takes the best of the 40 orders
/// λ = ±1/n, …, ±20/n (n = input length); here the order is searched instead: a Gaussian
/// guess g = √(2·ln(2/τ)/(T·Var)), then three passes of eight orders (four per side)
/// narrowing a bracket in log λ, from [g/16, 16g], around the best one. Every order gives
/// a valid bound, so the search only decides how tight the window is (within ~1 % of the
/// best order's, typically 5–15 % narrower than dp-accounting's, whose orders stop at
/// 20/n); a margin covers the round-off of K.
pub(crate) fn self_convolve_bounds(
    input: &[f64],
    num_times: u64,
    tail_mass_truncation: f64,
) -> (i64, i64) {
    let last = input.len().saturating_sub(1) as i64;
    let full = (
        0,
        last.saturating_mul(i64::try_from(num_times).unwrap_or(i64::MAX)),
    );
    if tail_mass_truncation == 0.0 || last == 0 {
        return full;
    }
    let Some(variance) = variance(input) else {
        return full;
    };
    let len = input.len() as f64;
    let t = num_times as f64;
    let log_two_over_tail = (2.0 / tail_mass_truncation).ln();
    let max_order = MAX_EXPONENT / len;
    let guess = (2.0 * log_two_over_tail / (t * variance)).sqrt();
    let hi = (guess * 16.0).min(max_order);
    let lo = (guess / 16.0).min(hi / 256.0);
    // Brackets in ln λ for the upper (λ > 0) and the lower (λ < 0) side.
    let mut brackets = [(lo.ln(), hi.ln()); 2];
    let (mut upper, mut lower) = (f64::INFINITY, f64::NEG_INFINITY);
    const HALF: usize = ORDERS_PER_PASS / 2;
    for pass in 0..ORDER_SEARCH_PASSES {
        // First pass: both ends and two interior points; then four interior points.
        let (first, denominator) = if pass == 0 {
            (0, HALF - 1)
        } else {
            (1, HALF + 1)
        };
        let mut log_orders = [[0.0; HALF]; 2];
        let mut orders = [0.0; ORDERS_PER_PASS];
        for side in 0..2 {
            let (a, b) = brackets[side];
            for j in 0..HALF {
                let x = a + (b - a) * (first + j) as f64 / denominator as f64;
                log_orders[side][j] = x;
                orders[side * HALF + j] = if side == 0 { x.exp() } else { -x.exp() };
            }
        }
        let mgfs = log_mgfs(input, &orders);
        for side in 0..2 {
            let mut best = (f64::INFINITY, usize::MAX);
            for j in 0..HALF {
                let order = orders[side * HALF + j];
                let k = mgfs[side * HALF + j];
                // T·K is computed to ~1e-13 relative; 1e-12·(T + |T·K|) more is safe.
                let slack = 1e-12 * (t + (t * k).abs());
                let bound = (t * k + log_two_over_tail + slack) / order;
                if !bound.is_finite() {
                    continue;
                }
                // Upper side: the smallest bound wins; lower side: the largest.
                let score = if side == 0 { bound } else { -bound };
                if score < best.0 {
                    best = (score, j);
                }
                if side == 0 {
                    upper = upper.min(bound);
                } else {
                    lower = lower.max(bound);
                }
            }
            if best.1 == usize::MAX {
                continue;
            }
            // The bound is quasi-convex in λ: the optimum lies next to the best point.
            let (a, b) = brackets[side];
            let step = (b - a) / denominator as f64;
            let x = log_orders[side][best.1];
            brackets[side] = ((x - step).max(a), (x + step).min(b));
        }
    }
    // `as` saturates at the i64 range; one index of slack on each side.
    let upper = full.1.min((upper.ceil() as i64).saturating_add(1));
    let lower = full.0.max((lower.floor() as i64).saturating_sub(1));
    (lower, upper.max(lower))
}

/// The variance of the index under `input` (normalised), or `None` without mass.
fn variance(input: &[f64]) -> Option<f64> {
    let mass: f64 = input.iter().sum();
    if !(mass > 0.0 && mass.is_finite()) {
        return None;
    }
    let mean = input
        .iter()
        .enumerate()
        .map(|(i, &p)| p * i as f64)
        .sum::<f64>()
        / mass;
    let spread = input
        .iter()
        .enumerate()
        .map(|(i, &p)| p * (i as f64 - mean).powi(2))
        .sum::<f64>()
        / mass;
    // A point mass has no spread; any order is then valid, the largest is tightest.
    Some(spread.max(f64::MIN_POSITIVE))
}

/// ln Σᵢ input[i]·e^{order·i} for several orders in one pass (SciPy's
/// `logsumexp(i * order, b=input)`), with |order·i| ≤ 600 so the plain sums cannot
/// overflow. The exponentials are stepped by multiplication and re-anchored every 256
/// entries to keep the round-off at a few hundred ulp (≤ 1e-13 relative).
fn log_mgfs(input: &[f64], orders: &[f64; ORDERS_PER_PASS]) -> [f64; ORDERS_PER_PASS] {
    const BLOCK: usize = 256;
    let steps = orders.map(f64::exp);
    let mut sums = [0.0; ORDERS_PER_PASS];
    for (block, chunk) in input.chunks(BLOCK).enumerate() {
        let start = (block * BLOCK) as f64;
        let mut w = orders.map(|order| (order * start).exp());
        let mut acc = [0.0; ORDERS_PER_PASS];
        for &p in chunk {
            for j in 0..ORDERS_PER_PASS {
                acc[j] += p * w[j];
                w[j] *= steps[j];
            }
        }
        for j in 0..ORDERS_PER_PASS {
            sums[j] += acc[j];
        }
    }
    sums.map(f64::ln)
}

/// The T-fold self-convolution of `input` restricted to the Chernoff window: returns
/// (window start index, values). Port of dp-accounting's `common.self_convolve`: the
/// transform (of length ≥ both the window and the input) is raised to the T-th power and
/// inverted; mass outside the window wraps around onto it (it only adds mass, and the
/// caller also books `tail_mass_truncation` at +∞).
///
/// One buffer serves the whole computation: the real input of length 2m is packed into m
/// complex values and transformed, each pair of bins (k, m − k) is untangled into the
/// real spectrum, raised to the T-th power and re-tangled for the inverse in one pass,
/// and the second transform's output is read straight into the rotated window.
pub(crate) fn self_convolve(
    input: &[f64],
    num_times: u64,
    tail_mass_truncation: f64,
) -> Result<(i64, Vec<f64>), PldError> {
    let (lower, upper) = self_convolve_bounds(input, num_times, tail_mass_truncation);
    let out_len = check_len((upper - lower) as u128 + 1)?;
    let m = real_half_len(out_len.max(input.len()))?;
    let fft = plan(m);
    let out = with_buffers(|z, scratch| {
        pack_real(input, m, z);
        let scratch_len = fft.get_inplace_scratch_len();
        if scratch.len() < scratch_len {
            scratch.resize(scratch_len, Complex::new(0.0, 0.0));
        }
        let scratch = &mut scratch[..scratch_len];
        let z = &mut z[..m];
        fft.process_with_scratch(z, scratch);
        raise_packed_spectrum(z, num_times);
        fft.process_with_scratch(z, scratch);
        // Output index j is convolution index lower + j, taken modulo the length
        // (dp-accounting's `np.roll(out, -lower)[:out_len]`); the inverse transform of
        // the conjugated spectrum is conj(z)/m: sample 2i is re zᵢ/m, 2i + 1 is −im zᵢ/m.
        let n = 2 * m;
        let start = lower.rem_euclid(n as i64) as usize;
        let scale = 1.0 / m as f64;
        let mut out = Vec::with_capacity(out_len);
        let first = (n - start).min(out_len);
        push_samples(z, start, start + first, scale, &mut out);
        push_samples(z, 0, out_len - first, scale, &mut out);
        out
    });
    Ok((lower, out))
}

/// Appends samples `from..to` of the real signal whose packed inverse transform is
/// m·conj(z) (sample 2i is re zᵢ, 2i + 1 is −im zᵢ), times `scale`.
fn push_samples(z: &[Complex<f64>], from: usize, to: usize, scale: f64, out: &mut Vec<f64>) {
    if from >= to {
        return;
    }
    let mut i = from;
    if i % 2 == 1 {
        out.push(-z[i / 2].im * scale);
        i += 1;
    }
    // Through a small stack buffer, so the conversion vectorises and the vector grows in
    // bulk copies.
    let mut buffer = [0.0; 512];
    for chunk in z[i / 2..to / 2].chunks(buffer.len() / 2) {
        for (pair, c) in buffer.chunks_exact_mut(2).zip(chunk) {
            pair[0] = c.re * scale;
            pair[1] = -c.im * scale;
        }
        out.extend_from_slice(&buffer[..2 * chunk.len()]);
    }
    if to % 2 == 1 && to > i {
        out.push(z[to / 2].re * scale);
    }
}

/// Transform buffers larger than this many complex values (16 MiB) are not kept between
/// calls.
const MAX_KEPT_BUFFER: usize = 1 << 20;

/// A transform buffer and rustfft's scratch.
type Buffers = (Vec<Complex<f64>>, Vec<Complex<f64>>);

thread_local! {
    /// The transform buffers, kept per thread: fresh multi-megabyte allocations cost more
    /// in page faults than the transforms themselves.
    static BUFFERS: RefCell<Buffers> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Runs `f` on this thread's (buffer, scratch) pair, or on fresh ones if they are in use.
fn with_buffers<R>(f: impl FnOnce(&mut Vec<Complex<f64>>, &mut Vec<Complex<f64>>) -> R) -> R {
    BUFFERS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffers) => {
            let (z, scratch) = &mut *buffers;
            let result = f(z, scratch);
            for buffer in [z, scratch] {
                if buffer.capacity() > MAX_KEPT_BUFFER {
                    *buffer = Vec::new();
                }
            }
            result
        }
        Err(_) => f(&mut Vec::new(), &mut Vec::new()),
    })
}

/// Fills `z[..m]` with `x` zero-padded to length 2m as m complex values x[2j] + i·x[2j+1]
/// (growing `z` if needed).
fn pack_real(x: &[f64], m: usize, z: &mut Vec<Complex<f64>>) {
    if z.len() < m {
        z.resize(m, Complex::new(0.0, 0.0));
    }
    let z = &mut z[..m];
    let mut pairs = x.chunks_exact(2);
    let mut filled = 0;
    for (slot, pair) in z.iter_mut().zip(pairs.by_ref()) {
        *slot = Complex::new(pair[0], pair[1]);
        filled += 1;
    }
    if let [last] = pairs.remainder() {
        z[filled] = Complex::new(*last, 0.0);
        filled += 1;
    }
    z[filled..].fill(Complex::new(0.0, 0.0));
}

/// In place: from the length-m transform z of a packed real signal x (length 2m), the
/// values whose forward transform is m·conj(y) for y = the circular T-fold
/// self-convolution of x packed likewise. Per pair of bins (k, m − k): the real spectrum
/// X of x at k and m − k (the butterfly of [`rfft`]), then Xᵀ, then the packing of
/// [`irfft`], conjugated.
fn raise_packed_spectrum(z: &mut [Complex<f64>], num_times: u64) {
    let m = z.len();
    let limit = power_limit(num_times);
    let negligible = |x: Complex<f64>| x.norm_sqr() < limit;
    let zero = Complex::new(0.0, 0.0);
    let i = Complex::new(0.0, 1.0);
    // Bins 0 and m, both real, both held by z[0] (w = 1 at bin 0).
    let a = z[0];
    let x_0 = complex_pow(Complex::new(a.re + a.im, 0.0), num_times, limit);
    let x_m = complex_pow(Complex::new(a.re - a.im, 0.0), num_times, limit);
    z[0] = ((x_0 + x_m.conj()) * 0.5 + i * ((x_0 - x_m.conj()) * 0.5)).conj();
    let theta = -std::f64::consts::PI / m as f64;
    let step = Complex::from_polar(1.0, theta);
    let mut w = Complex::new(1.0, 0.0);
    for k in 1..=m / 2 {
        // w = e^{−πik/m}, stepped and re-anchored with an exact sin/cos every 64 bins.
        w = if k.is_multiple_of(64) {
            Complex::from_polar(1.0, theta * k as f64)
        } else {
            w * step
        };
        let j = m - k;
        let a = z[k];
        let b = z[j].conj();
        let even = (a + b) * 0.5;
        let diff = a - b;
        let odd = Complex::new(0.5 * diff.im, -0.5 * diff.re); // (a − b)·(−i/2)
        let x_k = even + w * odd;
        let x_j = (even - w * odd).conj();
        if negligible(x_k) && negligible(x_j) {
            // Most bins of a many-fold composition: both powers vanish.
            z[k] = zero;
            z[j] = zero;
            continue;
        }
        let x_k = complex_pow(x_k, num_times, limit);
        let x_j = complex_pow(x_j, num_times, limit);
        // The packing of the powered spectrum, as in `irfft`, for bins k and m − k.
        let even = (x_k + x_j.conj()) * 0.5;
        let odd = (x_k - x_j.conj()) * 0.5 * w.conj();
        z[k] = (even + i * odd).conj();
        z[j] = (even.conj() + i * odd.conj()).conj();
    }
}

/// The |z|² below which |z|ᵗ < e⁻⁷⁰⁰: see [`complex_pow`].
fn power_limit(t: u64) -> f64 {
    (-1400.0 / t as f64).exp()
}

/// zᵗ by binary exponentiation, for |z| ≤ 1 (a transform of probabilities). When
/// |z|² < `limit` (|z|ᵗ < e⁻⁷⁰⁰) the power is below every round-off and is returned as 0;
/// otherwise every partial product is ≥ |z|ᵗ, so none is subnormal (which would be ~100×
/// slower).
fn complex_pow(z: Complex<f64>, mut t: u64, limit: f64) -> Complex<f64> {
    if z.norm_sqr() < limit {
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

/// Half of the fastest even length ≥ `len`: a real transform of length 2m runs as a
/// complex transform of length m.
fn real_half_len(len: usize) -> Result<usize, PldError> {
    let half = fast_len(len.div_ceil(2).max(1));
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
        assert!((complex_pow(z, 37, power_limit(37)) - expected).norm() < 1e-14);
        assert_eq!(complex_pow(z, 0, 0.0), Complex::new(1.0, 0.0));
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

//! Statistical checks for the samplers' tests: mean, variance, a tail fraction and a
//! Kolmogorov–Smirnov distance, each with a tolerance derived from the sample size.
//!
//! Every check allows [`Z`] standard errors (5σ: a false alarm is about a one-in-a-million
//! event per check, while a 2 % scale error on 400 k samples is > 10 standard errors).

/// Number of standard errors a statistic may deviate before the check fails.
pub(crate) const Z: f64 = 5.0;

/// The theoretical values a sample is checked against.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expected {
    pub mean: f64,
    pub variance: f64,
    /// E[(X − mean)^4], which sets the standard error of the sample variance.
    pub fourth_central: f64,
    /// The tail check counts |X − mean| > `tail_at`.
    pub tail_at: f64,
    /// P(|X − mean| > `tail_at`).
    pub tail_prob: f64,
}

impl Expected {
    /// N(mean, sigma²), tail beyond 3σ.
    pub fn gaussian(mean: f64, sigma: f64) -> Self {
        Expected {
            mean,
            variance: sigma * sigma,
            fourth_central: 3.0 * sigma.powi(4),
            tail_at: 3.0 * sigma,
            tail_prob: libm::erfc(3.0 / std::f64::consts::SQRT_2),
        }
    }

    /// Laplace(mean, b), tail beyond 3b.
    pub fn laplace(mean: f64, b: f64) -> Self {
        Expected {
            mean,
            variance: 2.0 * b * b,
            fourth_central: 24.0 * b.powi(4),
            tail_at: 3.0 * b,
            tail_prob: (-3.0_f64).exp(),
        }
    }

    /// A distribution on `center + k` (k integer, |k| ≤ `range`) with unnormalised
    /// probabilities `pmf(k)`, symmetric about 0; tail beyond `tail_at`.
    pub fn discrete(center: f64, pmf: impl Fn(i64) -> f64, tail_at: f64, range: i64) -> Self {
        let ks = -range..=range;
        let total: f64 = ks.clone().map(&pmf).sum();
        let moment = |p: i32| ks.clone().map(|k| pmf(k) * (k as f64).powi(p)).sum::<f64>() / total;
        let tail = ks
            .clone()
            .filter(|&k| (k as f64).abs() > tail_at)
            .map(&pmf)
            .sum::<f64>()
            / total;
        Expected {
            mean: center,
            variance: moment(2),
            fourth_central: moment(4),
            tail_at,
            tail_prob: tail,
        }
    }
}

/// Checks the sample's mean, variance and tail fraction; the error lists every failure.
pub(crate) fn check(samples: &[f64], expected: &Expected) -> Result<(), String> {
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let variance = samples
        .iter()
        .map(|x| (x - expected.mean).powi(2))
        .sum::<f64>()
        / n;
    let tail = samples
        .iter()
        .filter(|x| (*x - expected.mean).abs() > expected.tail_at)
        .count() as f64
        / n;

    let mut failures = Vec::new();
    let se_mean = (expected.variance / n).sqrt();
    if (mean - expected.mean).abs() > Z * se_mean {
        failures.push(format!(
            "mean {mean} vs {} (tolerance {})",
            expected.mean,
            Z * se_mean
        ));
    }
    // The variance is taken about the known mean, so its standard error is
    // sqrt((μ4 − σ⁴)/n).
    let se_var = ((expected.fourth_central - expected.variance.powi(2)) / n).sqrt();
    if (variance - expected.variance).abs() > Z * se_var {
        failures.push(format!(
            "variance {variance} vs {} (tolerance {})",
            expected.variance,
            Z * se_var
        ));
    }
    let p = expected.tail_prob;
    let se_tail = (p * (1.0 - p) / n).sqrt();
    if (tail - p).abs() > Z * se_tail {
        failures.push(format!(
            "P(|X - mean| > {}) = {tail} vs {p} (tolerance {})",
            expected.tail_at,
            Z * se_tail
        ));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// Kolmogorov–Smirnov test of continuous samples against `cdf` at significance 10^-6
/// (asymptotic critical value sqrt(ln(2/α)/2)/√n ≈ 2.69/√n).
pub(crate) fn check_ks(samples: &[f64], cdf: impl Fn(f64) -> f64) -> Result<(), String> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    let distance = sorted
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
        })
        .fold(0.0, f64::max);
    let critical = ((2.0 / 1e-6_f64).ln() / 2.0).sqrt() / n.sqrt();
    if distance <= critical {
        Ok(())
    } else {
        Err(format!("KS distance {distance} > critical {critical}"))
    }
}

/// Standard normal CDF.
pub(crate) fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// CDF of Laplace(0, b).
pub(crate) fn laplace_cdf(x: f64, b: f64) -> f64 {
    if x < 0.0 {
        0.5 * (x / b).exp()
    } else {
        1.0 - 0.5 * (-x / b).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discrete_expectation_of_a_fair_coin_on_minus_one_and_one() {
        let e = Expected::discrete(0.0, |k| if k.abs() == 1 { 1.0 } else { 0.0 }, 0.5, 3);
        assert_eq!(e.variance, 1.0);
        assert_eq!(e.fourth_central, 1.0);
        assert_eq!(e.tail_prob, 1.0);
    }

    #[test]
    fn cdfs_are_sane() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-15);
        assert!((normal_cdf(1.96) - 0.975).abs() < 1e-4);
        assert_eq!(laplace_cdf(0.0, 2.0), 0.5);
        assert!((laplace_cdf(-2.0, 2.0) - 0.5 * (-1.0_f64).exp()).abs() < 1e-15);
    }
}

//! Pooling the sites' releases on the coordinator.
//!
//! Pure post-processing of DP releases (no privacy cost): noisy counts, sums and bin counts
//! add, and so do their independent noise variances; the pooled mean is the pooled sum over
//! the pooled count, with a delta-method standard deviation ([`super::release::ratio`]).

use serde::{Deserialize, Serialize};

use super::StatsError;
use super::release::{DpStatsRelease, NoisyValue, ratio};
use crate::spec::Statistic;

/// The pooled statistic across sites.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PooledStats {
    /// The statistic.
    pub statistic: Statistic,
    /// How many site releases were pooled.
    pub sites: usize,
    /// Histogram bin edges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bins: Option<Vec<f64>>,
    /// Pooled count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<NoisyValue>,
    /// Pooled sum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<NoisyValue>,
    /// Pooled sum / pooled count; absent when the pooled count is ≤ 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<NoisyValue>,
    /// Pooled bin counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<Vec<NoisyValue>>,
}

fn add(a: Option<NoisyValue>, b: Option<NoisyValue>) -> Option<NoisyValue> {
    match (a, b) {
        (Some(a), Some(b)) => Some(NoisyValue {
            value: a.value + b.value,
            noise_std: a.noise_std.hypot(b.noise_std),
        }),
        _ => None,
    }
}

/// Pools site releases of the same statistic (same column, bounds and bins).
pub fn pool(releases: &[DpStatsRelease]) -> Result<PooledStats, StatsError> {
    let first = releases
        .first()
        .ok_or(StatsError::Mismatch("no releases to pool".into()))?;
    for (i, r) in releases.iter().enumerate() {
        r.validate()?;
        let differs = |what: &str| {
            StatsError::Mismatch(format!("release {i} has a different {what} than release 0"))
        };
        if r.statistic != first.statistic {
            return Err(differs("statistic"));
        }
        if r.column != first.column {
            return Err(differs("column"));
        }
        if r.lower != first.lower || r.upper != first.upper {
            return Err(differs("clamp bounds"));
        }
        if r.bins != first.bins {
            return Err(differs("bins"));
        }
    }
    let zero = NoisyValue {
        value: 0.0,
        noise_std: 0.0,
    };
    let total = |f: fn(&DpStatsRelease) -> Option<NoisyValue>| {
        releases
            .iter()
            .map(f)
            .try_fold(zero, |acc, v| add(Some(acc), v))
    };
    let count = total(|r| r.count);
    let sum = total(|r| r.sum);
    let histogram = first.histogram.as_ref().map(|h| {
        (0..h.len())
            .map(|bin| {
                releases.iter().fold(zero, |acc, r| {
                    let v = r.histogram.as_ref().expect("validated")[bin];
                    add(Some(acc), Some(v)).expect("both present")
                })
            })
            .collect::<Vec<_>>()
    });
    let (count, sum) = match first.statistic {
        Statistic::Count => (count, None),
        Statistic::Sum => (None, sum),
        Statistic::Mean => (count, sum),
        Statistic::Histogram => (None, None),
    };
    let mean = match (first.statistic, sum, count) {
        (Statistic::Mean, Some(s), Some(c)) => ratio(s, c),
        _ => None,
    };
    Ok(PooledStats {
        statistic: first.statistic,
        sites: releases.len(),
        bins: first.bins.clone(),
        count,
        sum,
        mean,
        histogram,
    })
}

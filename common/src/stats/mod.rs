//! The math of `dp_stats` jobs (DESIGN section 4.1): contribution bounding, calibrated
//! noisy counts, sums, means and histograms, the release format, and pooling.
//!
//! Pure: no files and no network. The site daemon hands in the rows it read; the
//! coordinator hands in the releases it received.
//!
//! The order of operations at a site is fixed by the types:
//!
//! 1. [`DpStatsPlan::new`] validates the spec and calibrates the noise from ε (and δ): no
//!    data involved, so the site checks policy and budget against [`DpStatsPlan::events`]
//!    first;
//! 2. [`bound_contributions`] keeps at most `max_rows_per_unit` rows per privacy unit;
//! 3. [`DpStatsPlan::aggregate`] clamps and aggregates into an opaque [`ExactAggregate`];
//! 4. the site charges its ledger (durably);
//! 5. [`DpStatsPlan::release`] adds the noise and returns a [`DpStatsRelease`] (JSON).
//!
//! The coordinator combines sites' releases with [`pool`].

mod bounding;
mod plan;
mod pool;
mod release;

pub use bounding::bound_contributions;
pub use plan::{DpStatsPlan, ExactAggregate};
pub use pool::{PooledStats, pool};
pub use release::{DpStatsRelease, NoisyValue, ratio};

use crate::privacy::PrivacyError;

/// Why a `dp_stats` computation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// The job's params are invalid; the message names the field.
    #[error("invalid dp_stats params: {0}")]
    Spec(String),
    /// Calibration or noise failed.
    #[error(transparent)]
    Privacy(#[from] PrivacyError),
    /// A value to release is NaN or infinite; refused before release.
    #[error("non-finite statistic: {0}")]
    NonFinite(String),
    /// A release document is malformed.
    #[error("malformed dp_stats release: {0}")]
    Malformed(String),
    /// Releases to pool do not describe the same statistic.
    #[error("cannot pool: {0}")]
    Mismatch(String),
}

#[cfg(test)]
mod tests;

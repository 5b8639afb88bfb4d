//! Dense linear algebra for the embedding jobs, on top of [`faer`].
//!
//! - [`randomized_svd`]: the randomized truncated SVD of Halko, Martinsson & Tropp
//!   (arXiv 0909.4061), with the defaults of scikit-learn's `randomized_svd`, used by the
//!   `pmi_svd` job on the coordinator's summed PMI matrix.
//!
//! Parallelism follows faer's global setting ([`faer::set_global_parallelism`]); the default
//! is rayon's pool, whose size `RAYON_NUM_THREADS` controls. Nothing here spawns threads of
//! its own or touches files.

mod randomized_svd;

#[cfg(test)]
pub(crate) use randomized_svd::{LuNormalizer, gaussian_matrix};
pub use randomized_svd::{PowerIterations, RandomizedSvd, TruncatedSvd, randomized_svd};

/// Why a decomposition was refused or failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinalgError {
    /// The matrix has no rows or no columns: there is nothing to decompose.
    #[error("cannot decompose an empty {rows}×{cols} matrix")]
    Empty {
        /// Rows of the input.
        rows: usize,
        /// Columns of the input.
        cols: usize,
    },
    /// The requested rank is zero or larger than the smaller side of the matrix.
    #[error("rank {rank} is invalid for a {rows}×{cols} matrix (need 1 ≤ rank ≤ {})", rows.min(cols))]
    InvalidRank {
        /// The rank asked for.
        rank: usize,
        /// Rows of the input.
        rows: usize,
        /// Columns of the input.
        cols: usize,
    },
    /// An entry is NaN or infinite; the decomposition would be meaningless.
    #[error("entry ({row}, {col}) is not finite: {value}")]
    NonFinite {
        /// Row of the first offending entry (column-major scan).
        row: usize,
        /// Column of the first offending entry.
        col: usize,
        /// The offending value.
        value: f64,
    },
    /// faer's dense SVD of the small projected matrix did not converge.
    #[error("the SVD of the projected {rows}×{cols} matrix did not converge")]
    NoConvergence {
        /// Rows of the projected matrix.
        rows: usize,
        /// Columns of the projected matrix.
        cols: usize,
    },
}

#[cfg(test)]
mod tests;

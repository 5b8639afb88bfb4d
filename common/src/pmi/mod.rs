//! The coordinator's half of the `pmi_svd` job (DESIGN §4.2): from the summed, noisy
//! co-occurrence counts to L2-normalised concept embeddings.
//!
//! - [`sppmi`]: shifted positive PMI, max(ln(C_ij·N / (r_i·r_j)) − ln k, 0), after dropping
//!   cells below a count threshold and cells that noise made non-positive.
//! - [`embed`]: rank-d randomized SVD of that matrix, keeping the components with positive
//!   eigenvalues, embedding = U·Σ^½ with unit-length rows.
//! - [`pmi_embedding`]: both steps in one call.
//! - [`pipeline`]: the job's whole coordinator side, from the sites' releases.
//!
//! Everything here is post-processing of already-released (noised) counts, so it costs no
//! privacy budget; it is pure and deterministic given the SVD seed.

mod embed;
pub mod pipeline;
mod sppmi;

pub use embed::{Embedding, embed};
pub use sppmi::{CountLayout, SppmiParams, sppmi, unpack_upper_triangle};

use faer::MatRef;

use crate::linalg::{LinalgError, RandomizedSvd};

/// Why a PMI matrix or an embedding could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PmiError {
    /// The count matrix is not square, or the marginals do not have one entry per concept.
    #[error("counts are {rows}×{cols} but there are {marginals} marginals (need n×n and n)")]
    Shape {
        /// Rows of the count matrix.
        rows: usize,
        /// Columns of the count matrix.
        cols: usize,
        /// Length of the marginal vector.
        marginals: usize,
    },
    /// A packed upper triangle does not have n(n+1)/2 entries.
    #[error("a packed upper triangle of {n} concepts has {expected} entries, got {got}")]
    PackedLength {
        /// Number of concepts.
        n: usize,
        /// n(n+1)/2.
        expected: usize,
        /// Entries supplied.
        got: usize,
    },
    /// A count is NaN or infinite.
    #[error("count ({row}, {col}) is not finite: {value}")]
    NonFiniteCount {
        /// Row of the first offending cell.
        row: usize,
        /// Column of the first offending cell.
        col: usize,
        /// The offending value.
        value: f64,
    },
    /// A marginal count is NaN or infinite.
    #[error("marginal {index} is not finite: {value}")]
    NonFiniteMarginal {
        /// Concept index.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// The total N is not a finite positive number.
    #[error("total count must be finite and positive, got {0}")]
    InvalidTotal(f64),
    /// The count threshold is negative or not finite.
    #[error("count threshold must be finite and non-negative, got {0}")]
    InvalidThreshold(f64),
    /// The shift k is not finite and positive (ln k must exist).
    #[error("PMI shift k must be finite and positive, got {0}")]
    InvalidShift(f64),
    /// The truncated SVD refused its input (e.g. dimension above the vocabulary size).
    #[error("truncated SVD: {0}")]
    Svd(#[from] LinalgError),
}

/// Both steps of the coordinator's pipeline: [`sppmi`] with `params`, then [`embed`] with
/// `svd` (whose `rank` is the embedding dimension d before sign filtering).
pub fn pmi_embedding(
    counts: MatRef<'_, f64>,
    layout: CountLayout,
    marginals: &[f64],
    total: f64,
    params: &SppmiParams,
    svd: &RandomizedSvd,
) -> Result<Embedding, PmiError> {
    let m = sppmi(counts, layout, marginals, total, params)?;
    embed(m.as_ref(), svd)
}

#[cfg(test)]
mod tests;

//! How far a learned encoder's subspace is from the ground truth: the sin-θ distance
//! (the sine of the largest principal angle), the measure the linear multimodal
//! contrastive learning analysis bounds (arXiv 2302.06232).

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};

/// A row-major `rows`×`cols` slice (as read from a tensor file) as a matrix.
///
/// # Panics
/// If `data.len() != rows * cols`.
pub fn matrix_from_rows(data: &[f32], rows: usize, cols: usize) -> Mat<f64> {
    assert_eq!(data.len(), rows * cols, "{rows}×{cols} matrix");
    Mat::from_fn(rows, cols, |i, j| f64::from(data[i * cols + j]))
}

/// Why a subspace distance could not be computed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum SubspaceError {
    /// The two bases live in spaces of different dimension.
    #[error("the bases have {truth} and {learned} rows; they must live in the same space")]
    Rows {
        /// Rows of the true basis.
        truth: usize,
        /// Rows of the learned basis.
        learned: usize,
    },
    /// A basis has no columns, or more columns than rows.
    #[error("the {which} basis is {rows}×{cols}; expected 1 to {rows} columns")]
    Columns {
        /// `truth` or `learned`.
        which: &'static str,
        /// Its rows.
        rows: usize,
        /// Its columns.
        cols: usize,
    },
    /// An entry is NaN or infinite.
    #[error("the {which} basis has a non-finite entry at ({row}, {col})")]
    NonFinite {
        /// `truth` or `learned`.
        which: &'static str,
        /// Row.
        row: usize,
        /// Column.
        col: usize,
    },
    /// The columns are linearly dependent: they do not span a subspace of their number.
    #[error("the {which} basis is rank-deficient (column {col} depends on the others)")]
    RankDeficient {
        /// `truth` or `learned`.
        which: &'static str,
        /// First dependent column.
        col: usize,
    },
    /// The SVD did not converge.
    #[error("the SVD of the residual did not converge")]
    NoConvergence,
}

/// An orthonormal basis of the column span of `m`.
fn orthonormalise(m: MatRef<'_, f64>, which: &'static str) -> Result<Mat<f64>, SubspaceError> {
    let (rows, cols) = m.shape();
    if cols == 0 || cols > rows {
        return Err(SubspaceError::Columns { which, rows, cols });
    }
    for col in 0..cols {
        for row in 0..rows {
            if !m[(row, col)].is_finite() {
                return Err(SubspaceError::NonFinite { which, row, col });
            }
        }
    }
    let qr = m.qr();
    let r = qr.thin_R();
    let largest = (0..cols).map(|j| r[(j, j)].abs()).fold(0.0, f64::max);
    if let Some(col) =
        (0..cols).find(|&j| r[(j, j)].abs() <= 1e-12 * largest.max(f64::MIN_POSITIVE))
    {
        return Err(SubspaceError::RankDeficient { which, col });
    }
    Ok(qr.compute_thin_Q())
}

/// The sin-θ distance between the column spans of `truth` (d×r) and `learned` (d×k):
/// the sine of the largest principal angle, ‖(I − P_U) V‖₂ with U and V orthonormal
/// bases of the two spans (both are orthonormalised first, so any basis of the learned
/// span will do: an encoder's rows, scaled or rotated). 0 when `learned`'s span lies in
/// `truth`'s, 1 when some learned direction is orthogonal to it. Computed from the
/// residual rather than from cos θ so that small angles keep their precision.
pub fn sin_theta(truth: MatRef<'_, f64>, learned: MatRef<'_, f64>) -> Result<f64, SubspaceError> {
    if truth.nrows() != learned.nrows() {
        return Err(SubspaceError::Rows {
            truth: truth.nrows(),
            learned: learned.nrows(),
        });
    }
    let u = orthonormalise(truth, "truth")?;
    let v = orthonormalise(learned, "learned")?;
    // (I − U Uᵀ) V = V − U (Uᵀ V).
    let mut utv = Mat::<f64>::zeros(u.ncols(), v.ncols());
    matmul(
        utv.as_mut(),
        Accum::Replace,
        u.transpose(),
        v.as_ref(),
        1.0,
        Par::Seq,
    );
    let mut residual = v.clone();
    matmul(
        residual.as_mut(),
        Accum::Add,
        u.as_ref(),
        utv.as_ref(),
        -1.0,
        Par::Seq,
    );
    let s = residual
        .singular_values()
        .map_err(|_| SubspaceError::NoConvergence)?;
    Ok(s.first().copied().unwrap_or(0.0).min(1.0))
}

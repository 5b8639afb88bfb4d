//! Shifted positive pointwise mutual information (Levy & Goldberg 2014, "Neural word
//! embedding as implicit matrix factorization") from summed noisy co-occurrence counts.

use faer::{Mat, MatRef};

use super::PmiError;

/// Which cells of the count matrix hold the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountLayout {
    /// Only the upper triangle, diagonal included (what sites release): cell (i, j) with
    /// i ≤ j is read and mirrored; the strict lower triangle is ignored.
    Upper,
    /// Every cell is read as given; a noisy "symmetric" matrix need not be exactly
    /// symmetric, and the output is then not either.
    Full,
}

/// Parameters of the SPPMI transform.
#[derive(Debug, Clone, PartialEq)]
pub struct SppmiParams {
    /// Cells whose summed count is below this are dropped (set to 0): after noise, small
    /// counts are mostly noise and their PMI is extreme. Finite and ≥ 0.
    pub count_threshold: f64,
    /// The shift k of SPPMI = max(PMI − ln k, 0) (word2vec's negative-sample count); k = 1
    /// is plain positive PMI. Finite and > 0.
    pub shift: f64,
}

impl Default for SppmiParams {
    /// No threshold beyond positivity, k = 1 (positive PMI).
    fn default() -> Self {
        SppmiParams {
            count_threshold: 0.0,
            shift: 1.0,
        }
    }
}

/// The SPPMI matrix of `counts` (n×n, summed over sites), `marginals` r (length n) and the
/// total `total` N: cell (i, j) is max(ln(C_ij·N / (r_i·r_j)) − ln k, 0), or 0 when the cell
/// is dropped, i.e. when C_ij < `count_threshold`, C_ij ≤ 0, r_i ≤ 0 or r_j ≤ 0 (noise can
/// push released counts to zero or below; such cells carry no usable PMI).
///
/// Errors name the first bad value: wrong shapes, non-finite counts or marginals, a
/// non-positive total, a negative threshold or a non-positive shift. Nothing is clamped.
pub fn sppmi(
    counts: MatRef<'_, f64>,
    layout: CountLayout,
    marginals: &[f64],
    total: f64,
    params: &SppmiParams,
) -> Result<Mat<f64>, PmiError> {
    let (rows, cols) = counts.shape();
    let n = marginals.len();
    if rows != cols || rows != n {
        return Err(PmiError::Shape {
            rows,
            cols,
            marginals: n,
        });
    }
    if !(total.is_finite() && total > 0.0) {
        return Err(PmiError::InvalidTotal(total));
    }
    if !(params.count_threshold.is_finite() && params.count_threshold >= 0.0) {
        return Err(PmiError::InvalidThreshold(params.count_threshold));
    }
    if !(params.shift.is_finite() && params.shift > 0.0) {
        return Err(PmiError::InvalidShift(params.shift));
    }
    if let Some((index, &value)) = marginals.iter().enumerate().find(|(_, r)| !r.is_finite()) {
        return Err(PmiError::NonFiniteMarginal { index, value });
    }
    for col in 0..n {
        let rows_read = match layout {
            CountLayout::Upper => col + 1,
            CountLayout::Full => n,
        };
        for row in 0..rows_read {
            let value = counts[(row, col)];
            if !value.is_finite() {
                return Err(PmiError::NonFiniteCount { row, col, value });
            }
        }
    }

    // ln r_i, or None for a concept whose marginal noise made non-positive.
    let log_r: Vec<Option<f64>> = marginals
        .iter()
        .map(|&r| (r > 0.0).then(|| r.ln()))
        .collect();
    // Logs rather than the product C·N/(r·r), which can overflow for large totals.
    let offset = total.ln() - params.shift.ln();
    let cell = |count: f64, i: usize, j: usize| -> f64 {
        if count <= 0.0 || count < params.count_threshold {
            return 0.0;
        }
        match (log_r[i], log_r[j]) {
            (Some(li), Some(lj)) => (count.ln() + offset - li - lj).max(0.0),
            _ => 0.0,
        }
    };
    Ok(match layout {
        CountLayout::Upper => Mat::from_fn(n, n, |i, j| {
            let (a, b) = if i <= j { (i, j) } else { (j, i) };
            cell(counts[(a, b)], a, b)
        }),
        CountLayout::Full => Mat::from_fn(n, n, |i, j| cell(counts[(i, j)], i, j)),
    })
}

/// An n×n matrix whose upper triangle is `packed` (row-major: (0,0), (0,1), …, (0,n−1),
/// (1,1), …, (n−1,n−1), length n(n+1)/2) and whose strict lower triangle is zero; use it
/// with [`CountLayout::Upper`].
pub fn unpack_upper_triangle(n: usize, packed: &[f64]) -> Result<Mat<f64>, PmiError> {
    let expected = n * (n + 1) / 2;
    if packed.len() != expected {
        return Err(PmiError::PackedLength {
            n,
            expected,
            got: packed.len(),
        });
    }
    let mut out = Mat::zeros(n, n);
    let mut k = 0;
    for i in 0..n {
        for j in i..n {
            out[(i, j)] = packed[k];
            k += 1;
        }
    }
    Ok(out)
}

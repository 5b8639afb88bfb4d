//! Concept embeddings from the truncated SVD of an SPPMI matrix.

use faer::{Mat, MatRef};

use super::PmiError;
use crate::linalg::RandomizedSvd;

/// Unit-length concept vectors, one row per concept.
#[derive(Debug, Clone)]
pub struct Embedding {
    /// n × d' with d' ≤ d: row i is concept i's vector, of unit L2 norm unless the concept
    /// had no surviving PMI mass (an all-zero SPPMI row; then the row is all zeros).
    pub vectors: Mat<f64>,
    /// Which of the d SVD components were kept (indices into the SVD's order).
    pub components: Vec<usize>,
    /// Their singular values (= the kept positive eigenvalues of a symmetric input).
    pub singular_values: Vec<f64>,
}

impl Embedding {
    /// Number of concepts.
    pub fn len(&self) -> usize {
        self.vectors.nrows()
    }

    /// Whether there are no concepts.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Dimension d' after dropping negative-eigenvalue components.
    pub fn dim(&self) -> usize {
        self.vectors.ncols()
    }

    /// Cosine similarity of concepts `i` and `j`: the dot product of their unit rows
    /// (0 when either row is zero).
    pub fn cosine(&self, i: usize, j: usize) -> f64 {
        (0..self.dim())
            .map(|c| self.vectors[(i, c)] * self.vectors[(j, c)])
            .sum()
    }
}

/// Embeds the concepts of `sppmi` (n×n, normally symmetric) with the truncated SVD `svd` (rank d).
///
/// A symmetric matrix's SVD pairs each eigenvalue λ with σ = |λ|, and v = u when λ > 0 but
/// v = −u when λ < 0. Negative-eigenvalue directions are anti-similarity and are dropped:
/// a component is kept when ⟨u_c, v_c⟩ > 0. The embedding is U·Σ^½ over the kept
/// components, with each row scaled to unit length (zero rows stay zero). If no component
/// survives, the embedding has dimension 0.
pub fn embed(sppmi: MatRef<'_, f64>, svd: &RandomizedSvd) -> Result<Embedding, PmiError> {
    let (rows, cols) = sppmi.shape();
    if rows != cols {
        return Err(PmiError::Shape {
            rows,
            cols,
            marginals: rows,
        });
    }
    let factors = svd.compute(sppmi)?;
    let n = factors.u.nrows();
    let components: Vec<usize> = (0..factors.rank())
        .filter(|&c| {
            let agreement: f64 = (0..n).map(|i| factors.u[(i, c)] * factors.v[(i, c)]).sum();
            agreement > 0.0
        })
        .collect();
    let singular_values: Vec<f64> = components.iter().map(|&c| factors.s[c]).collect();
    let mut vectors = Mat::from_fn(n, components.len(), |i, k| {
        factors.u[(i, components[k])] * singular_values[k].sqrt()
    });
    for i in 0..n {
        // A concept whose SPPMI row is all zero has no embedding. Its U row is zero only up
        // to rounding (~1e-17), which normalisation would blow up into an arbitrary unit
        // vector, so decide from the input, not from the factor.
        let norm = vectors.row(i).norm_l2();
        if sppmi.row(i).iter().all(|&x| x == 0.0) {
            vectors.row_mut(i).fill(0.0);
        } else if norm > 0.0 {
            vectors.row_mut(i).iter_mut().for_each(|x| *x /= norm);
        }
    }
    Ok(Embedding {
        vectors,
        components,
        singular_values,
    })
}

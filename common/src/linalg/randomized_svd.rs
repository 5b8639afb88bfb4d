//! Randomized truncated SVD (Halko, Martinsson & Tropp 2011, arXiv 0909.4061,
//! Algorithms 4.4 and 5.1), with scikit-learn's `randomized_svd` defaults.
//!
//! For an m×n matrix A and a target rank k the steps are:
//! 1. draw a seeded Gaussian test matrix Ω (n × ℓ, ℓ = k + oversamples);
//! 2. Q = orth(A Ω), then `q` power iterations Q = orth(A orth(Aᵀ Q)), re-orthonormalising
//!    with a thin QR after every product so that the small singular directions are not
//!    lost to rounding (Algorithm 4.4);
//! 3. Bᵀ = Aᵀ Q (n × ℓ) and its small dense SVD Bᵀ = W Σ Zᵀ, so A ≈ Q B = (Q Z) Σ Wᵀ;
//! 4. keep the leading k triplets and fix signs as scikit-learn's `svd_flip` does (the
//!    largest-magnitude entry of each left vector is positive), so the output is a pure
//!    function of the input and the seed.
//!
//! The cost is (2q + 2) products of A with an ℓ-column block plus QRs and a small SVD of
//! ℓ-column blocks; for k ≪ min(m, n) that is far below a full SVD.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, get_global_parallelism};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::LinalgError;

/// How many power iterations to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PowerIterations {
    /// scikit-learn's `n_iter='auto'`: 7 when the rank is below a tenth of the smaller side
    /// of the matrix (slowly decaying spectra need more), else 4.
    #[default]
    Auto,
    /// Exactly this many (0 gives the plain randomized range finder).
    Fixed(usize),
}

impl PowerIterations {
    /// The number of iterations this setting means for a rank-`rank` SVD of a
    /// `rows`×`cols` matrix.
    pub fn resolve(self, rank: usize, rows: usize, cols: usize) -> usize {
        match self {
            PowerIterations::Auto => {
                if (rank as f64) < 0.1 * rows.min(cols) as f64 {
                    7
                } else {
                    4
                }
            }
            PowerIterations::Fixed(q) => q,
        }
    }
}

/// Settings of a randomized truncated SVD. [`RandomizedSvd::new`] gives scikit-learn's
/// defaults (10 oversamples, automatic power iterations) with seed 0.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomizedSvd {
    /// Number of singular triplets returned; 1 ≤ rank ≤ min(rows, cols).
    pub rank: usize,
    /// Extra test vectors beyond `rank` (ℓ = rank + oversamples, capped at min(rows, cols)):
    /// they make the leading `rank` directions accurate rather than merely captured.
    pub oversamples: usize,
    /// Power iterations; more sharpen the spectrum's decay at the cost of two products each.
    pub power_iterations: PowerIterations,
    /// Seed of the ChaCha20 stream that draws the Gaussian test matrix.
    pub seed: u64,
}

/// A rank-k factorisation A ≈ U diag(s) Vᵀ.
#[derive(Debug, Clone)]
pub struct TruncatedSvd {
    /// Left singular vectors, rows × k, orthonormal columns.
    pub u: Mat<f64>,
    /// Singular values, non-negative and non-increasing, length k.
    pub s: Vec<f64>,
    /// Right singular vectors, cols × k, orthonormal columns.
    pub v: Mat<f64>,
}

impl TruncatedSvd {
    /// Number of triplets kept.
    pub fn rank(&self) -> usize {
        self.s.len()
    }

    /// The rank-k approximation U diag(s) Vᵀ as a dense matrix.
    pub fn reconstruct(&self) -> Mat<f64> {
        let us = Mat::from_fn(self.u.nrows(), self.rank(), |i, j| {
            self.u[(i, j)] * self.s[j]
        });
        let mut out = Mat::zeros(self.u.nrows(), self.v.nrows());
        matmul(
            out.as_mut(),
            Accum::Replace,
            us.as_ref(),
            self.v.transpose(),
            1.0,
            get_global_parallelism(),
        );
        out
    }
}

impl RandomizedSvd {
    /// scikit-learn's defaults for a rank-`rank` SVD: 10 oversamples, automatic power
    /// iterations, seed 0.
    pub fn new(rank: usize) -> Self {
        RandomizedSvd {
            rank,
            oversamples: 10,
            power_iterations: PowerIterations::Auto,
            seed: 0,
        }
    }

    /// The same settings with another seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Decomposes `a` (any shape; symmetric matrices need nothing special).
    ///
    /// Errors: [`LinalgError::Empty`], [`LinalgError::InvalidRank`] for rank 0 or above
    /// min(rows, cols), [`LinalgError::NonFinite`] for a NaN or infinite entry,
    /// [`LinalgError::NoConvergence`] if the small dense SVD fails.
    pub fn compute(&self, a: MatRef<'_, f64>) -> Result<TruncatedSvd, LinalgError> {
        let (rows, cols) = a.shape();
        if rows == 0 || cols == 0 {
            return Err(LinalgError::Empty { rows, cols });
        }
        if self.rank == 0 || self.rank > rows.min(cols) {
            return Err(LinalgError::InvalidRank {
                rank: self.rank,
                rows,
                cols,
            });
        }
        check_finite(a)?;
        if rows < cols {
            // Work on the tall transpose (as scikit-learn does): the Gaussian test matrix is
            // then drawn for the short side, and A = U Σ Vᵀ iff Aᵀ = V Σ Uᵀ.
            let t = self.compute_tall(a.transpose())?;
            return Ok(flip_signs(TruncatedSvd {
                u: t.v,
                s: t.s,
                v: t.u,
            }));
        }
        self.compute_tall(a).map(flip_signs)
    }

    /// The algorithm proper, for rows ≥ cols.
    fn compute_tall(&self, a: MatRef<'_, f64>) -> Result<TruncatedSvd, LinalgError> {
        let (rows, cols) = a.shape();
        let par = get_global_parallelism();
        let width = (self.rank + self.oversamples).min(cols);
        let iterations = self.power_iterations.resolve(self.rank, rows, cols);

        let omega = gaussian_matrix(cols, width, self.seed);
        let mut y = Mat::<f64>::zeros(rows, width);
        let mut z = Mat::<f64>::zeros(cols, width);

        matmul(y.as_mut(), Accum::Replace, a, omega.as_ref(), 1.0, par);
        let mut q = orthonormal_basis(y.as_ref());
        for _ in 0..iterations {
            matmul(
                z.as_mut(),
                Accum::Replace,
                a.transpose(),
                q.as_ref(),
                1.0,
                par,
            );
            let qz = orthonormal_basis(z.as_ref());
            matmul(y.as_mut(), Accum::Replace, a, qz.as_ref(), 1.0, par);
            q = orthonormal_basis(y.as_ref());
        }

        // Bᵀ = Aᵀ Q is tall (cols × width): its thin SVD W Σ Zᵀ gives A ≈ (Q Z) Σ Wᵀ.
        matmul(
            z.as_mut(),
            Accum::Replace,
            a.transpose(),
            q.as_ref(),
            1.0,
            par,
        );
        let small = z
            .thin_svd()
            .map_err(|_| LinalgError::NoConvergence { rows: width, cols })?;
        let k = self.rank;
        let mut u = Mat::<f64>::zeros(rows, k);
        matmul(
            u.as_mut(),
            Accum::Replace,
            q.as_ref(),
            small.V().subcols(0, k),
            1.0,
            par,
        );
        let s = small.S().column_vector().iter().take(k).copied().collect();
        let v = small.U().subcols(0, k).to_owned();
        Ok(TruncatedSvd { u, s, v })
    }
}

/// Rank-`rank` randomized SVD of `a` with scikit-learn's defaults and the given seed;
/// shorthand for `RandomizedSvd::new(rank).with_seed(seed).compute(a)`.
pub fn randomized_svd(
    a: MatRef<'_, f64>,
    rank: usize,
    seed: u64,
) -> Result<TruncatedSvd, LinalgError> {
    RandomizedSvd::new(rank).with_seed(seed).compute(a)
}

fn check_finite(a: MatRef<'_, f64>) -> Result<(), LinalgError> {
    for col in 0..a.ncols() {
        for row in 0..a.nrows() {
            let value = a[(row, col)];
            if !value.is_finite() {
                return Err(LinalgError::NonFinite { row, col, value });
            }
        }
    }
    Ok(())
}

/// The thin Q factor of `y` (orthonormal columns spanning its range).
fn orthonormal_basis(y: MatRef<'_, f64>) -> Mat<f64> {
    y.qr().compute_thin_Q()
}

/// A rows×cols matrix of independent standard normals from ChaCha20 seeded with `seed`,
/// filled column by column (Box–Muller, both outputs used).
pub(crate) fn gaussian_matrix(rows: usize, cols: usize, seed: u64) -> Mat<f64> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(rows * cols + 1);
    while values.len() < rows * cols {
        // 1 - U lies in (0, 1], so the logarithm is finite.
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        let radius = (-2.0 * u1.ln()).sqrt();
        let angle = std::f64::consts::TAU * u2;
        values.push(radius * angle.cos());
        values.push(radius * angle.sin());
    }
    Mat::from_fn(rows, cols, |i, j| values[j * rows + i])
}

/// scikit-learn's `svd_flip` (u-based): the largest-magnitude entry of each left singular
/// vector is made positive, flipping the matching right vector with it.
fn flip_signs(mut svd: TruncatedSvd) -> TruncatedSvd {
    for j in 0..svd.rank() {
        let mut best = 0.0_f64;
        for i in 0..svd.u.nrows() {
            let x = svd.u[(i, j)];
            if x.abs() > best.abs() {
                best = x;
            }
        }
        if best < 0.0 {
            svd.u.col_mut(j).iter_mut().for_each(|x| *x = -*x);
            svd.v.col_mut(j).iter_mut().for_each(|x| *x = -*x);
        }
    }
    svd
}

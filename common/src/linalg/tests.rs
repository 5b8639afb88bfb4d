//! Properties of the randomized SVD: it reconstructs low-rank matrices, its leading
//! singular values match a full dense SVD, and bad input is refused.

use faer::{Mat, MatRef};

use super::{
    LinalgError, LuNormalizer, PowerIterations, RandomizedSvd, gaussian_matrix, randomized_svd,
};

/// ‖a − b‖_F / ‖b‖_F.
fn relative_error(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    (a - b).norm_l2() / b.norm_l2()
}

/// A `rows`×`cols` matrix with singular values `spectrum` and seeded random singular vectors.
fn with_spectrum(rows: usize, cols: usize, spectrum: &[f64], seed: u64) -> Mat<f64> {
    let r = spectrum.len();
    let left = gaussian_matrix(rows, r, seed).qr().compute_thin_Q();
    let right = gaussian_matrix(cols, r, seed + 1).qr().compute_thin_Q();
    let scaled = Mat::from_fn(rows, r, |i, j| left[(i, j)] * spectrum[j]);
    &scaled * right.transpose()
}

fn max_off_identity(q: MatRef<'_, f64>) -> f64 {
    let gram = q.transpose() * q;
    let mut worst = 0.0_f64;
    for i in 0..gram.nrows() {
        for j in 0..gram.ncols() {
            let target = if i == j { 1.0 } else { 0.0 };
            worst = worst.max((gram[(i, j)] - target).abs());
        }
    }
    worst
}

#[test]
fn reconstructs_an_exactly_low_rank_matrix() {
    let x = gaussian_matrix(80, 5, 1);
    let y = gaussian_matrix(50, 5, 2);
    let a = &x * y.transpose();
    let svd = randomized_svd(a.as_ref(), 5, 7).unwrap();
    assert_eq!(svd.u.shape(), (80, 5));
    assert_eq!(svd.v.shape(), (50, 5));
    assert!(relative_error(svd.reconstruct().as_ref(), a.as_ref()) < 1e-12);
    assert!(max_off_identity(svd.u.as_ref()) < 1e-12);
    assert!(max_off_identity(svd.v.as_ref()) < 1e-12);
    assert!(svd.s.windows(2).all(|w| w[0] >= w[1]));
}

#[test]
fn reconstructs_a_wide_matrix_through_its_transpose() {
    let x = gaussian_matrix(30, 4, 3);
    let y = gaussian_matrix(90, 4, 4);
    let a = &x * y.transpose();
    let svd = randomized_svd(a.as_ref(), 4, 0).unwrap();
    assert_eq!(svd.u.shape(), (30, 4));
    assert_eq!(svd.v.shape(), (90, 4));
    assert!(relative_error(svd.reconstruct().as_ref(), a.as_ref()) < 1e-12);
}

#[test]
fn leading_singular_values_match_the_full_svd_on_a_decaying_spectrum() {
    // Full-rank 300×200 matrix, singular values 0.9^j: the tail is never exactly zero, so
    // this exercises the power iterations, not just the range finder.
    let spectrum: Vec<f64> = (0..200).map(|j| 0.9_f64.powi(j)).collect();
    let a = with_spectrum(300, 200, &spectrum, 11);
    let exact = a.svd().unwrap();
    let exact_s = exact.S().column_vector();
    let svd = RandomizedSvd::new(15)
        .with_seed(5)
        .compute(a.as_ref())
        .unwrap();
    assert_eq!(svd.s.len(), 15);
    for (j, &s) in svd.s.iter().enumerate() {
        let rel = (s - exact_s[j]).abs() / exact_s[j];
        assert!(rel < 1e-6, "σ_{j}: {s} vs {} (rel {rel:e})", exact_s[j]);
    }
    // The leading singular vectors agree up to sign too.
    for j in 0..5 {
        let dot: f64 = (0..300).map(|i| svd.u[(i, j)] * exact.U()[(i, j)]).sum();
        assert!(
            (dot.abs() - 1.0).abs() < 1e-6,
            "u_{j}: |⟨u, u*⟩| = {}",
            dot.abs()
        );
    }
}

#[test]
fn symmetric_psd_input_gives_equal_left_and_right_vectors() {
    let g = gaussian_matrix(60, 8, 21);
    let a = &g * g.transpose();
    let svd = randomized_svd(a.as_ref(), 8, 1).unwrap();
    assert!(relative_error(svd.u.as_ref(), svd.v.as_ref()) < 1e-8);
}

#[test]
fn same_seed_same_output() {
    let a = with_spectrum(70, 60, &[5.0, 4.0, 3.0, 1.0, 0.5, 0.1], 31);
    let first = randomized_svd(a.as_ref(), 3, 9).unwrap();
    let second = randomized_svd(a.as_ref(), 3, 9).unwrap();
    assert_eq!(first.s, second.s);
    assert_eq!(first.u, second.u);
    assert_eq!(first.v, second.v);
}

#[test]
fn rank_equal_to_the_short_side_is_exact() {
    let a = gaussian_matrix(12, 7, 41);
    let svd = randomized_svd(a.as_ref(), 7, 0).unwrap();
    assert!(relative_error(svd.reconstruct().as_ref(), a.as_ref()) < 1e-12);
}

#[test]
fn auto_power_iterations_follow_scikit_learn() {
    assert_eq!(PowerIterations::Auto.resolve(100, 5000, 5000), 7);
    assert_eq!(PowerIterations::Auto.resolve(500, 5000, 5000), 4);
    assert_eq!(PowerIterations::Auto.resolve(10, 50, 1000), 4);
    assert_eq!(PowerIterations::Fixed(2).resolve(1, 10, 10), 2);
}

#[test]
fn invalid_rank_is_refused() {
    let a = gaussian_matrix(10, 6, 0);
    for rank in [0, 7] {
        assert_eq!(
            randomized_svd(a.as_ref(), rank, 0).unwrap_err(),
            LinalgError::InvalidRank {
                rank,
                rows: 10,
                cols: 6
            }
        );
    }
}

#[test]
fn empty_matrix_is_refused() {
    let a = Mat::<f64>::zeros(0, 4);
    assert_eq!(
        randomized_svd(a.as_ref(), 1, 0).unwrap_err(),
        LinalgError::Empty { rows: 0, cols: 4 }
    );
}

#[test]
fn non_finite_entries_are_refused() {
    let mut a = gaussian_matrix(8, 8, 0);
    a[(3, 5)] = f64::NAN;
    match randomized_svd(a.as_ref(), 2, 0).unwrap_err() {
        LinalgError::NonFinite {
            row: 3,
            col: 5,
            value,
        } => assert!(value.is_nan()),
        other => panic!("unexpected {other:?}"),
    }
    a[(3, 5)] = f64::INFINITY;
    assert!(matches!(
        randomized_svd(a.as_ref(), 2, 0),
        Err(LinalgError::NonFinite { row: 3, col: 5, .. })
    ));
}

/// Largest ‖y − Q Qᵀ y‖ / ‖y‖ over the columns y of `y`, Q an orthonormal basis of `basis`:
/// zero when `basis` spans the range of `y`.
fn range_residual(y: MatRef<'_, f64>, basis: MatRef<'_, f64>) -> f64 {
    let q = basis.qr().compute_thin_Q();
    let residual = y - &q * (q.transpose() * y);
    (0..y.ncols())
        .map(|j| residual.col(j).norm_l2() / y.col(j).norm_l2())
        .fold(0.0, f64::max)
}

/// Runs the LU normaliser on `y` (len × width) the way `compute_tall` does, on transposed
/// blocks; returns P L (len × width) and whether the LU was used.
fn lu_normalize(y: MatRef<'_, f64>) -> (Mat<f64>, bool) {
    let (len, width) = y.shape();
    let y_t = y.transpose().to_owned();
    let mut out_t = Mat::<f64>::zeros(width, len);
    let mut lu = LuNormalizer::new(len + 3, width, faer::Par::Seq);
    let used = lu.normalize(y_t.as_ref(), out_t.as_mut());
    (out_t.transpose().to_owned(), used)
}

#[test]
fn lu_normalizer_keeps_the_range_with_bounded_entries() {
    for (len, width) in [(200, 12), (12, 12), (31, 1)] {
        let y = gaussian_matrix(len, width, 51);
        let (pl, used) = lu_normalize(y.as_ref());
        assert!(used, "{len}×{width}: fell back to QR");
        assert!(range_residual(y.as_ref(), pl.as_ref()) < 1e-12);
        assert!(range_residual(pl.as_ref(), y.as_ref()) < 1e-12);
        // P L is a row permutation of a unit lower-trapezoidal L: partial pivoting bounds
        // every entry by 1, and each column has its unit pivot in a row of its own.
        assert!(pl.col_iter().all(|c| c.iter().all(|x| x.abs() <= 1.0)));
        let mut pivot_rows: Vec<usize> = (0..width)
            .map(|j| {
                (0..len)
                    .find(|&i| pl[(i, j)] == 1.0 && (j + 1..width).all(|l| pl[(i, l)] == 0.0))
                    .expect("a unit pivot")
            })
            .collect();
        pivot_rows.sort_unstable();
        pivot_rows.dedup();
        assert_eq!(pivot_rows.len(), width);
    }
}

#[test]
fn lu_normalizer_falls_back_to_qr_on_an_exactly_rank_deficient_block() {
    // A zero column stays zero through the elimination: its pivot is exactly zero and L
    // would hold 0/0. (Merely equal columns do not: the elimination leaves rounding noise.)
    let mut y = gaussian_matrix(40, 3, 52);
    for i in 0..40 {
        y[(i, 1)] = 0.0;
    }
    let (q, used) = lu_normalize(y.as_ref());
    assert!(!used);
    assert!(q.col_iter().all(|c| c.iter().all(|x| x.is_finite())));
    assert!(max_off_identity(q.as_ref()) < 1e-12);
    for j in [0, 2] {
        let column = y.col(j).as_mat();
        assert!(range_residual(column, q.as_ref()) < 1e-12);
    }
    // And so does the zero block.
    let (q, used) = lu_normalize(Mat::<f64>::zeros(40, 3).as_ref());
    assert!(!used);
    assert!(q.col_iter().all(|c| c.iter().all(|x| x.is_finite())));
}

#[test]
fn rank_one_matrix_with_exact_cancellation_reconstructs() {
    // Power-of-two entries make every elimination step exact, so the LUs in the power
    // iterations meet exactly zero pivots; the QR fallback must keep the result finite.
    let x: Vec<f64> = (0..40).map(|i| [1.0, -2.0, 4.0, 0.5][i % 4]).collect();
    let y: Vec<f64> = (0..30).map(|j| [2.0, 1.0, -0.25][j % 3]).collect();
    let a = Mat::from_fn(40, 30, |i, j| x[i] * y[j]);
    let svd = randomized_svd(a.as_ref(), 3, 2).unwrap();
    assert!(svd.s.iter().all(|s| s.is_finite()));
    assert!(svd.u.col_iter().all(|c| c.iter().all(|x| x.is_finite())));
    assert!(relative_error(svd.reconstruct().as_ref(), a.as_ref()) < 1e-12);
    let norm = a.norm_l2();
    assert!((svd.s[0] - norm).abs() < 1e-12 * norm);
    assert!(svd.s[1] < 1e-12 * norm);
}

#[test]
fn zero_matrix_has_zero_singular_values() {
    let a = Mat::<f64>::zeros(30, 20);
    let svd = randomized_svd(a.as_ref(), 4, 0).unwrap();
    assert_eq!(svd.s, vec![0.0; 4]);
    assert!(svd.u.col_iter().all(|c| c.iter().all(|x| x.is_finite())));
    assert!(svd.v.col_iter().all(|c| c.iter().all(|x| x.is_finite())));
}

#[test]
fn power_iterations_sharpen_a_slowly_decaying_spectrum() {
    // s_j = 1/(1 + j), like the benchmark's PMI-like matrix: without power iterations the
    // tail of the requested singular values is far off, with scikit-learn's 7 it is close.
    let spectrum: Vec<f64> = (0..150).map(|j| 1.0 / (1.0 + j as f64)).collect();
    let a = with_spectrum(300, 300, &spectrum, 61);
    let worst = |iterations| {
        let svd = RandomizedSvd {
            power_iterations: PowerIterations::Fixed(iterations),
            ..RandomizedSvd::new(10)
        }
        .compute(a.as_ref())
        .unwrap();
        (0..10)
            .map(|j| (svd.s[j] - spectrum[j]).abs() / spectrum[j])
            .fold(0.0, f64::max)
    };
    let (none, auto) = (worst(0), worst(7));
    assert!(auto < 1e-3, "7 iterations: {auto:e}");
    assert!(
        auto < none / 10.0,
        "0 iterations {none:e}, 7 iterations {auto:e}"
    );
}

#[test]
fn wide_and_tall_inputs_give_transposed_factors() {
    let a = with_spectrum(50, 35, &[9.0, 5.0, 2.0, 1.0, 0.3], 71);
    let tall = randomized_svd(a.as_ref(), 3, 4).unwrap();
    let at = a.transpose().to_owned();
    let wide = randomized_svd(at.as_ref(), 3, 4).unwrap();
    for j in 0..3 {
        assert!((tall.s[j] - wide.s[j]).abs() < 1e-12 * tall.s[0]);
    }
    assert!(relative_error(tall.reconstruct().as_ref(), wide.reconstruct().transpose()) < 1e-10);
}

#[test]
fn top_singular_values_and_vectors_are_accurate_to_rounding() {
    // Regression: with faer's default small SVD (bidiagonal QR iteration below 128 columns)
    // the top singular values of a rank-100 SVD came out ~1e-14 off and U, V orthonormal
    // only to ~2e-14, five to ten times LAPACK's (scikit-learn's) error.
    let spectrum: Vec<f64> = (0..300).map(|j| 1.0 / (1.0 + j as f64)).collect();
    let a = with_spectrum(900, 700, &spectrum, 81);
    let svd = RandomizedSvd::new(100)
        .with_seed(3)
        .compute(a.as_ref())
        .unwrap();
    let worst = (0..10)
        .map(|j| (svd.s[j] - spectrum[j]).abs() / spectrum[j])
        .fold(0.0, f64::max);
    let (u_orth, v_orth) = (
        max_off_identity(svd.u.as_ref()),
        max_off_identity(svd.v.as_ref()),
    );
    assert!(worst < 4e-15, "top-10 relative error {worst:e}");
    assert!(
        u_orth < 6e-15 && v_orth < 6e-15,
        "U {u_orth:e}, V {v_orth:e}"
    );
}

//! Properties of the randomized SVD: it reconstructs low-rank matrices, its leading
//! singular values match a full dense SVD, and bad input is refused.

use faer::{Mat, MatRef};

use super::{LinalgError, PowerIterations, RandomizedSvd, gaussian_matrix, randomized_svd};

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

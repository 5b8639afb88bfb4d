//! SPPMI arithmetic, input checks, and embeddings that recover block structure.

use faer::Mat;

use super::{
    CountLayout, PmiError, SppmiParams, embed, pmi_embedding, sppmi, unpack_upper_triangle,
};
use crate::linalg::{LinalgError, RandomizedSvd, gaussian_matrix};

const EPS: f64 = 1e-12;

#[test]
fn sppmi_matches_the_formula_on_a_small_case() {
    // C = [[0, 6], [6, 2]], r = (6, 8), N = 14, k = 2.
    let c = Mat::from_fn(2, 2, |i, j| [[0.0, 6.0], [6.0, 2.0]][i][j]);
    let params = SppmiParams {
        count_threshold: 0.0,
        shift: 2.0,
    };
    let m = sppmi(c.as_ref(), CountLayout::Full, &[6.0, 8.0], 14.0, &params).unwrap();
    let expect_01 = ((6.0_f64 * 14.0 / (6.0 * 8.0)).ln() - 2.0_f64.ln()).max(0.0);
    let expect_11 = ((2.0_f64 * 14.0 / 64.0).ln() - 2.0_f64.ln()).max(0.0);
    assert_eq!(m[(0, 0)], 0.0, "zero count is dropped");
    assert!((m[(0, 1)] - expect_01).abs() < EPS);
    assert!((m[(1, 0)] - expect_01).abs() < EPS);
    assert!((m[(1, 1)] - expect_11).abs() < EPS);
    assert_eq!(expect_11, 0.0, "negative PMI becomes 0");
}

#[test]
fn upper_layout_mirrors_and_ignores_the_lower_triangle() {
    let mut c = Mat::from_fn(
        3,
        3,
        |i, j| if i <= j { 10.0 + (i + j) as f64 } else { 0.0 },
    );
    let r = [30.0, 35.0, 40.0];
    let params = SppmiParams::default();
    let clean = sppmi(c.as_ref(), CountLayout::Upper, &r, 100.0, &params).unwrap();
    c[(2, 0)] = f64::NAN; // garbage below the diagonal is never read
    c[(1, 0)] = 1e9;
    let dirty = sppmi(c.as_ref(), CountLayout::Upper, &r, 100.0, &params).unwrap();
    assert_eq!(clean, dirty);
    for i in 0..3 {
        for j in 0..3 {
            assert_eq!(clean[(i, j)], clean[(j, i)]);
        }
    }
    assert!(clean[(0, 1)] > 0.0);
}

#[test]
fn cells_below_threshold_or_made_non_positive_by_noise_are_dropped() {
    let c = Mat::from_fn(3, 3, |i, j| {
        [[50.0, 4.0, -3.0], [4.0, 50.0, 9.0], [-3.0, 9.0, 50.0]][i][j]
    });
    let params = SppmiParams {
        count_threshold: 5.0,
        shift: 1.0,
    };
    // Concept 2's marginal went negative under noise: its whole row and column drop.
    let m = sppmi(
        c.as_ref(),
        CountLayout::Full,
        &[60.0, 60.0, -1.0],
        150.0,
        &params,
    )
    .unwrap();
    assert_eq!(m[(0, 1)], 0.0, "below threshold");
    assert_eq!(m[(0, 2)], 0.0, "negative count");
    assert_eq!(m[(1, 2)], 0.0, "non-positive marginal");
    assert_eq!(m[(2, 2)], 0.0, "non-positive marginal");
    assert!(m[(0, 0)] > 0.0);
}

#[test]
fn bad_inputs_are_refused_with_the_value() {
    let c = Mat::from_fn(2, 2, |_, _| 3.0);
    let ok = SppmiParams::default();
    let run = |c: &Mat<f64>, r: &[f64], n: f64, p: &SppmiParams| {
        sppmi(c.as_ref(), CountLayout::Full, r, n, p).unwrap_err()
    };
    assert_eq!(
        run(&c, &[1.0], 4.0, &ok),
        PmiError::Shape {
            rows: 2,
            cols: 2,
            marginals: 1
        }
    );
    assert_eq!(run(&c, &[1.0, 1.0], 0.0, &ok), PmiError::InvalidTotal(0.0));
    assert!(matches!(
        run(&c, &[1.0, 1.0], f64::NAN, &ok),
        PmiError::InvalidTotal(_)
    ));
    let neg = SppmiParams {
        count_threshold: -1.0,
        shift: 1.0,
    };
    assert_eq!(
        run(&c, &[1.0, 1.0], 4.0, &neg),
        PmiError::InvalidThreshold(-1.0)
    );
    let zero_shift = SppmiParams {
        count_threshold: 0.0,
        shift: 0.0,
    };
    assert_eq!(
        run(&c, &[1.0, 1.0], 4.0, &zero_shift),
        PmiError::InvalidShift(0.0)
    );
    assert_eq!(
        run(&c, &[1.0, f64::INFINITY], 4.0, &ok),
        PmiError::NonFiniteMarginal {
            index: 1,
            value: f64::INFINITY
        }
    );
    let mut bad = c.clone();
    bad[(1, 0)] = f64::NEG_INFINITY;
    assert_eq!(
        run(&bad, &[1.0, 1.0], 4.0, &ok),
        PmiError::NonFiniteCount {
            row: 1,
            col: 0,
            value: f64::NEG_INFINITY
        }
    );
}

#[test]
fn packed_upper_triangle_round_trips() {
    let m = unpack_upper_triangle(3, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let expect = [[1.0, 2.0, 3.0], [0.0, 4.0, 5.0], [0.0, 0.0, 6.0]];
    for i in 0..3 {
        for j in 0..3 {
            assert_eq!(m[(i, j)], expect[i][j]);
        }
    }
    assert_eq!(
        unpack_upper_triangle(3, &[1.0; 5]).unwrap_err(),
        PmiError::PackedLength {
            n: 3,
            expected: 6,
            got: 5
        }
    );
}

#[test]
fn negative_eigenvalue_components_are_dropped() {
    // M = 3·a aᵀ − 5·b bᵀ with orthonormal a, b: the SVD's first component (σ = 5) has
    // v = −u and must go; the second (σ = 3) stays.
    let basis = gaussian_matrix(6, 2, 3).qr().compute_thin_Q();
    let m = Mat::from_fn(6, 6, |i, j| {
        3.0 * basis[(i, 0)] * basis[(j, 0)] - 5.0 * basis[(i, 1)] * basis[(j, 1)]
    });
    let e = embed(m.as_ref(), &RandomizedSvd::new(2)).unwrap();
    assert_eq!(e.components, vec![1]);
    assert_eq!(e.dim(), 1);
    assert!((e.singular_values[0] - 3.0).abs() < 1e-10);
}

#[test]
fn rows_are_unit_length_and_empty_concepts_stay_zero() {
    let (counts, mut marginals, total) = block_counts(3, 5, 17);
    marginals[4] = 0.0; // concept 4 has no usable marginal
    let e = pmi_embedding(
        counts.as_ref(),
        CountLayout::Upper,
        &marginals,
        total,
        &SppmiParams::default(),
        &RandomizedSvd::new(4),
    )
    .unwrap();
    for i in 0..e.len() {
        let norm = e.vectors.row(i).norm_l2();
        if i == 4 {
            assert_eq!(norm, 0.0);
        } else {
            assert!((norm - 1.0).abs() < 1e-12, "row {i} has norm {norm}");
        }
    }
}

#[test]
fn dimension_above_the_vocabulary_is_refused() {
    let (counts, marginals, total) = block_counts(2, 3, 1);
    let err = pmi_embedding(
        counts.as_ref(),
        CountLayout::Upper,
        &marginals,
        total,
        &SppmiParams::default(),
        &RandomizedSvd::new(7),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PmiError::Svd(LinalgError::InvalidRank {
            rank: 7,
            rows: 6,
            cols: 6
        })
    );
}

/// Noisy upper-triangular co-occurrence counts of `blocks` groups of `size` concepts:
/// about 40 within a group, about 2 across, Gaussian noise of s.d. 3 on every released
/// cell and marginal (as the sites' Gaussian mechanism would add).
fn block_counts(blocks: usize, size: usize, seed: u64) -> (Mat<f64>, Vec<f64>, f64) {
    let n = blocks * size;
    let noise = gaussian_matrix(n, n + 1, seed);
    let clean = |i: usize, j: usize| if i / size == j / size { 40.0 } else { 2.0 };
    let counts = Mat::from_fn(n, n, |i, j| {
        if i <= j {
            clean(i, j) + 3.0 * noise[(i, j)]
        } else {
            0.0
        }
    });
    let marginals: Vec<f64> = (0..n)
        .map(|i| (0..n).map(|j| clean(i, j)).sum::<f64>() + 3.0 * noise[(i, n)])
        .collect();
    let total = marginals.iter().sum();
    (counts, marginals, total)
}

#[test]
fn concepts_of_the_same_block_are_closer_than_across_blocks() {
    let (blocks, size) = (4, 10);
    let (counts, marginals, total) = block_counts(blocks, size, 2026);
    for threshold in [0.0, 5.0] {
        let params = SppmiParams {
            count_threshold: threshold,
            shift: 1.0,
        };
        let e = pmi_embedding(
            counts.as_ref(),
            CountLayout::Upper,
            &marginals,
            total,
            &params,
            &RandomizedSvd::new(8).with_seed(3),
        )
        .unwrap();
        assert!(e.dim() >= blocks, "kept {} components", e.dim());
        let (mut within_min, mut across_max) = (f64::INFINITY, f64::NEG_INFINITY);
        for i in 0..e.len() {
            for j in (i + 1)..e.len() {
                let cos = e.cosine(i, j);
                if i / size == j / size {
                    within_min = within_min.min(cos);
                } else {
                    across_max = across_max.max(cos);
                }
            }
        }
        assert!(
            within_min > across_max + 0.5,
            "threshold {threshold}: within ≥ {within_min}, across ≤ {across_max}"
        );
    }
}

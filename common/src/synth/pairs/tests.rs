use faer::Mat;

use super::*;
use crate::tensorfile::{TensorData, read_safetensors_file};

fn small() -> PairsConfig {
    PairsConfig {
        dim_image: 12,
        dim_text: 10,
        rank: 3,
        classes: 4,
        ..PairsConfig::default()
    }
}

#[test]
fn sites_are_deterministic_and_independent() {
    let g = Generator::new(small()).unwrap();
    let a = g.site(1, 50, 20);
    assert_eq!(a, Generator::new(small()).unwrap().site(1, 50, 20));
    assert_ne!(a, g.site(2, 50, 20), "sites differ");
    let other = Generator::new(PairsConfig { seed: 2, ..small() }).unwrap();
    assert_ne!(a.image, other.site(1, 50, 20).image, "seeds differ");
    assert_ne!(g.site(0, 50, 20).noise, g.site(1, 50, 20).noise);
    assert_ne!(
        g.site(0, 50, 20).class_weights,
        g.site(1, 50, 20).class_weights
    );
}

#[test]
fn a_site_has_the_requested_shapes_and_fractions() {
    let g = Generator::new(small()).unwrap();
    let s = g.site(0, 200, 70);
    assert_eq!(s.pairs(), 200);
    assert_eq!((s.image.len(), s.text.len()), (200 * 12, 200 * 10));
    assert_eq!((s.image_only_rows(), s.text_only_rows()), (70, 70));
    assert_eq!(s.mismatched_pairs(), 20, "10 % of 200");
    assert_eq!(s.test_pairs(), 40, "20 % of 200");
    assert!(s.split.iter().all(|&v| v == 0 || v == 1));
    assert!(s.label.iter().all(|&l| (0..4).contains(&l)));
    assert!(s.image.iter().chain(&s.text).all(|v| v.is_finite()));
    let total: f64 = s.class_weights.iter().sum();
    assert!((total - 1.0).abs() < 1e-12);

    // Too few pairs to mismatch; no unpaired rows.
    let one = g.site(0, 1, 0);
    assert_eq!((one.pairs(), one.mismatched_pairs()), (1, 0));
    assert!(one.image_only.is_empty() && one.text_only.is_empty());
}

#[test]
fn the_truth_is_orthonormal_and_features_have_the_documented_scale() {
    let cfg = PairsConfig::default();
    let g = Generator::new(cfg.clone()).unwrap();
    for u in [&g.truth().u1, &g.truth().u2] {
        let gram = u.transpose() * u;
        for i in 0..cfg.rank {
            for j in 0..cfg.rank {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((gram[(i, j)] - want).abs() < 1e-12);
            }
        }
    }
    // E‖x‖² = E‖z‖² + ν² = Σ_k w_k ‖s μ_k‖² + s² w² r + ν² (1 + ν² for uniform weights).
    let s = g.site(2, 4000, 0);
    let means = &g.truth().class_means;
    let between: f64 = (0..cfg.classes)
        .map(|k| s.class_weights[k] * (0..cfg.rank).map(|j| means[(k, j)].powi(2)).sum::<f64>())
        .sum();
    let within = WITHIN_CLASS * WITHIN_CLASS / (1.0 + WITHIN_CLASS * WITHIN_CLASS);
    let uniform: f64 = (0..cfg.classes)
        .map(|k| (0..cfg.rank).map(|j| means[(k, j)].powi(2)).sum::<f64>())
        .sum::<f64>()
        / cfg.classes as f64;
    assert!((uniform + within - 1.0).abs() < 1e-12, "{uniform}");
    let mean_sq: f64 = s
        .image
        .chunks_exact(cfg.dim_image)
        .map(|row| row.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>())
        .sum::<f64>()
        / 4000.0;
    let want = between + within + s.noise * s.noise;
    assert!((mean_sq - want).abs() < 0.05 * want, "{mean_sq} vs {want}");
}

/// The top-r left and right singular vectors of the matched-pair cross-covariance are the
/// truth up to sampling error: the data follow the linear model and sin_theta sees it.
#[test]
fn the_cross_covariance_recovers_the_truth() {
    let cfg = PairsConfig::default();
    let g = Generator::new(cfg.clone()).unwrap();
    let s = g.site(0, 5000, 0);
    let (d1, d2) = (cfg.dim_image, cfg.dim_text);
    let x = matrix_from_rows(&s.image, 5000, d1);
    let y = matrix_from_rows(&s.text, 5000, d2);
    let cross: Mat<f64> = x.transpose() * &y;
    let svd = cross.thin_svd().unwrap();
    let left = svd.U().subcols(0, cfg.rank).to_owned();
    let right = svd.V().subcols(0, cfg.rank).to_owned();
    let e1 = sin_theta(g.truth().u1.as_ref(), left.as_ref()).unwrap();
    let e2 = sin_theta(g.truth().u2.as_ref(), right.as_ref()).unwrap();
    assert!(e1 < 0.08 && e2 < 0.08, "sin-theta {e1} {e2}");
    // A random basis is far off.
    let random = Generator::new(PairsConfig { seed: 9, ..cfg }).unwrap();
    let e = sin_theta(g.truth().u1.as_ref(), random.truth().u1.as_ref()).unwrap();
    assert!(e > 0.9, "{e}");
}

/// With the true encoders, nearest-prompt classification of held-out images is accurate
/// but not perfect: the class structure is there for zero-shot evaluation to measure.
#[test]
fn class_prompts_make_zero_shot_labels_learnable() {
    let cfg = PairsConfig::default();
    let g = Generator::new(cfg.clone()).unwrap();
    let s = g.site(1, 3000, 0);
    let prompts = g.class_prompts();
    let (u1, u2) = (&g.truth().u1, &g.truth().u2);
    let embed = |row: &[f32], u: &Mat<f64>| -> Vec<f64> {
        let v: Vec<f64> = (0..u.ncols())
            .map(|j| (0..u.nrows()).map(|a| u[(a, j)] * f64::from(row[a])).sum())
            .collect();
        let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        v.into_iter().map(|a| a / norm).collect()
    };
    let classes: Vec<Vec<f64>> = prompts
        .chunks_exact(cfg.dim_text)
        .map(|p| embed(p, u2))
        .collect();
    // Prompt k is U2 times the class mean.
    let k3 = &prompts[3 * cfg.dim_text..4 * cfg.dim_text];
    for (a, &v) in k3.iter().enumerate() {
        let want: f64 = (0..cfg.rank)
            .map(|j| u2[(a, j)] * g.truth().class_means[(3, j)])
            .sum();
        assert!((f64::from(v) - want).abs() < 1e-6);
    }
    let mut correct = 0;
    for (row, &label) in s.image.chunks_exact(cfg.dim_image).zip(&s.label) {
        let e = embed(row, u1);
        let best = (0..cfg.classes)
            .max_by(|&a, &b| {
                let da: f64 = classes[a].iter().zip(&e).map(|(p, q)| p * q).sum();
                let db: f64 = classes[b].iter().zip(&e).map(|(p, q)| p * q).sum();
                da.total_cmp(&db)
            })
            .unwrap();
        correct += usize::from(best as i64 == label);
    }
    let accuracy = correct as f64 / 3000.0;
    assert!((0.6..0.995).contains(&accuracy), "accuracy {accuracy}");
}

#[test]
fn files_decode_with_the_documented_tensors() {
    let g = Generator::new(small()).unwrap();
    let s = g.site(0, 30, 15);
    let file = read_safetensors_file(&to_safetensors(&s)).unwrap();
    let shape = |name: &str| file.get(name).unwrap().shape.clone();
    assert_eq!(shape("image"), vec![30, 12]);
    assert_eq!(shape("text"), vec![30, 10]);
    assert_eq!(shape("label"), vec![30]);
    assert_eq!(shape("split"), vec![30]);
    assert_eq!(shape("image_only"), vec![15, 12]);
    assert_eq!(shape("text_only"), vec![15, 10]);
    assert_eq!(
        file.get("image").unwrap().data,
        TensorData::F32(s.image.clone())
    );
    assert_eq!(
        file.get("split").unwrap().data,
        TensorData::I64(s.split.clone())
    );
    let none = read_safetensors_file(&to_safetensors(&g.site(0, 5, 0))).unwrap();
    assert!(none.get("image_only").is_none() && none.get("text_only").is_none());

    let prompts = read_safetensors_file(&class_prompts_safetensors(&g)).unwrap();
    assert_eq!(prompts.get("text").unwrap().shape, vec![4, 10]);
    assert_eq!(
        prompts.get("label").unwrap().data,
        TensorData::I64(vec![0, 1, 2, 3])
    );

    let truth = read_safetensors_file(&truth_safetensors(&g)).unwrap();
    assert_eq!(truth.get("U1").unwrap().shape, vec![12, 3]);
    assert_eq!(truth.get("U2").unwrap().shape, vec![10, 3]);
    assert_eq!(truth.get("class_means").unwrap().shape, vec![4, 3]);
    assert_eq!(truth.metadata["rank"], "3");
    let u1 = matrix_from_rows(&truth.get("U1").unwrap().to_f32(), 12, 3);
    let e = sin_theta(g.truth().u1.as_ref(), u1.as_ref()).unwrap();
    assert!(e < 1e-6, "{e}");
}

#[test]
fn invalid_configs_name_the_field() {
    let cases = [
        (
            PairsConfig { rank: 0, ..small() },
            "rank = 0: expected 1 to min(dim_image, dim_text) = 10",
        ),
        (
            PairsConfig {
                rank: 11,
                ..small()
            },
            "rank = 11",
        ),
        (
            PairsConfig {
                dim_image: 0,
                ..small()
            },
            "dim_image = 0",
        ),
        (
            PairsConfig {
                dim_text: 0,
                ..small()
            },
            "dim_text = 0",
        ),
        (
            PairsConfig {
                classes: 0,
                ..small()
            },
            "classes = 0",
        ),
        (
            PairsConfig {
                mismatch: 1.0,
                ..small()
            },
            "mismatch = 1: expected a fraction in [0, 1)",
        ),
        (
            PairsConfig {
                mismatch: f64::NAN,
                ..small()
            },
            "mismatch = NaN",
        ),
        (
            PairsConfig {
                test_fraction: -0.1,
                ..small()
            },
            "test_fraction = -0.1",
        ),
    ];
    for (cfg, want) in cases {
        let err = Generator::new(cfg).unwrap_err().to_string();
        assert!(err.starts_with(want), "{err}");
    }
}

#[test]
fn sin_theta_measures_the_largest_principal_angle() {
    let t = 0.3_f64;
    // In R^3: truth span{e1, e2}; learned span{e1, cos t e2 + sin t e3} (scaled, and with
    // a non-orthogonal second column): the largest angle is t.
    let truth = Mat::from_fn(3, 2, |i, j| f64::from(u8::from(i == j)));
    let learned = Mat::from_fn(3, 2, |i, j| match (i, j) {
        (0, 0) => 2.0,
        (0, 1) => 5.0,
        (1, 1) => t.cos(),
        (2, 1) => t.sin(),
        _ => 0.0,
    });
    let s = sin_theta(truth.as_ref(), learned.as_ref()).unwrap();
    assert!((s - t.sin()).abs() < 1e-12, "{s}");
    assert!(sin_theta(truth.as_ref(), truth.as_ref()).unwrap() < 1e-15);
    let e3 = Mat::from_fn(3, 1, |i, _| f64::from(u8::from(i == 2)));
    assert!((sin_theta(truth.as_ref(), e3.as_ref()).unwrap() - 1.0).abs() < 1e-15);
    // A learned subspace inside the truth is at distance 0 (one direction of two).
    let e1 = Mat::from_fn(3, 1, |i, _| f64::from(u8::from(i == 0)));
    assert!(sin_theta(truth.as_ref(), e1.as_ref()).unwrap() < 1e-15);
}

#[test]
fn sin_theta_refuses_bad_bases() {
    let truth = Mat::from_fn(3, 2, |i, j| f64::from(u8::from(i == j)));
    let wrong_rows = Mat::<f64>::zeros(4, 2);
    assert_eq!(
        sin_theta(truth.as_ref(), wrong_rows.as_ref()),
        Err(SubspaceError::Rows {
            truth: 3,
            learned: 4
        })
    );
    let dependent = Mat::from_fn(3, 2, |i, _| i as f64 + 1.0);
    assert_eq!(
        sin_theta(truth.as_ref(), dependent.as_ref()),
        Err(SubspaceError::RankDeficient {
            which: "learned",
            col: 1
        })
    );
    let mut nan = truth.clone();
    nan[(2, 1)] = f64::NAN;
    assert_eq!(
        sin_theta(truth.as_ref(), nan.as_ref()),
        Err(SubspaceError::NonFinite {
            which: "learned",
            row: 2,
            col: 1
        })
    );
    let wide = Mat::<f64>::zeros(3, 4);
    assert!(matches!(
        sin_theta(wide.as_ref(), truth.as_ref()),
        Err(SubspaceError::Columns { which: "truth", .. })
    ));
    let empty = Mat::<f64>::zeros(3, 0);
    assert!(sin_theta(truth.as_ref(), empty.as_ref()).is_err());
}

//! `silo-site check` on image–text pair datasets, run as a process: pairs, dimensions,
//! splits, classes and unpaired rows for a safetensors file and for two `.npy` files;
//! a file with a NaN refused naming the tensor and row, exit 2.

mod common;

use common::{check, text};
use std::path::{Path, PathBuf};

use silo_common::synth::pairs::{Generator, PairsConfig, to_safetensors};
use silo_common::tensorfile::{TensorRef, write_npy_f32, write_safetensors};

/// `site.toml` in `dir` with one `pairs` dataset per `(name, keys)`; `keys` are the
/// dataset's file keys as TOML lines (`path = "..."` or `image = ...` and `text = ...`).
fn write_config(dir: &Path, datasets: &[(&str, &str)]) -> PathBuf {
    let mut config = String::from(
        "name = \"hospital-a\"\ncoordinator = \"http://127.0.0.1:7443\"\ndata_dir = \"state\"\n\
         insecure = true\n\n[policy]\nallowed_kinds = [\"contrastive_svd\", \"dp_clip\"]\n\
         max_epsilon_per_job = 3.0\n",
    );
    for (name, keys) in datasets {
        config.push_str(&format!(
            "\n[[datasets]]\nname = \"{name}\"\nkind = \"pairs\"\n{keys}\n\
             privacy_unit = \"pair\"\nepsilon_budget = 8.0\ndelta = 1e-5\n"
        ));
    }
    let path = dir.join("site.toml");
    std::fs::write(&path, config).unwrap();
    path
}

#[test]
fn check_summarises_a_safetensors_and_an_npy_pairs_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let generator = Generator::new(PairsConfig {
        classes: 4,
        ..PairsConfig::default()
    })
    .unwrap();
    let site = generator.site(0, 120, 30);
    std::fs::write(dir.path().join("pairs.safetensors"), to_safetensors(&site)).unwrap();
    std::fs::write(
        dir.path().join("image.npy"),
        write_npy_f32(&[120, 64], &site.image),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("text.npy"),
        write_npy_f32(&[120, 48], &site.text),
    )
    .unwrap();
    let cfg = write_config(
        dir.path(),
        &[
            ("clip", "path = \"pairs.safetensors\""),
            ("features", "image = \"image.npy\"\ntext = \"text.npy\""),
        ],
    );
    let test = site.test_pairs();
    assert_eq!(test, 24);

    let out = check(&cfg, false);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let headline = format!(
        "clip (pairs): 120 pairs ({} train, {test} test)",
        120 - test
    );
    assert!(stdout.contains(&headline), "{headline}\n{stdout}");
    assert!(
        stdout.contains("  features       image 64-d F32, text 48-d F32"),
        "{stdout}"
    );
    assert!(stdout.contains("  labels         4 classes"), "{stdout}");
    assert!(
        stdout.contains("  unpaired       30 image-only, 30 text-only"),
        "{stdout}"
    );
    assert!(stdout.contains("pairs.safetensors"), "{stdout}");
    assert!(
        stdout.contains("features (pairs): 120 pairs (no split: all train)"),
        "{stdout}"
    );
    assert!(stdout.contains("  labels         none"), "{stdout}");
    assert!(
        stdout.contains("image.npy") && stdout.contains("text.npy"),
        "{stdout}"
    );
    assert!(
        !dir.path().join("state").exists(),
        "check must not create the data dir"
    );

    let out = check(&cfg, true);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &json["datasets"][0];
    assert_eq!(d["kind"], "pairs");
    assert_eq!(d["rows"], 120);
    assert_eq!(d["units"], 120);
    let p = &d["pairs"];
    assert_eq!(p["pairs"], 120);
    assert_eq!(
        (p["dim_image"].as_u64(), p["dim_text"].as_u64()),
        (Some(64), Some(48))
    );
    assert_eq!(p["train"].as_u64(), Some(120 - test as u64));
    assert_eq!(p["test"].as_u64(), Some(test as u64));
    assert_eq!(p["classes"], 4);
    assert_eq!(
        (p["image_only"].as_u64(), p["text_only"].as_u64()),
        (Some(30), Some(30))
    );
    assert_eq!(p["image_dtype"], "F32");
    assert_eq!(p["files"].as_array().unwrap().len(), 1);
    assert!(d["ehr"].is_null());
    let npy = &json["datasets"][1];
    assert!(npy["path"].is_null());
    assert_eq!(npy["pairs"]["test"], 0);
    assert_eq!(npy["pairs"]["has_split"], false);
    assert!(npy["pairs"]["classes"].is_null());
    assert_eq!(npy["pairs"]["files"].as_array().unwrap().len(), 2);
    assert!(json["errors"].as_array().unwrap().is_empty());
}

#[test]
fn check_refuses_non_finite_features_and_mismatched_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut image: Vec<f32> = (0..40).map(|i| i as f32 * 0.1).collect();
    image[17 * 2 + 1] = f32::NAN;
    let captions: Vec<f32> = vec![0.5; 20];
    std::fs::write(
        dir.path().join("nan.safetensors"),
        write_safetensors(&[
            (
                "image",
                TensorRef::F32 {
                    shape: &[20, 2],
                    data: &image,
                },
            ),
            (
                "text",
                TensorRef::F32 {
                    shape: &[20, 1],
                    data: &captions,
                },
            ),
        ]),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("image.npy"),
        write_npy_f32(&[3, 2], &[0.0; 6]),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("text.npy"),
        write_npy_f32(&[4, 1], &[0.0; 4]),
    )
    .unwrap();
    std::fs::write(dir.path().join("junk.safetensors"), b"not a tensor file").unwrap();
    let cfg = write_config(
        dir.path(),
        &[
            ("nan", "path = \"nan.safetensors\""),
            ("short", "image = \"image.npy\"\ntext = \"text.npy\""),
            ("junk", "path = \"junk.safetensors\""),
        ],
    );
    let out = check(&cfg, false);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    let errors: Vec<&str> = stderr.lines().collect();
    assert_eq!(errors.len(), 3, "{stderr}");
    assert!(
        errors[0].starts_with("error: dataset nan: ")
            && errors[0].ends_with(
                "nan.safetensors: tensor image row 17 has a non-finite value (NaN in column 1)"
            ),
        "{stderr}"
    );
    assert!(
        errors[1].starts_with("error: dataset short: ")
            && errors[1].ends_with("text.npy: tensor text has 4 rows but image has 3"),
        "{stderr}"
    );
    assert!(
        errors[2].starts_with("error: dataset junk: ")
            && errors[2].contains("junk.safetensors: the safetensors header length"),
        "{stderr}"
    );
    assert!(text(&out.stdout).contains("not ready: 3 problem(s)"));

    let out = check(&cfg, true);
    assert_eq!(out.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["datasets"][0]["pairs"].is_null());
    assert!(json["datasets"][0]["rows"].is_null());
    assert_eq!(json["errors"].as_array().unwrap().len(), 3);
}

//! `silo synth pairs` through the real binary: the files decode with the documented
//! tensors and shapes, the same seed gives the same bytes, the ground truth is
//! orthonormal, and bad flags are one line on stderr with exit code 2.

use std::path::Path;
use std::process::Command;

use silo_common::synth::pairs::{matrix_from_rows, sin_theta};
use silo_common::tensorfile::{SafetensorsFile, TensorData, read_safetensors_file};

/// Runs `silo` with `args`; (exit code, stdout, stderr).
fn silo(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_silo"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("silo runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn synth(dir: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "synth",
        "pairs",
        "--sites",
        "3",
        "--pairs",
        "150",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = silo(&args);
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    stdout
}

fn read(path: &Path) -> SafetensorsFile {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    read_safetensors_file(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn shape(file: &SafetensorsFile, name: &str) -> Vec<usize> {
    file.get(name)
        .unwrap_or_else(|| panic!("no tensor {name}"))
        .shape
        .clone()
}

#[test]
fn synth_pairs_writes_sites_prompts_and_truth() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = synth(dir.path(), &["--seed", "7"]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    let eval = read(&dir.path().join("eval.safetensors"));
    assert_eq!(shape(&eval, "image"), vec![150, 64]);
    assert_eq!(shape(&eval, "label"), vec![150]);
    assert!(
        lines[0].starts_with(
            "hospital-a: 150 pairs (120 train, 30 test, 15 mismatched), 75 image-only, \
             75 text-only, image 64-d, text 48-d"
        ),
        "{stdout}"
    );
    assert!(lines[2].starts_with("hospital-c: 150 pairs"), "{stdout}");

    for site in ["hospital-a", "hospital-b", "hospital-c"] {
        let file = read(&dir.path().join(site).join("pairs.safetensors"));
        assert_eq!(shape(&file, "image"), vec![150, 64]);
        assert_eq!(shape(&file, "text"), vec![150, 48]);
        assert_eq!(shape(&file, "label"), vec![150]);
        assert_eq!(shape(&file, "split"), vec![150]);
        assert_eq!(shape(&file, "image_only"), vec![75, 64]);
        assert_eq!(shape(&file, "text_only"), vec![75, 48]);
        let TensorData::I64(split) = &file.get("split").unwrap().data else {
            panic!("split is not I64");
        };
        assert_eq!(split.iter().filter(|&&s| s == 1).count(), 30);
        let TensorData::I64(labels) = &file.get("label").unwrap().data else {
            panic!("label is not I64");
        };
        assert!(labels.iter().all(|l| (0..10).contains(l)));
        assert!(
            file.get("image")
                .unwrap()
                .to_f32()
                .iter()
                .all(|v| v.is_finite())
        );
    }

    let prompts = read(&dir.path().join("class_prompts.safetensors"));
    assert_eq!(shape(&prompts, "text"), vec![10, 48]);
    assert_eq!(
        prompts.get("label").unwrap().data,
        TensorData::I64((0..10).collect())
    );

    let truth = read(&dir.path().join("truth.safetensors"));
    assert_eq!(shape(&truth, "U1"), vec![64, 8]);
    assert_eq!(shape(&truth, "U2"), vec![48, 8]);
    assert_eq!(truth.metadata["seed"], "7");
    let u1 = matrix_from_rows(&truth.get("U1").unwrap().to_f32(), 64, 8);
    let gram = u1.transpose() * &u1;
    for i in 0..8 {
        for j in 0..8 {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((gram[(i, j)] - want).abs() < 1e-5);
        }
    }
    assert!(sin_theta(u1.as_ref(), u1.as_ref()).unwrap() < 1e-6);

    // The same seed gives the same bytes; another seed other data.
    let again = tempfile::tempdir().unwrap();
    synth(again.path(), &["--seed", "7"]);
    let other = tempfile::tempdir().unwrap();
    synth(other.path(), &["--seed", "8"]);
    let bytes = |root: &Path| std::fs::read(root.join("hospital-b/pairs.safetensors")).unwrap();
    assert_eq!(bytes(dir.path()), bytes(again.path()));
    assert_ne!(bytes(dir.path()), bytes(other.path()));
}

#[test]
fn synth_pairs_honours_its_shape_flags() {
    let dir = tempfile::tempdir().unwrap();
    let stdout = synth(
        dir.path(),
        &[
            "--dim-image",
            "20",
            "--dim-text",
            "12",
            "--rank",
            "3",
            "--classes",
            "5",
            "--mismatch",
            "0",
            "--unpaired",
            "0",
        ],
    );
    assert!(stdout.contains("0 mismatched), 0 image-only, 0 text-only, image 20-d, text 12-d"));
    let file = read(&dir.path().join("hospital-a/pairs.safetensors"));
    assert_eq!(shape(&file, "image"), vec![150, 20]);
    assert_eq!(shape(&file, "text"), vec![150, 12]);
    assert!(file.get("image_only").is_none());
    let truth = read(&dir.path().join("truth.safetensors"));
    assert_eq!(shape(&truth, "U2"), vec![12, 3]);
    assert_eq!(
        shape(&read(&dir.path().join("class_prompts.safetensors")), "text"),
        vec![5, 12]
    );
}

#[test]
fn synth_pairs_refuses_bad_flags_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let cases: [(&[&str], &str); 8] = [
        (&["--sites", "0"], "--sites and --pairs must be at least 1"),
        (&["--pairs", "0"], "--sites and --pairs must be at least 1"),
        (
            &["--rank", "49"],
            "--rank 49: expected 1 to min(--dim-image, --dim-text) = 48",
        ),
        (&["--rank", "0"], "--rank 0"),
        (&["--dim-image", "0"], "--dim-image 0: expected at least 1"),
        (&["--classes", "0"], "--classes 0: expected at least 1"),
        (
            &["--mismatch", "1"],
            "--mismatch 1: expected a fraction in [0, 1)",
        ),
        (&["--test-fraction=-0.5"], "--test-fraction -0.5"),
    ];
    for (flags, want) in cases {
        let mut args = vec!["synth", "pairs", "--out", out];
        args.extend_from_slice(flags);
        let (code, stdout, stderr) = silo(&args);
        assert_eq!(code, Some(2), "{flags:?}: {stderr}");
        assert!(stdout.is_empty(), "{flags:?}: {stdout}");
        assert_eq!(stderr.lines().count(), 1, "{flags:?}: {stderr}");
        assert!(stderr.contains(want), "{flags:?}: {stderr}");
    }
    // Not a number at all: clap's own one-line error, also exit 2.
    let (code, _, stderr) = silo(&["synth", "pairs", "--out", out, "--mismatch", "lots"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--mismatch"), "{stderr}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written on bad input"
    );
}

//! The `silo` binary's contract for bad input (DESIGN section 9): a malformed job spec or
//! planner flag gets exit code 2 and exactly one line on stderr that names the file, field
//! or flag at fault — never a panic, never a connection attempt for a spec that cannot run.

use std::path::Path;
use std::process::Command;

/// Runs the `silo` binary in `cwd` with a clean environment; (exit code, stdout, stderr).
fn silo(cwd: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_silo"))
        .args(args)
        .current_dir(cwd)
        .env_remove("SILO_ADMIN_CONFIG")
        .env_remove("SILO_COORDINATOR")
        .env_remove("RUST_LOG")
        .output()
        .expect("silo runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts exit code 2, nothing on stdout and one `error:` line on stderr that contains
/// every needle (a flag also counts as named in words: `--sample-rate` as "sample rate").
fn assert_one_line_error(cwd: &Path, args: &[&str], needles: &[&str]) -> String {
    let (code, stdout, stderr) = silo(cwd, args);
    assert_eq!(
        code,
        Some(2),
        "{args:?}: exit {code:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.is_empty(), "{args:?}: stdout: {stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: stderr is not one line:\n{stderr}"
    );
    let line = lines[0];
    assert!(line.starts_with("error: "), "{args:?}: {line}");
    assert!(!line.contains("panicked"), "{args:?}: {line}");
    for needle in needles {
        let words = needle.trim_start_matches("--").replace('-', " ");
        assert!(
            line.contains(needle) || (needle.starts_with("--") && line.contains(&words)),
            "{args:?}: the error does not name {needle:?}: {line}"
        );
    }
    line.to_string()
}

/// A folder with a `silo-admin.toml` that looks valid but leads nowhere: specs are
/// validated before it is even read.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("silo-admin.toml"),
        "coordinator = \"https://127.0.0.1:9\"\n[tls]\nca = \"certs/ca.pem\"\n\
         cert = \"certs/alice.pem\"\nkey = \"certs/alice.key\"\n",
    )
    .unwrap();
    dir
}

const GOOD_SPEC: &str = "kind = \"dp_stats\"\nname = \"mean-age\"\ndataset = \"visits\"\n\
    sites = \"all\"\nmin_sites = 2\n[privacy]\nepsilon = 0.5\n\
    [params]\nstatistic = \"mean\"\ncolumn = \"age\"\nlower = 0.0\nupper = 110.0\n";

/// Writes `text` as `name` in `dir` and runs `silo job submit name --admin-config …`.
fn submit_spec(dir: &Path, name: &str, text: &str, needles: &[&str]) -> String {
    std::fs::write(dir.join(name), text).unwrap();
    assert_one_line_error(
        dir,
        &["job", "submit", name, "--admin-config", "silo-admin.toml"],
        needles,
    )
}

#[test]
fn a_malformed_job_spec_is_one_line_naming_file_and_field() {
    let dir = workspace();
    let d = dir.path();
    let cases: [(&str, String, &[&str]); 6] = [
        (
            "negative-epsilon.toml",
            GOOD_SPEC.replace("epsilon = 0.5", "epsilon = -1.0"),
            &["privacy.epsilon", "-1"],
        ),
        (
            "no-sites.toml",
            GOOD_SPEC.replace("min_sites = 2", "min_sites = 0"),
            &["min_sites"],
        ),
        (
            "bounds.toml",
            GOOD_SPEC.replace("upper = 110.0", "upper = -5.0"),
            &["params.lower"],
        ),
        (
            "colour.toml",
            format!("{GOOD_SPEC}colour = \"blue\"\n"),
            &["colour"],
        ),
        (
            "no-dataset.toml",
            GOOD_SPEC.replace("dataset = \"visits\"\n", ""),
            &["dataset"],
        ),
        (
            "histogram.toml",
            GOOD_SPEC.replace("\"mean\"", "\"histogram\""),
            &["params.bins"],
        ),
    ];
    for (file, text, fields) in cases {
        let line = submit_spec(d, file, &text, fields);
        assert!(
            line.contains(file),
            "the error does not name the file: {line}"
        );
    }

    // Every bad field at once, still on one line.
    let text = GOOD_SPEC
        .replace("min_sites = 2", "min_sites = 0")
        .replace("epsilon = 0.5", "epsilon = 0.0");
    submit_spec(
        d,
        "two-problems.toml",
        &text,
        &["two-problems.toml", "min_sites", "privacy.epsilon"],
    );

    // Broken TOML and a missing file.
    submit_spec(
        d,
        "broken.toml",
        "kind = \"dp_stats\"\n[privacy\nepsilon = 1\n",
        &["broken.toml"],
    );
    assert_one_line_error(
        d,
        &[
            "job",
            "submit",
            "missing.toml",
            "--admin-config",
            "silo-admin.toml",
        ],
        &["missing.toml"],
    );
}

#[test]
fn a_misspelt_top_level_spec_key_is_refused() {
    let dir = workspace();
    let text = GOOD_SPEC.replace("sites = \"all\"", "sitez = [\"hospital-a\"]");
    submit_spec(
        dir.path(),
        "misspelt.toml",
        &text,
        &["misspelt.toml", "sitez"],
    );
}

#[test]
fn a_mistyped_spec_field_is_named() {
    let dir = workspace();
    let text = GOOD_SPEC.replace("epsilon = 0.5", "epsilon = \"lots\"");
    submit_spec(
        dir.path(),
        "typed.toml",
        &text,
        &["typed.toml", "privacy.epsilon"],
    );
    let text = GOOD_SPEC.replace("lower = 0.0", "lower = \"zero\"");
    submit_spec(
        dir.path(),
        "typed-params.toml",
        &text,
        &["typed-params.toml", "params.lower"],
    );
}

#[test]
fn a_job_spec_with_broken_toml_names_the_line() {
    let dir = workspace();
    submit_spec(
        dir.path(),
        "broken.toml",
        "kind = \"dp_stats\"\n[privacy\nepsilon = 1\n",
        &["broken.toml", "line 2"],
    );
}

#[test]
fn bad_privacy_planner_input_is_one_line_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let gaussian = ["privacy", "epsilon", "--mechanism", "gaussian"];
    let subsampled = [
        "privacy",
        "epsilon",
        "--mechanism",
        "subsampled-gaussian",
        "--noise-multiplier",
        "1.0",
        "--steps",
        "100",
    ];
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        // σ ≤ 0
        (
            [
                &gaussian[..],
                &["--noise-multiplier", "0", "--delta", "1e-5"],
            ]
            .concat(),
            &["--noise-multiplier", "0"],
        ),
        (
            [
                &gaussian[..],
                &["--noise-multiplier", "-1.5", "--delta", "1e-5"],
            ]
            .concat(),
            &["--noise-multiplier", "-1.5"],
        ),
        (
            [
                &gaussian[..],
                &["--noise-multiplier", "abc", "--delta", "1e-5"],
            ]
            .concat(),
            &["--noise-multiplier", "abc"],
        ),
        // q outside (0, 1]
        (
            [
                &subsampled[..],
                &["--sample-rate", "1.5", "--delta", "1e-5"],
            ]
            .concat(),
            &["--sample-rate", "1.5"],
        ),
        (
            [&subsampled[..], &["--sample-rate", "0", "--delta", "1e-5"]].concat(),
            &["--sample-rate"],
        ),
        // δ outside (0, 1)
        (
            [&gaussian[..], &["--noise-multiplier", "1", "--delta", "1"]].concat(),
            &["--delta", "1"],
        ),
        (
            [
                &gaussian[..],
                &["--noise-multiplier", "1", "--delta", "1.5"],
            ]
            .concat(),
            &["--delta", "1.5"],
        ),
        (
            [&gaussian[..], &["--noise-multiplier", "1", "--delta", "0"]].concat(),
            &["--delta"],
        ),
        // a flag the mechanism needs, or one it does not take
        (
            [&gaussian[..], &["--delta", "1e-5"]].concat(),
            &["--noise-multiplier"],
        ),
        (
            [&subsampled[..], &["--delta", "1e-5"]].concat(),
            &["--sample-rate"],
        ),
        (
            vec![
                "privacy",
                "epsilon",
                "--mechanism",
                "laplace",
                "--delta",
                "1e-5",
            ],
            &["--scale"],
        ),
        (
            vec![
                "privacy",
                "epsilon",
                "--mechanism",
                "laplace",
                "--scale",
                "0",
                "--delta",
                "1e-5",
            ],
            &["--scale"],
        ),
        (
            [
                &gaussian[..],
                &[
                    "--noise-multiplier",
                    "1",
                    "--sample-rate",
                    "0.1",
                    "--delta",
                    "1e-5",
                ],
            ]
            .concat(),
            &["--sample-rate"],
        ),
        (
            vec![
                "privacy",
                "epsilon",
                "--mechanism",
                "cauchy",
                "--delta",
                "1e-5",
            ],
            &["--mechanism", "cauchy"],
        ),
        // the calibrator takes the same care
        (
            vec!["privacy", "sigma", "--epsilon", "1", "--delta", "1"],
            &["--delta"],
        ),
        (
            vec!["privacy", "sigma", "--epsilon", "0", "--delta", "1e-5"],
            &["epsilon"],
        ),
        (
            vec![
                "privacy",
                "sigma",
                "--epsilon",
                "1",
                "--delta",
                "1e-5",
                "--sample-rate",
                "2",
                "--steps",
                "10",
            ],
            &["--sample-rate"],
        ),
    ];
    for (args, needles) in cases {
        assert_one_line_error(d, &args, needles);
    }

    // The same command with good input works (the errors above are about the input).
    let (code, stdout, stderr) = silo(
        d,
        &[
            &gaussian[..],
            &["--noise-multiplier", "1", "--delta", "1e-5", "--json"],
        ]
        .concat(),
    );
    assert_eq!(code, Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(json["epsilon"].as_f64().unwrap() > 0.0, "{json}");
}

#[test]
fn a_missing_required_planner_flag_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_one_line_error(
        d,
        &[
            "privacy",
            "epsilon",
            "--mechanism",
            "gaussian",
            "--noise-multiplier",
            "1",
        ],
        &["--delta"],
    );
    assert_one_line_error(
        d,
        &[
            "privacy",
            "epsilon",
            "--noise-multiplier",
            "1",
            "--delta",
            "1e-5",
        ],
        &["--mechanism"],
    );
    assert_one_line_error(d, &["privacy", "sigma", "--delta", "1e-5"], &["--epsilon"]);
}

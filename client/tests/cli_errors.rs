//! `silo-site check` on malformed input, as a process: exit code 2 and exactly one line on
//! stderr naming the file and what is wrong (DESIGN section 9). Complements `cli.rs`,
//! which covers a bad field value in `site.toml` for every subcommand.

mod common;

use std::process::Output;

use common::Site;

fn check(site: &Site) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_silo-site"))
        .args(["check", "--config", site.config().to_str().unwrap()])
        .env_remove("RUST_LOG")
        .env_remove("SILO_DATA_DIR")
        .env_remove("SILO_COORDINATOR")
        .env_remove("SILO_NAME")
        .env_remove("SILO_INSECURE")
        .output()
        .unwrap()
}

/// Asserts exit 2 and one `error:` line on stderr containing every needle; returns it.
fn one_error_line(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr is not one line:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "the error does not name {needle:?}: {stderr}"
        );
    }
    lines[0].to_string()
}

#[test]
fn a_csv_without_its_privacy_unit_column_is_one_line_naming_file_and_column() {
    let site = Site::new("http://127.0.0.1:7443", 4.0);
    let csv = site.path().join("data/visits.csv");
    std::fs::write(&csv, "patient,age\n1,30\n2,41\n").unwrap();
    let out = check(&site);
    one_error_line(&out, &["visits", "visits.csv", "\"person_id\""]);
    // The dry run created nothing.
    assert!(!site.path().join("state").exists());
}

#[test]
fn a_missing_or_empty_csv_is_one_line_naming_the_file() {
    let site = Site::new("http://127.0.0.1:7443", 4.0);
    let csv = site.path().join("data/visits.csv");
    std::fs::write(&csv, "").unwrap();
    one_error_line(&check(&site), &["visits.csv"]);
    std::fs::remove_file(&csv).unwrap();
    one_error_line(&check(&site), &["visits.csv"]);
}

#[test]
fn a_site_toml_that_is_not_toml_names_the_line() {
    let site = Site::new("http://127.0.0.1:7443", 4.0);
    let original = std::fs::read_to_string(site.config()).unwrap();
    site.write_config(&original.replace("[policy]", "[policy"));
    one_error_line(&check(&site), &["site.toml", "line "]);
}

#[test]
fn a_misspelt_site_toml_key_is_named_not_ignored() {
    let site = Site::new("http://127.0.0.1:7443", 4.0);
    let original = std::fs::read_to_string(site.config()).unwrap();
    site.write_config(&original.replace("epsilon_budget = 4", "epsilon_bugdet = 4"));
    let out = check(&site);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // Two problems, one line each: the unknown key, and the budget it was meant to set.
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with("error: ")
            && lines[0].contains("site.toml: datasets[0].epsilon_bugdet: unknown key"),
        "{stderr}"
    );
    assert!(
        lines[1].contains("site.toml: datasets[0].epsilon_budget: missing"),
        "{stderr}"
    );
}

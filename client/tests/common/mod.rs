//! Shared fixtures for the site daemon's integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A temporary site folder with `site.toml` and `data/visits.csv`.
pub struct Site {
    pub dir: tempfile::TempDir,
}

pub const VISITS: &str = "person_id,age\n1,30\n1,31\n2,45\n3,NA\n4,70\n5,12\n6,88\n7,54\n";

impl Site {
    pub fn new(coordinator: &str, budget: f64) -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/visits.csv"), VISITS).unwrap();
        let site = Site { dir };
        site.write_config(&format!(
            r#"name = "hospital-a"
coordinator = "{coordinator}"
data_dir = "state"
insecure = true

[policy]
allowed_kinds = ["dp_stats"]
max_epsilon_per_job = 2.0

[[datasets]]
name = "visits"
kind = "csv"
path = "data/visits.csv"
privacy_unit = "person_id"
epsilon_budget = {budget}
delta = 1e-6
columns = ["age"]
"#
        ));
        site
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config(), text).unwrap();
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("site.toml")
    }
}

/// A dp_stats job spec as JSON bytes.
pub fn spec_json(epsilon: f64, params: &str) -> Vec<u8> {
    let text = format!(
        "kind = \"dp_stats\"\nname = \"t\"\ndataset = \"visits\"\n[privacy]\nepsilon = {epsilon}\n[params]\n{params}\n"
    );
    silo_common::spec::JobSpec::parse_toml(&text, "spec.toml")
        .unwrap()
        .to_json()
}

/// A dp_stats task for dataset `visits`.
pub fn task(task_id: &str, epsilon: f64, params: &str) -> silo_proto::Task {
    silo_proto::Task {
        job_id: "job-1".into(),
        task_id: task_id.into(),
        kind: "dp_stats".into(),
        round: 0,
        dataset: "visits".into(),
        spec_json: spec_json(epsilon, params),
        params_json: Vec::new(),
        payload: Vec::new(),
    }
}

/// Runs the `silo-site` binary with `args`, without the environment overrides a
/// developer's shell might carry.
pub fn silo_site(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_silo-site"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("SILO_DATA_DIR")
        .env_remove("SILO_COORDINATOR")
        .env_remove("SILO_NAME")
        .env_remove("SILO_INSECURE")
        .output()
        .unwrap()
}

/// `silo-site check --config CONFIG [--json]`.
pub fn check(config: &Path, json: bool) -> std::process::Output {
    let mut args = vec!["check", "--config", config.to_str().unwrap()];
    if json {
        args.push("--json");
    }
    silo_site(&args)
}

/// Process output as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

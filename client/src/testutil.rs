//! Fixtures for unit tests: a site folder with a CSV dataset and a config.

use std::path::{Path, PathBuf};

use crate::config::SiteConfig;

/// A temporary site folder (removed on drop).
pub struct Site {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
}

pub const VISITS: &str = "person_id,age,visit\n1,30,a\n1,31,b\n2,45,c\n3,NA,d\n4,70,e\n5,12,f\n";

/// The standard site config (insecure loopback coordinator; one csv dataset).
pub fn config_text(budget: f64, extra_policy: &str) -> String {
    format!(
        r#"
name = "hospital-a"
coordinator = "http://127.0.0.1:9"
data_dir = "state"
insecure = true
[policy]
allowed_kinds = ["dp_stats"]
max_epsilon_per_job = 2.0
{extra_policy}
[[datasets]]
name = "visits"
kind = "csv"
path = "data/visits.csv"
privacy_unit = "person_id"
epsilon_budget = {budget}
delta = 1e-6
"#
    )
}

impl Site {
    pub fn new(config: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/visits.csv"), VISITS).unwrap();
        let config_path = dir.path().join("site.toml");
        std::fs::write(&config_path, config).unwrap();
        Site { dir, config_path }
    }

    pub fn standard(budget: f64) -> Site {
        Site::new(&config_text(budget, ""))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> SiteConfig {
        SiteConfig::load_with_env(&self.config_path, |_| None).unwrap()
    }
}

/// A dp_stats spec as JSON bytes.
pub fn spec_json(epsilon: f64, params: &str) -> Vec<u8> {
    let text = format!(
        "kind = \"dp_stats\"\nname = \"t\"\ndataset = \"visits\"\n[privacy]\nepsilon = {epsilon}\n[params]\n{params}\n"
    );
    silo_common::spec::JobSpec::parse_toml(&text, "spec.toml")
        .unwrap()
        .to_json()
}

/// A dp_stats task.
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

//! Tests of the dp_stats state machine: release checks, attempts and the report.

use serde_json::{Value, json};
use silo_common::spec::JobSpec;

use super::DpStats;
use crate::jobs::{FinalizeContext, JobKind};
use crate::store::ChargeRecord;

fn spec(params: &str) -> JobSpec {
    JobSpec::parse_toml(
        &format!(
            "kind = \"dp_stats\"\nname = \"t\"\ndataset = \"visits\"\nmin_sites = 1\n\
             [privacy]\nepsilon = 0.5\n[params]\n{params}\n"
        ),
        "test",
    )
    .unwrap()
}

fn count_release(value: f64, epsilon: f64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "statistic": "count", "mechanism": "laplace", "epsilon": epsilon, "delta": null,
        "column": null, "lower": null, "upper": null, "max_rows_per_unit": 1,
        "count": {"value": value, "noise_std": 2.0},
    }))
    .unwrap()
}

fn charge(site: &str, epsilon: f64) -> ChargeRecord {
    ChargeRecord {
        site: site.into(),
        seq: 1,
        dataset: "visits".into(),
        job_id: "job-1".into(),
        task_id: "t".into(),
        mechanism_json: "{}".into(),
        epsilon,
        delta: 0.0,
        epsilon_spent: epsilon,
        recorded_at: String::new(),
        prev_hash: String::new(),
        hash: format!("{site}-h"),
    }
}

#[test]
fn pools_the_round_and_reports_per_site_and_pooled() {
    let spec = spec("statistic = \"count\"");
    let mut job = DpStats::new(&spec).unwrap();
    assert_eq!(job.rounds(), 1);
    let plan = job.plan_round(1).unwrap();
    let params: Value = serde_json::from_slice(&plan.params_json).unwrap();
    assert_eq!(params["params"]["statistic"], "count");
    job.on_result(1, "a", &count_release(100.0, 0.5)).unwrap();
    job.on_result(1, "b", &count_release(50.0, 0.5)).unwrap();
    job.end_round(1).unwrap();
    let charges = [charge("a", 0.5), charge("b", 0.5), charge("b", 0.5)];
    let out = job
        .finalize(&FinalizeContext {
            job_id: "job-1",
            spec: &spec,
            charges: &charges,
        })
        .unwrap();
    assert_eq!(out.files[0].0, "report.json");
    let report: Value = serde_json::from_slice(&out.files[0].1).unwrap();
    assert_eq!(report["kind"], "dp_stats");
    assert_eq!(report["sites"], json!(["a", "b"]));
    assert_eq!(report["epsilon_spent"], json!({"a": 0.5, "b": 1.0}));
    assert_eq!(report["pooled"]["count"]["value"], 150.0);
    let std = report["pooled"]["count"]["noise_std"].as_f64().unwrap();
    assert!((std - 8f64.sqrt()).abs() < 1e-12, "{std}");
    assert_eq!(report["per_site"]["a"]["count"]["value"], 100.0);
    assert_eq!(out.summary["pooled"]["count"]["value"], 150.0);
}

#[test]
fn an_aborted_attempt_is_forgotten() {
    let spec = spec("statistic = \"count\"");
    let mut job = DpStats::new(&spec).unwrap();
    job.on_result(1, "a", &count_release(100.0, 0.5)).unwrap();
    job.abort_round(1);
    assert!(
        job.end_round(1).is_err(),
        "nothing absorbed after the abort"
    );
    job.on_result(1, "b", &count_release(7.0, 0.5)).unwrap();
    job.end_round(1).unwrap();
    let out = job
        .finalize(&FinalizeContext {
            job_id: "job-1",
            spec: &spec,
            charges: &[],
        })
        .unwrap();
    assert_eq!(out.summary["sites"], json!(["b"]));
}

#[test]
fn releases_that_do_not_answer_the_job_are_refused() {
    let count = spec("statistic = \"count\"");
    let mut job = DpStats::new(&count).unwrap();
    let err = job.on_result(1, "a", &count_release(1.0, 0.9)).unwrap_err();
    assert!(err.to_string().contains("epsilon"), "{err}");
    let err = job.on_result(1, "a", b"not json").unwrap_err();
    assert!(err.to_string().starts_with("invalid result"), "{err}");
    let nan = br#"{"statistic":"count","mechanism":"laplace","epsilon":0.5,"delta":null,"column":null,"lower":null,"upper":null,"max_rows_per_unit":1,"count":{"value":1e999,"noise_std":1.0}}"#;
    assert!(job.on_result(1, "a", nan).is_err());

    let hist = spec(
        "statistic = \"histogram\"\ncolumn = \"age\"\nlower = 0.0\nupper = 100.0\nbins = [0.0, 50.0, 100.0]",
    );
    let mut job = DpStats::new(&hist).unwrap();
    let other_bins = serde_json::to_vec(&json!({
        "statistic": "histogram", "mechanism": "laplace", "epsilon": 0.5, "delta": null,
        "column": "age", "lower": 0.0, "upper": 100.0, "max_rows_per_unit": 1,
        "bins": [0.0, 10.0, 100.0],
        "histogram": [{"value": 1.0, "noise_std": 1.0}, {"value": 2.0, "noise_std": 1.0}],
    }))
    .unwrap();
    let err = job.on_result(1, "a", &other_bins).unwrap_err();
    assert!(err.to_string().contains("bins"), "{err}");
}

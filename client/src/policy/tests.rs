use silo_common::privacy::PrivacyEvent;

use super::*;
use crate::ledger::NewCharge;
use crate::testutil::{Site, config_text, spec_json};

fn request<'a>(kind: &'a str, spec: &'a [u8]) -> TaskRequest<'a> {
    TaskRequest {
        task_id: "t1",
        kind,
        dataset: "visits",
        spec_json: spec,
    }
}

fn refused(r: Result<Admitted<'_>, Refusal>) -> String {
    match r {
        Ok(_) => panic!("expected a refusal"),
        Err(r) => {
            assert!(!r.reason.contains('\n'), "one line: {}", r.reason);
            r.reason
        }
    }
}

#[test]
fn admits_a_valid_task() {
    let site = Site::standard(4.0);
    let config = site.config();
    let spec = spec_json(0.5, "statistic = \"count\"");
    let a = admit(&config, &request("dp_stats", &spec)).unwrap();
    assert_eq!(a.dataset.name, "visits");
    assert_eq!(a.spec.privacy.epsilon, 0.5);
}

#[test]
fn refuses_kinds_that_are_not_allowed_or_unknown() {
    let site = Site::standard(4.0);
    let config = site.config();
    let spec = spec_json(0.5, "statistic = \"count\"");
    let r = refused(admit(&config, &request("pmi_svd", &spec)));
    assert!(
        r.contains("pmi_svd is not allowed") && r.contains("allowed_kinds"),
        "{r}"
    );
    let r = refused(admit(&config, &request("sql", &spec)));
    assert!(r.contains("unknown job kind"), "{r}");
}

#[test]
fn refuses_epsilon_above_the_per_job_cap() {
    let site = Site::standard(4.0);
    let config = site.config();
    let spec = spec_json(2.5, "statistic = \"count\"");
    let r = refused(admit(&config, &request("dp_stats", &spec)));
    assert!(
        r.contains("epsilon 2.5") && r.contains("cap of 2") && r.contains("max_epsilon_per_job"),
        "{r}"
    );
}

#[test]
fn refuses_invalid_specs_with_the_field() {
    let site = Site::standard(4.0);
    let config = site.config();
    let r = refused(admit(&config, &request("dp_stats", b"{not json")));
    assert!(r.starts_with("invalid job spec"), "{r}");
    // Valid JSON, invalid params (sum without bounds).
    let mut spec: serde_json::Value =
        serde_json::from_slice(&spec_json(0.5, "statistic = \"count\"")).unwrap();
    spec["params"] = serde_json::json!({"statistic": "sum", "column": "age"});
    let bytes = serde_json::to_vec(&spec).unwrap();
    let r = refused(admit(&config, &request("dp_stats", &bytes)));
    assert!(r.contains("params.lower"), "{r}");
}

#[test]
fn refuses_unknown_datasets_and_datasets_of_the_wrong_kind() {
    let site = Site::standard(4.0);
    let config = site.config();
    let mut spec: serde_json::Value =
        serde_json::from_slice(&spec_json(0.5, "statistic = \"count\"")).unwrap();
    spec["dataset"] = "labs".into();
    let bytes = serde_json::to_vec(&spec).unwrap();
    let req = TaskRequest {
        task_id: "t1",
        kind: "dp_stats",
        dataset: "labs",
        spec_json: &bytes,
    };
    let r = refused(admit(&config, &req));
    assert!(
        r.contains("\"labs\" is not served") && r.contains("visits"),
        "{r}"
    );

    let text = format!(
        "{}\n[[datasets]]\nname = \"ehr\"\nkind = \"omop\"\npath = \"data\"\nprivacy_unit = \"person_id\"\nepsilon_budget = 1.0\ndelta = 1e-6\n",
        config_text(4.0, "")
    );
    let site = Site::new(&text);
    let config = site.config();
    spec["dataset"] = "ehr".into();
    let bytes = serde_json::to_vec(&spec).unwrap();
    let req = TaskRequest {
        task_id: "t1",
        kind: "dp_stats",
        dataset: "ehr",
        spec_json: &bytes,
    };
    let r = refused(admit(&config, &req));
    assert!(
        r.contains("is a omop dataset") && r.contains("needs a csv dataset"),
        "{r}"
    );
}

fn laplace(eps: f64) -> Vec<Composition> {
    vec![Composition::new(
        PrivacyEvent::laplace(1.0 / eps).unwrap(),
        1,
    )]
}

#[test]
fn refuses_noise_below_the_floor() {
    let site = Site::new(&config_text(4.0, "min_noise_multiplier = 1.5"));
    let config = site.config();
    let ledger = Ledger::open(&site.path().join("l.sqlite")).unwrap();
    let d = config.dataset("visits").unwrap();
    let r = check_release(&config, &ledger, d, "t1", &laplace(1.0))
        .unwrap_err()
        .reason;
    assert!(
        r.contains("below") && r.contains("min_noise_multiplier"),
        "{r}"
    );
    assert!(check_release(&config, &ledger, d, "t1", &laplace(0.5)).is_ok());
}

#[test]
fn refuses_a_task_already_in_the_ledger_and_a_release_over_budget_without_writing() {
    let site = Site::standard(1.0);
    let config = site.config();
    let mut ledger = Ledger::open(&site.path().join("l.sqlite")).unwrap();
    let d = config.dataset("visits").unwrap();
    let ok = check_release(&config, &ledger, d, "t1", &laplace(0.8)).unwrap();
    assert_eq!(ok.spent, 0.0);
    ledger
        .charge(&NewCharge {
            job_id: "j".into(),
            task_id: "t1".into(),
            dataset: "visits".into(),
            mechanism: "laplace".into(),
            parameters: serde_json::json!({}),
            sensitivity: serde_json::json!({}),
            guarantee: String::new(),
            events: laplace(0.8),
            delta: d.delta,
            epsilon_budget: d.epsilon_budget,
        })
        .unwrap();
    let r = check_release(&config, &ledger, d, "t1", &laplace(0.1))
        .unwrap_err()
        .reason;
    assert!(r.starts_with("already executed"), "{r}");
    let head = ledger.head().unwrap();
    let r = check_release(&config, &ledger, d, "t2", &laplace(0.5))
        .unwrap_err()
        .reason;
    assert!(
        r.contains("budget exhausted on dataset visits") && r.contains("spent 0.8000 of 1"),
        "{r}"
    );
    assert_eq!(ledger.head().unwrap(), head, "a refusal writes nothing");
    // What remains can still be spent.
    assert!(check_release(&config, &ledger, d, "t2", &laplace(0.2)).is_ok());
}

//! The `silo-site` command line, run as a process: `check`, `ledger`, `ledger verify`,
//! and the exit-2 contract for bad input.

mod common;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use common::{Site, silo_site, task, text};
use silo_client::config::SiteConfig;
use silo_client::executor::{Executor, Outcome};
use silo_client::ledger::Ledger;

/// Runs one real (secure-noise) task through the library so the ledger has an entry.
fn charge_one(site: &Site, task_id: &str, epsilon: f64) {
    let config = SiteConfig::load(&site.config()).unwrap();
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let ledger = Ledger::open(&config.ledger_path()).unwrap();
    let ex = Executor::new(Arc::new(config), Arc::new(Mutex::new(ledger)));
    let out = ex.execute(
        &task(task_id, epsilon, "statistic = \"count\""),
        &AtomicBool::new(false),
        &mut |_| {},
    );
    assert!(matches!(out, Outcome::Done { .. }), "{out:?}");
}

#[test]
fn check_prints_what_would_be_registered_and_creates_nothing() {
    let site = Site::new("http://127.0.0.1:7443", 4.0);
    let cfg = site.config();
    let out = silo_site(&["check", "--config", cfg.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("site hospital-a"), "{stdout}");
    assert!(stdout.contains("visits"), "{stdout}");
    assert!(stdout.contains("person_id,age"), "{stdout}");
    assert!(stdout.contains("nothing was sent"), "{stdout}");
    assert!(
        !site.path().join("state").exists(),
        "check must not create the data dir"
    );

    let out = silo_site(&["check", "--config", cfg.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &json["datasets"][0];
    assert_eq!(
        (d["rows"].as_u64(), d["units"].as_u64()),
        (Some(8), Some(7))
    );
    assert_eq!(d["epsilon_spent"], 0.0);
    assert_eq!(d["epsilon_remaining"], 4.0);
}

#[test]
fn check_reports_every_data_problem_and_exits_2() {
    let site = Site::new("http://127.0.0.1:7443", 4.0);
    std::fs::write(site.path().join("data/visits.csv"), "patient,age\n1,30\n").unwrap();
    let cfg = site.config();
    let out = silo_site(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("error: dataset visits:") && stderr.contains("\"person_id\""),
        "{stderr}"
    );
    assert!(text(&out.stdout).contains("not ready: 1 problem"));

    // Every problem is listed: add a second dataset whose declared column is missing.
    std::fs::write(
        site.path().join("data/labs.csv"),
        "person_id,value
1,3
",
    )
    .unwrap();
    let config = std::fs::read_to_string(&cfg).unwrap()
        + "\n[[datasets]]\nname = \"labs\"\nkind = \"csv\"\npath = \"data/labs.csv\"\n\
           privacy_unit = \"person_id\"\nepsilon_budget = 1.0\ndelta = 1e-6\ncolumns = [\"glucose\"]\n";
    site.write_config(&config);
    let out = silo_site(&["check", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 2, "{stderr}");
    assert!(stderr.contains("declared column \"glucose\""), "{stderr}");
}

#[test]
fn a_bad_config_is_one_line_naming_file_and_field_with_exit_2() {
    let site = Site::new("http://127.0.0.1:7443", 4.0);
    let cfg = site.config();
    let original = std::fs::read_to_string(&cfg).unwrap();
    site.write_config(&original.replace("epsilon_budget = 4", "epsilon_budget = -4"));
    for args in [
        vec!["check", "--config", cfg.to_str().unwrap()],
        vec!["ledger", "--config", cfg.to_str().unwrap()],
        vec!["ledger", "verify", "--config", cfg.to_str().unwrap()],
        vec!["serve", "--config", cfg.to_str().unwrap()],
    ] {
        let out = silo_site(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: {stderr}");
        assert!(lines[0].starts_with("error: "), "{stderr}");
        assert!(
            lines[0].contains("site.toml") && lines[0].contains("datasets[0].epsilon_budget"),
            "{stderr}"
        );
        assert!(text(&out.stdout).is_empty());
    }
    let out = silo_site(&[
        "check",
        "--config",
        site.path().join("missing.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("missing.toml"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn ledger_shows_charges_and_budgets_and_verify_detects_tampering() {
    let site = Site::new("http://127.0.0.1:7443", 4.0);
    let cfg = site.config();
    let cfg = cfg.to_str().unwrap();

    // Empty ledger: nothing to show, the chain trivially holds.
    let out = silo_site(&["ledger", "--config", cfg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("no charges"));
    assert_eq!(
        silo_site(&["ledger", "verify", "--config", cfg])
            .status
            .code(),
        Some(0)
    );

    charge_one(&site, "task-1", 0.5);
    charge_one(&site, "task-2", 1.0);

    let out = silo_site(&["ledger", "--config", cfg]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.contains("task-1") && stdout.contains("task-2") && stdout.contains("laplace"),
        "{stdout}"
    );
    let summary = stdout.lines().find(|l| l.starts_with("visits ")).unwrap();
    assert!(
        summary.contains("4.0000") && summary.contains("1.5000") && summary.contains("2.5000"),
        "{summary}"
    );

    let out = silo_site(&["ledger", "--config", cfg, "--dataset", "visits", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["entries"].as_array().unwrap().len(), 2);
    let d = &json["datasets"][0];
    assert_eq!(d["dataset"], "visits");
    assert!((d["epsilon_spent"].as_f64().unwrap() - 1.5).abs() < 1e-3);
    assert_eq!(d["charges"], 2);
    let out = silo_site(&["ledger", "--config", cfg, "--dataset", "nope"]);
    assert_eq!(out.status.code(), Some(2));

    let out = silo_site(&["ledger", "verify", "--config", cfg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("ledger ok: 2 entries"));

    // Tamper: drop the trigger and rewrite a past charge.
    let db = site.path().join("state/ledger.sqlite");
    let conn = rusqlite_open(&db);
    conn.execute_batch(
        "DROP TRIGGER ledger_no_update; UPDATE ledger SET epsilon = 0.001 WHERE seq = 1;",
    )
    .unwrap();
    drop(conn);
    let out = silo_site(&["ledger", "verify", "--config", cfg]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("broken at entry 1"), "{stderr}");
    let out = silo_site(&["ledger", "verify", "--config", cfg, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["first_bad"]["seq"], 1);
}

fn rusqlite_open(path: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).unwrap()
}

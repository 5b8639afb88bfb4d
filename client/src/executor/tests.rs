use std::sync::atomic::AtomicBool;

use silo_common::privacy::noise::SimulationRng;
use silo_common::stats::DpStatsRelease;

use super::*;
use crate::testutil::{Site, task};

fn executor(site: &Site) -> Executor {
    let config = site.config();
    std::fs::create_dir_all(&config.data_dir).unwrap();
    let ledger = Ledger::open(&config.ledger_path()).unwrap();
    Executor::new(Arc::new(config), Arc::new(Mutex::new(ledger)))
}

fn run(ex: &Executor, t: &silo_proto::Task, seed: u64) -> (Outcome, Vec<Progress>) {
    let mut seen = Vec::new();
    let out = ex.execute_with_rng(
        t,
        &AtomicBool::new(false),
        &mut |p| seen.push(p),
        &mut SimulationRng::seeded_insecure(seed),
    );
    (out, seen)
}

#[test]
fn a_dp_stats_task_is_charged_then_released() {
    let site = Site::standard(4.0);
    let ex = executor(&site);
    let t = task(
        "t1",
        1.0,
        "statistic = \"mean\"\ncolumn = \"age\"\nlower = 0.0\nupper = 100.0",
    );
    let (out, progress) = run(&ex, &t, 1);
    let Outcome::Done { charges, result } = out else {
        panic!("{out:?}")
    };
    assert_eq!(progress.first(), Some(&Progress::Accepted));
    assert_eq!(charges.len(), 1);
    let c = &charges[0];
    assert_eq!(
        (
            c.seq,
            c.task_id.as_str(),
            c.dataset.as_str(),
            c.job_id.as_str()
        ),
        (1, "t1", "visits", "job-1")
    );
    assert!(c.epsilon <= 1.0 && c.epsilon > 0.999, "{}", c.epsilon);
    let release = DpStatsRelease::from_json(&result).unwrap();
    assert!(release.sum.is_some() && release.count.is_some());
    // The ledger holds exactly the charge that was returned.
    let ledger = ex.ledger();
    let entries = ledger.entries(None).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].hash, c.hash);
    assert!(entries[0].guarantee.contains("person_id"));
    assert!(ledger.verify().unwrap().ok());
}

#[test]
fn the_same_task_id_is_never_executed_twice() {
    let site = Site::standard(4.0);
    let ex = executor(&site);
    let t = task("t1", 0.5, "statistic = \"count\"");
    assert_eq!(run(&ex, &t, 1).0.state(), "done");
    let (out, progress) = run(&ex, &t, 2);
    let Outcome::Refused(reason) = out else {
        panic!("{out:?}")
    };
    assert!(reason.starts_with("already executed"), "{reason}");
    assert!(progress.is_empty(), "refused before acceptance");
    assert_eq!(ex.ledger().len().unwrap(), 1);
}

#[test]
fn a_budget_refusal_leaves_the_ledger_unchanged() {
    let site = Site::standard(1.0);
    let ex = executor(&site);
    assert_eq!(
        run(&ex, &task("t1", 0.8, "statistic = \"count\""), 1)
            .0
            .state(),
        "done"
    );
    let head = ex.ledger().head().unwrap();
    let (out, _) = run(&ex, &task("t2", 0.5, "statistic = \"count\""), 2);
    let Outcome::Refused(reason) = out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("budget exhausted"), "{reason}");
    assert_eq!(ex.ledger().head().unwrap(), head);
    assert_eq!(ex.ledger().len().unwrap(), 1);
}

#[test]
fn policy_refusals_come_before_any_work() {
    let site = Site::standard(4.0);
    let ex = executor(&site);
    let mut t = task("t1", 0.5, "statistic = \"count\"");
    t.kind = "dp_clip".into();
    let (out, progress) = run(&ex, &t, 1);
    assert!(
        matches!(&out, Outcome::Refused(r) if r.contains("not allowed")),
        "{out:?}"
    );
    assert!(progress.is_empty());
    assert!(ex.ledger().is_empty().unwrap());
}

#[test]
fn a_missing_column_fails_without_charging() {
    let site = Site::standard(4.0);
    let ex = executor(&site);
    let t = task(
        "t1",
        0.5,
        "statistic = \"sum\"\ncolumn = \"weight\"\nlower = 0.0\nupper = 200.0",
    );
    let (out, _) = run(&ex, &t, 1);
    let Outcome::Failed(reason) = out else {
        panic!("{out:?}")
    };
    assert!(
        reason.contains("no column \"weight\"") && reason.contains("nothing was charged"),
        "{reason}"
    );
    assert!(
        !reason.contains("person_id"),
        "the header stays at the site: {reason}"
    );
    assert!(ex.ledger().is_empty().unwrap());
}

#[test]
fn a_cancelled_task_is_not_charged() {
    let site = Site::standard(4.0);
    let ex = executor(&site);
    let t = task("t1", 0.5, "statistic = \"count\"");
    let out = ex.execute_with_rng(
        &t,
        &AtomicBool::new(true),
        &mut |_| {},
        &mut SimulationRng::seeded_insecure(1),
    );
    assert!(
        matches!(&out, Outcome::Failed(r) if r.contains("cancelled")),
        "{out:?}"
    );
    assert!(ex.ledger().is_empty().unwrap());
}

#[test]
fn the_secure_path_releases_too() {
    let site = Site::standard(4.0);
    let ex = executor(&site);
    let t = task(
        "t1",
        0.5,
        "statistic = \"histogram\"\ncolumn = \"age\"\nlower = 0.0\nupper = 120.0\nbins = [0.0, 18.0, 65.0, 120.0]",
    );
    let out = ex.execute(&t, &AtomicBool::new(false), &mut |_| {});
    let Outcome::Done { result, .. } = out else {
        panic!("{out:?}")
    };
    let r = DpStatsRelease::from_json(&result).unwrap();
    assert_eq!(r.histogram.unwrap().len(), 3);
}

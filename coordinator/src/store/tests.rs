//! Tests of the SQLite store: every table round-trips, survives a reopen, and the audit
//! copy of charges follows the site's hash chain.

use super::*;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    (dir, store)
}

fn job(id: &str) -> JobRecord {
    JobRecord {
        id: id.into(),
        name: "count".into(),
        kind: "dp_stats".into(),
        spec_json: "{}".into(),
        state: JobState::Queued,
        reason: String::new(),
        round: 0,
        rounds: 1,
        completed_rounds: 0,
        completed_attempts: vec![],
        submitted_by: "alice".into(),
        created_at: now_rfc3339(),
        updated_at: now_rfc3339(),
        summary_json: None,
    }
}

fn site(name: &str, head: &str) -> SiteRecord {
    SiteRecord {
        name: name.into(),
        datasets: vec![DatasetRecord {
            name: "visits".into(),
            kind: "csv".into(),
            privacy_unit: "person_id".into(),
            epsilon_budget: 4.0,
            delta: 1e-6,
            epsilon_spent: 0.5,
            metadata_json: "{}".into(),
        }],
        ledger_head: head.into(),
        ledger_entries: 1,
        version: "0.1.0".into(),
        allowed_kinds: vec!["dp_stats".into()],
        registered_at: now_rfc3339(),
        last_seen: now_rfc3339(),
    }
}

fn charge(site: &str, seq: u64, prev: &str, hash: &str, spent: f64) -> ChargeRecord {
    ChargeRecord {
        site: site.into(),
        seq,
        dataset: "visits".into(),
        job_id: "job-1".into(),
        task_id: format!("job-1-r1a1-{site}"),
        mechanism_json: "{\"mechanism\":\"laplace\"}".into(),
        epsilon: 0.5,
        delta: 1e-6,
        epsilon_spent: spent,
        recorded_at: now_rfc3339(),
        prev_hash: prev.into(),
        hash: hash.into(),
    }
}

#[test]
fn jobs_and_tasks_round_trip_and_survive_reopen() {
    let (dir, store) = store();
    store.insert_job(&job("job-1")).unwrap();
    assert!(matches!(
        store.insert_job(&job("job-1")),
        Err(StoreError::Duplicate(_))
    ));
    let mut j = store.job("job-1").unwrap().unwrap();
    j.state = JobState::Running;
    j.round = 1;
    j.completed_rounds = 1;
    j.completed_attempts = vec![2];
    j.summary_json = Some("{\"a\":1}".into());
    store.update_job(&j).unwrap();
    let task = TaskRecord {
        task_id: "job-1-r1a1-a".into(),
        job_id: "job-1".into(),
        site: "a".into(),
        round: 1,
        attempt: 1,
        state: TaskState::Sent,
        reason: String::new(),
        progress: 0.0,
        created_at: now_rfc3339(),
        updated_at: now_rfc3339(),
    };
    store.insert_task(&task).unwrap();
    let mut t = task.clone();
    t.state = TaskState::Refused;
    t.reason = "budget".into();
    store.update_task(&t).unwrap();
    drop(store);

    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.job("job-1").unwrap().unwrap(), j);
    assert_eq!(store.jobs().unwrap(), vec![j]);
    assert_eq!(store.tasks("job-1").unwrap(), vec![t]);
    assert!(store.job("nope").unwrap().is_none());
}

#[test]
fn round_results_small_inline_large_as_files() {
    let (dir, store) = store();
    store.insert_job(&job("job-1")).unwrap();
    let small = RoundResult {
        job_id: "job-1".into(),
        round: 1,
        attempt: 1,
        site: "a".into(),
        task_id: "t1".into(),
        data: b"small".to_vec(),
    };
    let large = RoundResult {
        site: "b".into(),
        task_id: "t2".into(),
        data: vec![7u8; sqlite::INLINE_RESULT_BYTES + 1],
        ..small.clone()
    };
    store.save_round_result(&small).unwrap();
    store.save_round_result(&large).unwrap();
    assert!(dir.path().join("jobs/job-1/rounds/r1-a1-b.bin").exists());
    assert_eq!(
        store.round_results("job-1", 1, 1).unwrap(),
        vec![small, large]
    );
    assert!(store.round_results("job-1", 1, 2).unwrap().is_empty());
}

#[test]
fn charges_are_deduplicated_and_advance_the_chained_head() {
    let (_dir, store) = store();
    store.upsert_site(&site("a", "h0")).unwrap();
    let c1 = charge("a", 1, "h0", "h1", 1.0);
    let c2 = charge("a", 2, "h1", "h2", 1.5);
    assert_eq!(
        store
            .record_charges("a", &[c2.clone(), c1.clone()])
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .record_charges("a", std::slice::from_ref(&c1))
            .unwrap(),
        0,
        "duplicate"
    );
    let a = &store.sites().unwrap()[0];
    assert_eq!(a.ledger_head, "h2");
    assert_eq!(a.datasets[0].epsilon_spent, 1.5);
    // A charge that does not chain onto the known head leaves the head alone.
    store
        .record_charges("a", &[charge("a", 4, "h3", "h4", 2.5)])
        .unwrap();
    let a = &store.sites().unwrap()[0];
    assert_eq!(a.ledger_head, "h2");
    assert_eq!(a.datasets[0].epsilon_spent, 2.5);
    assert_eq!(store.charges(Some("a"), Some("visits")).unwrap().len(), 3);
    assert_eq!(store.charges(Some("b"), None).unwrap().len(), 0);
    assert_eq!(store.job_charges("job-1").unwrap()[0], c1);
}

#[test]
fn the_head_follows_the_chain_from_genesis_in_any_arrival_order() {
    let (_dir, store) = store();
    store.upsert_site(&site("a", "")).unwrap();
    let zeros = "0".repeat(64);
    let c1 = charge("a", 1, &zeros, "h1", 0.5);
    let c2 = charge("a", 2, "h1", "h2", 1.0);
    let c3 = charge("a", 3, "h2", "h3", 1.5);
    store
        .record_charges("a", std::slice::from_ref(&c3))
        .unwrap();
    assert_eq!(
        store.sites().unwrap()[0].ledger_head,
        "",
        "h3 does not chain onto genesis"
    );
    store
        .record_charges("a", std::slice::from_ref(&c1))
        .unwrap();
    assert_eq!(store.sites().unwrap()[0].ledger_head, "h1");
    store
        .record_charges("a", std::slice::from_ref(&c2))
        .unwrap();
    assert_eq!(
        store.sites().unwrap()[0].ledger_head,
        "h3",
        "c2 closes the gap to c3"
    );
}

#[test]
fn result_files_are_written_listed_and_read_in_ranges() {
    let (dir, store) = store();
    store.insert_job(&job("job-1")).unwrap();
    store
        .write_result_file("job-1", "report.json", b"0123456789")
        .unwrap();
    assert!(dir.path().join("jobs/job-1/result/report.json").exists());
    assert_eq!(
        store.result_files("job-1").unwrap(),
        vec![ResultFileInfo {
            name: "report.json".into(),
            size: 10
        }]
    );
    assert_eq!(
        store
            .read_result_file("job-1", "report.json", 3, 4)
            .unwrap(),
        b"3456"
    );
    assert_eq!(
        store
            .read_result_file("job-1", "report.json", 10, 4)
            .unwrap(),
        b""
    );
    assert!(matches!(
        store.write_result_file("job-1", "../escape", b"x"),
        Err(StoreError::BadName(_))
    ));
    assert!(matches!(
        store.read_result_file("job-1", "missing.json", 0, 4),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn the_database_runs_in_wal_mode() {
    let (dir, store) = store();
    drop(store);
    let conn = rusqlite::Connection::open(dir.path().join("coordinator.db")).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

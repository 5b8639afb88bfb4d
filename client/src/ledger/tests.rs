use silo_common::privacy::PrivacyEvent;

use super::*;

fn laplace(eps: f64) -> Vec<Composition> {
    vec![Composition::new(
        PrivacyEvent::laplace(1.0 / eps).unwrap(),
        1,
    )]
}

fn new_charge(task: &str, dataset: &str, events: Vec<Composition>, budget: f64) -> NewCharge {
    NewCharge {
        job_id: "job-1".into(),
        task_id: task.into(),
        dataset: dataset.into(),
        mechanism: "laplace".into(),
        parameters: serde_json::json!({"scale": 2.0}),
        sensitivity: serde_json::json!({"l1": 1.0}),
        guarantee: "(0.5, 0)-DP".into(),
        events,
        delta: 1e-6,
        epsilon_budget: budget,
    }
}

fn open_temp() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
    (dir, ledger)
}

#[test]
fn charges_form_a_hash_chain_that_verifies() {
    let (_dir, mut l) = open_temp();
    assert_eq!(l.head().unwrap(), None);
    assert!(l.verify().unwrap().ok());
    let c1 = l
        .charge(&new_charge("t1", "visits", laplace(0.5), 4.0))
        .unwrap();
    let c2 = l
        .charge(&new_charge("t2", "visits", laplace(0.5), 4.0))
        .unwrap();
    let c3 = l
        .charge(&new_charge("t3", "notes", laplace(1.0), 4.0))
        .unwrap();
    assert_eq!((c1.seq, c2.seq, c3.seq), (1, 2, 3));
    assert_eq!(c1.prev_hash, GENESIS_HASH);
    assert_eq!(c2.prev_hash, c1.hash);
    assert_eq!(c3.prev_hash, c2.hash);
    assert_eq!(c1.hash.len(), 64);
    // At δ > 0 the accountants may certify slightly less than the pure ε.
    assert!(c1.epsilon <= 0.5 && c1.epsilon > 0.4999, "{}", c1.epsilon);
    assert!(
        (c2.epsilon_spent - 1.0).abs() < 1e-4,
        "{}",
        c2.epsilon_spent
    );
    assert!(
        (c3.epsilon_spent - 1.0).abs() < 1e-4,
        "other datasets do not count"
    );
    assert!(
        time::OffsetDateTime::parse(
            &c1.recorded_at,
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );
    let mech: serde_json::Value = serde_json::from_str(&c1.mechanism_json).unwrap();
    assert_eq!(mech["mechanism"], "laplace");
    assert_eq!(mech["events"][0]["event"]["mechanism"], "laplace");

    let report = l.verify().unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.entries, 3);
    assert_eq!(report.head.as_deref(), Some(c3.hash.as_str()));
    assert_eq!(
        l.head().unwrap(),
        Some(Head {
            seq: 3,
            hash: c3.hash.clone()
        })
    );
    assert_eq!(l.entries(Some("visits")).unwrap().len(), 2);
    assert_eq!(l.entries(None).unwrap().len(), 3);
    assert_eq!(l.len().unwrap(), 3);
}

#[test]
fn spend_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    {
        let mut l = Ledger::open(&path).unwrap();
        l.charge(&new_charge("t1", "visits", laplace(0.7), 4.0))
            .unwrap();
    }
    let mut l = Ledger::open(&path).unwrap();
    let spent = l.spent("visits", 1e-6, &SPEND_ACCOUNTANTS).unwrap();
    assert!((spent - 0.7).abs() < 1e-4, "{spent}");
    let c = l
        .charge(&new_charge("t2", "visits", laplace(0.3), 4.0))
        .unwrap();
    assert_eq!(c.seq, 2);
    assert!(l.verify().unwrap().ok());
}

#[test]
fn updates_and_deletes_are_refused_by_triggers() {
    let (_dir, mut l) = open_temp();
    l.charge(&new_charge("t1", "visits", laplace(0.5), 4.0))
        .unwrap();
    let conn = l.connection();
    let err = conn
        .execute("UPDATE ledger SET epsilon = 0.0 WHERE seq = 1", [])
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = conn.execute("DELETE FROM ledger", []).unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert!(l.verify().unwrap().ok());
}

#[test]
fn tampering_with_a_row_is_detected_by_verify() {
    let (_dir, mut l) = open_temp();
    for t in ["t1", "t2", "t3"] {
        l.charge(&new_charge(t, "visits", laplace(0.5), 4.0))
            .unwrap();
    }
    // Someone with write access drops the trigger and lowers a past charge.
    l.connection()
        .execute_batch(
            "DROP TRIGGER ledger_no_update; UPDATE ledger SET epsilon = 0.01 WHERE seq = 2;",
        )
        .unwrap();
    let report = l.verify().unwrap();
    let bad = report.first_bad.expect("tampering must be detected");
    assert_eq!(bad.seq, 2);
    assert!(bad.reason.contains("altered"), "{}", bad.reason);

    // Re-hashing the edited row does not help: the next row's prev_hash breaks.
    let (_dir2, mut l) = open_temp();
    for t in ["t1", "t2", "t3"] {
        l.charge(&new_charge(t, "visits", laplace(0.5), 4.0))
            .unwrap();
    }
    let mut e2 = l.entries(None).unwrap()[1].clone();
    e2.events = serde_json::to_string(&laplace(5.0)).unwrap();
    let forged = entry_hash(&e2);
    l.connection()
        .execute_batch(&format!(
            "DROP TRIGGER ledger_no_update; UPDATE ledger SET events = '{}', hash = '{forged}' WHERE seq = 2;",
            e2.events
        ))
        .unwrap();
    let bad = l.verify().unwrap().first_bad.unwrap();
    assert_eq!(bad.seq, 3);
    assert!(bad.reason.contains("prev_hash"), "{}", bad.reason);
}

#[test]
fn a_deleted_row_is_detected() {
    let (_dir, mut l) = open_temp();
    for t in ["t1", "t2", "t3"] {
        l.charge(&new_charge(t, "visits", laplace(0.5), 4.0))
            .unwrap();
    }
    l.connection()
        .execute_batch("DROP TRIGGER ledger_no_delete; DELETE FROM ledger WHERE seq = 2;")
        .unwrap();
    let bad = l.verify().unwrap().first_bad.unwrap();
    assert_eq!(bad.seq, 3);
    assert!(bad.reason.contains("missing"), "{}", bad.reason);
}

#[test]
fn a_task_id_is_charged_at_most_once() {
    let (_dir, mut l) = open_temp();
    l.charge(&new_charge("t1", "visits", laplace(0.5), 4.0))
        .unwrap();
    let err = l
        .charge(&new_charge("t1", "visits", laplace(0.5), 4.0))
        .unwrap_err();
    assert!(
        matches!(err, LedgerError::AlreadyCharged { seq: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().starts_with("already executed"));
    assert_eq!(l.len().unwrap(), 1);
    assert_eq!(l.charged_task("t1").unwrap(), Some(1));
    assert_eq!(l.charged_task("t2").unwrap(), None);
}

#[test]
fn a_charge_over_budget_writes_nothing() {
    let (_dir, mut l) = open_temp();
    l.charge(&new_charge("t1", "visits", laplace(0.8), 1.0))
        .unwrap();
    let head = l.head().unwrap();
    let err = l
        .charge(&new_charge("t2", "visits", laplace(0.5), 1.0))
        .unwrap_err();
    let LedgerError::BudgetExceeded {
        spent,
        after,
        budget,
        ..
    } = err
    else {
        panic!("{err}")
    };
    assert!(
        (spent - 0.8).abs() < 1e-4 && (after - 1.3).abs() < 1e-4 && budget == 1.0,
        "{spent} {after}"
    );
    assert_eq!(l.head().unwrap(), head);
    assert_eq!(l.len().unwrap(), 1);
    // Exactly exhausting the budget is allowed.
    l.charge(&new_charge("t3", "visits", laplace(0.2), 1.0))
        .unwrap();
}

#[test]
fn invalid_charges_are_rejected() {
    let (_dir, mut l) = open_temp();
    assert!(matches!(
        l.charge(&new_charge("t", "visits", vec![], 1.0)),
        Err(LedgerError::Invalid(_))
    ));
    let mut c = new_charge("t", "visits", laplace(0.5), 1.0);
    c.delta = 1.0;
    assert!(matches!(l.charge(&c), Err(LedgerError::Invalid(_))));
    let mut c = new_charge("t", "visits", laplace(0.5), 1.0);
    c.events = vec![Composition::new(
        PrivacyEvent::Gaussian {
            noise_multiplier: -1.0,
        },
        1,
    )];
    assert!(matches!(l.charge(&c), Err(LedgerError::Invalid(_))));
    assert!(l.is_empty().unwrap());
}

#[test]
fn spend_is_the_minimum_of_the_accountants_and_pure_composition() {
    let g = vec![Composition::new(PrivacyEvent::gaussian(2.0).unwrap(), 5)];
    let pld = AccountantKind::Pld.build().epsilon(&g, 1e-6).unwrap();
    let rdp = AccountantKind::Rdp.build().epsilon(&g, 1e-6).unwrap();
    let both = composed_epsilon(&g, 1e-6, &SPEND_ACCOUNTANTS).unwrap();
    assert_eq!(both, pld.min(rdp));
    assert!(both <= pld && both <= rdp);
    // Pure-DP histories: never more than the sum of the epsilons.
    let p = [laplace(0.5), laplace(0.25)].concat();
    let eps = composed_epsilon(&p, 1e-6, &SPEND_ACCOUNTANTS).unwrap();
    assert!(eps <= 0.75 + 1e-12, "{eps}");
    assert_eq!(
        composed_epsilon(&[], 1e-6, &SPEND_ACCOUNTANTS).unwrap(),
        0.0
    );
}

#[test]
fn the_hash_encoding_matches_its_documentation() {
    // Known answer computed independently (Python hashlib + struct) from the encoding
    // documented in `hash.rs`: a change to the encoding breaks every existing ledger.
    let e = LedgerEntry {
        seq: 1,
        job_id: "job-1".into(),
        task_id: "task-1".into(),
        dataset: "visits".into(),
        mechanism: "laplace".into(),
        parameters: r#"{"scale":2.0}"#.into(),
        sensitivity: r#"{"l1":1.0}"#.into(),
        guarantee: "(0.5, 0)-DP".into(),
        events: r#"[{"event":{"mechanism":"laplace","noise_multiplier":2.0},"count":1}]"#.into(),
        epsilon: 0.5,
        delta: 1e-6,
        epsilon_spent: 0.5,
        recorded_at: "2026-11-27T12:00:00Z".into(),
        prev_hash: GENESIS_HASH.into(),
        hash: String::new(),
    };
    assert_eq!(
        entry_hash(&e),
        "6cd49ae84cd8716bca1043385c51ecf5d3ec3ecef33f463663194da7d1c757f4"
    );
    // The events text is what the ledger writes for this composition.
    assert_eq!(serde_json::to_string(&laplace(0.5)).unwrap(), e.events);
}

//! The job lifecycle end to end over the real SiteApi and AdminApi (plaintext loopback):
//! quorum, refusals, timeouts, disconnects and retries, cancellation, restart.

mod support;

use serde_json::Value;
use silo_proto::JobRef;
use support::*;

#[tokio::test]
async fn quorum_met_job_succeeds_with_pooled_result() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = coordinator(dir.path(), |_| {}).await;
    let url = coordinator.url();
    let mut a = FakeSite::connect(&url, "hospital-a").await;
    let mut b = FakeSite::connect(&url, "hospital-b").await;
    let mut admin = admin(&url).await;
    let id = submit(&mut admin, &count_spec(2, 60)).await;

    let ta = a.next_task().await;
    let tb = b.next_task().await;
    assert_eq!(
        (ta.kind.as_str(), ta.round, ta.dataset.as_str()),
        ("dp_stats", 1, "visits")
    );
    assert_ne!(ta.task_id, tb.task_id);
    a.answer(&ta, 100.0).await;
    b.answer(&tb, 50.0).await;

    let done = wait_for_state(&mut admin, &id, "succeeded").await;
    assert_eq!(done.sites.len(), 2);
    assert!(
        done.sites
            .iter()
            .all(|s| s.state == "done" && s.progress == 1.0)
    );
    let summary: Value = serde_json::from_str(&done.summary_json).unwrap();
    assert_eq!(summary["pooled"]["count"]["value"], 150.0);

    // The report is downloadable and stored under data_dir/jobs/<id>/result/.
    let mut files = admin
        .get_result(JobRef { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    let mut report = Vec::new();
    while let Some(chunk) = files.message().await.unwrap() {
        assert_eq!(chunk.name, "report.json");
        report.extend_from_slice(&chunk.data);
    }
    let report: Value = serde_json::from_slice(&report).unwrap();
    assert_eq!(report["kind"], "dp_stats");
    assert_eq!(
        report["sites"],
        serde_json::json!(["hospital-a", "hospital-b"])
    );
    assert_eq!(report["epsilon_spent"]["hospital-a"], 0.5);
    assert_eq!(report["per_site"]["hospital-b"]["count"]["value"], 50.0);
    assert_eq!(report["pooled"]["count"]["value"], 150.0);
    assert!(
        dir.path()
            .join("jobs")
            .join(&id)
            .join("result/report.json")
            .exists()
    );
    coordinator.shutdown().await.unwrap();
}

#[tokio::test]
async fn refusal_below_min_sites_fails_with_each_reason() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = coordinator(dir.path(), |_| {}).await;
    let url = coordinator.url();
    let mut a = FakeSite::connect(&url, "hospital-a").await;
    let mut b = FakeSite::connect(&url, "hospital-b").await;
    let mut admin = admin(&url).await;
    let id = submit(&mut admin, &count_spec(2, 60)).await;

    let ta = a.next_task().await;
    let tb = b.next_task().await;
    a.update(&ta, "accepted", "").await;
    b.update(
        &tb,
        "refused",
        "budget exhausted: 3.8 of 4.0 spent on visits, job needs 0.5",
    )
    .await;

    let failed = wait_for_state(&mut admin, &id, "failed").await;
    assert!(
        failed.reason.contains("only 1 of min_sites 2"),
        "{}",
        failed.reason
    );
    assert!(
        failed
            .reason
            .contains("hospital-b: refused (budget exhausted: 3.8 of 4.0"),
        "{}",
        failed.reason
    );
    let b_status = failed
        .sites
        .iter()
        .find(|s| s.site == "hospital-b")
        .unwrap();
    assert_eq!(b_status.state, "refused");
    assert!(b_status.reason.starts_with("budget exhausted"));
    // The accepted site is told to stop.
    assert_eq!(a.next_cancel().await, ta.task_id);
    coordinator.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_refusal_is_on_record_when_the_first_already_breaks_the_quorum() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = coordinator(dir.path(), |_| {}).await;
    let url = coordinator.url();
    let mut a = FakeSite::connect(&url, "hospital-a").await;
    let mut b = FakeSite::connect(&url, "hospital-b").await;
    let mut admin = admin(&url).await;
    let id = submit(&mut admin, &count_spec(2, 60)).await;
    let (ta, tb) = (a.next_task().await, b.next_task().await);
    a.update(
        &ta,
        "refused",
        "job kind dp_stats is not allowed by this site's policy",
    )
    .await;
    // The job cannot succeed any more, but waits for hospital-b's answer.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(status(&mut admin, &id).await.state, "running");
    b.update(&tb, "refused", "budget exhausted").await;
    let failed = wait_for_state(&mut admin, &id, "failed").await;
    for (site, why) in [
        ("hospital-a", "not allowed"),
        ("hospital-b", "budget exhausted"),
    ] {
        let task = failed.sites.iter().find(|s| s.site == site).unwrap();
        assert_eq!(task.state, "refused", "{task:?}");
        assert!(task.reason.contains(why), "{task:?}");
        assert!(
            failed.reason.contains(&format!("{site}: refused ({why}"))
                || failed.reason.contains(why),
            "{}",
            failed.reason
        );
    }
    assert!(
        failed.reason.contains("only 0 of min_sites 2"),
        "{}",
        failed.reason
    );
    coordinator.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_site_past_the_round_timeout_is_excluded_while_the_quorum_holds() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = coordinator(dir.path(), |_| {}).await;
    let url = coordinator.url();
    let mut a = FakeSite::connect(&url, "hospital-a").await;
    let mut b = FakeSite::connect(&url, "hospital-b").await;
    let mut c = FakeSite::connect(&url, "hospital-c").await;
    let mut admin = admin(&url).await;
    let id = submit(&mut admin, &count_spec(2, 1)).await;

    let (ta, tb, tc) = (
        a.next_task().await,
        b.next_task().await,
        c.next_task().await,
    );
    a.answer(&ta, 10.0).await;
    b.answer(&tb, 20.0).await;
    c.update(&tc, "accepted", "").await; // ...and never delivers

    let done = wait_for_state(&mut admin, &id, "succeeded").await;
    let c_status = done.sites.iter().find(|s| s.site == "hospital-c").unwrap();
    assert_eq!(c_status.state, "excluded");
    assert!(
        c_status.reason.contains("round_timeout_seconds = 1"),
        "{}",
        c_status.reason
    );
    assert_eq!(c.next_cancel().await, tc.task_id);
    let summary: Value = serde_json::from_str(&done.summary_json).unwrap();
    assert_eq!(
        summary["sites"],
        serde_json::json!(["hospital-a", "hospital-b"])
    );
    assert_eq!(summary["pooled"]["count"]["value"], 30.0);
    coordinator.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_dropped_site_breaking_the_quorum_retries_the_round_with_new_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = coordinator(dir.path(), |c| c.round_retries = 1).await;
    let url = coordinator.url();
    let mut a = FakeSite::connect(&url, "hospital-a").await;
    let mut b = FakeSite::connect(&url, "hospital-b").await;
    let mut admin = admin(&url).await;
    let id = submit(&mut admin, &count_spec(2, 30)).await;

    let first_a = a.next_task().await;
    let _first_b = b.next_task().await;
    a.answer(&first_a, 1.0).await;
    drop(b); // hospital-b's daemon dies mid-round

    let retrying = wait_for_state(&mut admin, &id, "running").await;
    let _ = retrying;
    // hospital-b comes back; the round is planned again with new task ids for both.
    let mut b = FakeSite::connect(&url, "hospital-b").await;
    let second_a = a.next_task().await;
    let second_b = b.next_task().await;
    assert_ne!(
        second_a.task_id, first_a.task_id,
        "a retry is a new release"
    );
    a.answer(&second_a, 5.0).await;
    b.answer(&second_b, 7.0).await;
    let done = wait_for_state(&mut admin, &id, "succeeded").await;
    let summary: Value = serde_json::from_str(&done.summary_json).unwrap();
    assert_eq!(summary["pooled"]["count"]["value"], 12.0);
    // hospital-a charged twice for this job: both releases count.
    assert_eq!(summary["epsilon_spent"]["hospital-a"], 1.0);

    let tasks = coordinator.store().tasks(&id).unwrap();
    let dropped = tasks
        .iter()
        .find(|t| t.site == "hospital-b" && t.attempt == 1)
        .unwrap();
    assert_eq!(dropped.reason, "site disconnected");
    coordinator.shutdown().await.unwrap();
}

#[tokio::test]
async fn retries_used_up_fail_the_job_with_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = coordinator(dir.path(), |c| c.round_retries = 0).await;
    let url = coordinator.url();
    let mut a = FakeSite::connect(&url, "hospital-a").await;
    let mut b = FakeSite::connect(&url, "hospital-b").await;
    let mut admin = admin(&url).await;
    let id = submit(&mut admin, &count_spec(2, 30)).await;
    let _ = a.next_task().await;
    let _ = b.next_task().await;
    drop(b);
    let failed = wait_for_state(&mut admin, &id, "failed").await;
    assert!(
        failed.reason.contains("round 1 failed after 1 attempt(s)"),
        "{}",
        failed.reason
    );
    assert!(
        failed
            .reason
            .contains("hospital-b: failed (site disconnected)"),
        "{}",
        failed.reason
    );
    coordinator.shutdown().await.unwrap();
}

#[tokio::test]
async fn cancelling_a_running_job_stops_its_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = coordinator(dir.path(), |_| {}).await;
    let url = coordinator.url();
    let mut a = FakeSite::connect(&url, "hospital-a").await;
    let mut admin = admin(&url).await;
    let id = submit(&mut admin, &count_spec(1, 60)).await;
    let task = a.next_task().await;
    a.update(&task, "accepted", "").await;
    let cancelled = admin
        .cancel_job(JobRef { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state, "cancelled");
    assert!(
        cancelled.reason.contains("cancelled by insecure-dev"),
        "{}",
        cancelled.reason
    );
    assert_eq!(a.next_cancel().await, task.task_id);
    // A second cancel is refused: the job already ended.
    let err = admin.cancel_job(JobRef { id }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    coordinator.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_queued_job_waits_for_min_sites_then_starts() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = coordinator(dir.path(), |_| {}).await;
    let url = coordinator.url();
    let mut a = FakeSite::connect(&url, "hospital-a").await;
    let mut admin = admin(&url).await;
    let id = submit(&mut admin, &count_spec(2, 60)).await;
    // Give the scheduler a moment: one site is not a quorum.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let queued = status(&mut admin, &id).await;
    assert_eq!(queued.state, "queued");
    assert!(
        queued.reason.contains("1 of min_sites 2"),
        "{}",
        queued.reason
    );
    let mut b = FakeSite::connect(&url, "hospital-b").await;
    let (ta, tb) = (a.next_task().await, b.next_task().await);
    a.answer(&ta, 1.0).await;
    b.answer(&tb, 2.0).await;
    wait_for_state(&mut admin, &id, "succeeded").await;
    coordinator.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_oversized_result_fails_that_task_only() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = coordinator(dir.path(), |c| c.max_result_bytes = 2048).await;
    let url = coordinator.url();
    let mut a = FakeSite::connect(&url, "hospital-a").await;
    let mut b = FakeSite::connect(&url, "hospital-b").await;
    let mut admin = admin(&url).await;
    let id = submit(&mut admin, &count_spec(1, 60)).await;
    let (ta, tb) = (a.next_task().await, b.next_task().await);
    a.update(&ta, "accepted", "").await;
    a.deliver(&ta, &vec![b' '; 5000]).await;
    b.answer(&tb, 3.0).await;
    let done = wait_for_state(&mut admin, &id, "succeeded").await;
    let a_status = done.sites.iter().find(|s| s.site == "hospital-a").unwrap();
    assert_eq!(a_status.state, "failed");
    assert!(
        a_status.reason.contains("limit of 2048 bytes"),
        "{}",
        a_status.reason
    );
    coordinator.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_restarted_coordinator_resumes_the_running_job() {
    let dir = tempfile::tempdir().unwrap();
    let first = coordinator(dir.path(), |_| {}).await;
    let url = first.url();
    let mut a = FakeSite::connect(&url, "hospital-a").await;
    let mut b = FakeSite::connect(&url, "hospital-b").await;
    let mut admin_client = admin(&url).await;
    let id = submit(&mut admin_client, &count_spec(2, 60)).await;
    let (ta, tb) = (a.next_task().await, b.next_task().await);
    a.update(&ta, "accepted", "").await;
    b.update(&tb, "accepted", "").await;
    wait_for_state(&mut admin_client, &id, "running").await;

    // Kill the coordinator mid-round, start a new one on the same data directory.
    first.shutdown().await.unwrap();
    drop((a, b));
    let second = coordinator(dir.path(), |_| {}).await;
    let url = second.url();
    let mut admin_client = admin(&url).await;
    let resumed = status(&mut admin_client, &id).await;
    assert_eq!(resumed.state, "running");
    assert!(
        resumed.reason.contains("waiting for sites"),
        "{}",
        resumed.reason
    );

    let mut a = FakeSite::connect(&url, "hospital-a").await;
    let mut b = FakeSite::connect(&url, "hospital-b").await;
    let (ra, rb) = (a.next_task().await, b.next_task().await);
    assert_eq!(ra.job_id, id);
    assert_ne!(
        ra.task_id, ta.task_id,
        "the incomplete round is re-planned with new task ids"
    );
    assert_ne!(rb.task_id, tb.task_id);
    a.answer(&ra, 4.0).await;
    b.answer(&rb, 6.0).await;
    let done = wait_for_state(&mut admin_client, &id, "succeeded").await;
    let summary: Value = serde_json::from_str(&done.summary_json).unwrap();
    assert_eq!(summary["pooled"]["count"]["value"], 10.0);
    let old = second
        .store()
        .tasks(&id)
        .unwrap()
        .into_iter()
        .find(|t| t.task_id == ta.task_id)
        .unwrap();
    assert!(
        old.reason.contains("coordinator restarted"),
        "{}",
        old.reason
    );
    second.shutdown().await.unwrap();
}

/// Polls the job's status until `check` holds.
async fn wait_for_sites(
    admin: &mut silo_proto::admin_api_client::AdminApiClient<tonic::transport::Channel>,
    id: &str,
    what: &str,
    check: impl Fn(&silo_proto::JobStatus) -> bool,
) -> silo_proto::JobStatus {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let current = status(admin, id).await;
        if check(&current) {
            return current;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job {id}: no {what} within {WAIT:?}: {current:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn site_state<'a>(status: &'a silo_proto::JobStatus, site: &str) -> &'a str {
    status
        .sites
        .iter()
        .find(|s| s.site == site)
        .map_or("", |s| s.state.as_str())
}

/// Two restarts in one round: what was done before each restart is kept, and only the
/// sites that had not delivered are asked again (new task ids, same attempt); each site
/// releases once.
#[tokio::test]
async fn restarts_keep_the_results_already_done_and_ask_only_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let first = coordinator(dir.path(), |_| {}).await;
    let url = first.url();
    let mut a = FakeSite::connect(&url, "hospital-a").await;
    let mut b = FakeSite::connect(&url, "hospital-b").await;
    let mut c = FakeSite::connect(&url, "hospital-c").await;
    let mut admin_client = admin(&url).await;
    let id = submit(&mut admin_client, &count_spec(3, 600)).await;
    let (ta, tb, tc) = (
        a.next_task().await,
        b.next_task().await,
        c.next_task().await,
    );
    a.answer(&ta, 100.0).await;
    b.update(&tb, "accepted", "").await;
    c.update(&tc, "accepted", "").await;
    wait_for_sites(&mut admin_client, &id, "hospital-a done", |s| {
        site_state(s, "hospital-a") == "done"
            && site_state(s, "hospital-b") == "accepted"
            && site_state(s, "hospital-c") == "accepted"
    })
    .await;
    first.shutdown().await.unwrap();
    drop((a, b, c));

    // First restart: hospital-a's result is kept; hospital-b and hospital-c get new tasks.
    let second = coordinator(dir.path(), |_| {}).await;
    let url = second.url();
    let mut admin_client = admin(&url).await;
    let resumed = status(&mut admin_client, &id).await;
    assert_eq!(resumed.state, "running");
    assert!(
        resumed.reason.contains("keeping the results hospital-a"),
        "{}",
        resumed.reason
    );
    assert_eq!(site_state(&resumed, "hospital-a"), "done");
    let a = FakeSite::connect(&url, "hospital-a").await;
    let mut b = FakeSite::connect(&url, "hospital-b").await;
    let mut c = FakeSite::connect(&url, "hospital-c").await;
    let (rb, rc) = (b.next_task().await, c.next_task().await);
    assert_ne!(rb.task_id, tb.task_id, "a new task is a new release");
    assert_ne!(rc.task_id, tc.task_id);
    b.answer(&rb, 7.0).await;
    c.update(&rc, "accepted", "").await;
    wait_for_sites(&mut admin_client, &id, "hospital-b done", |s| {
        site_state(s, "hospital-b") == "done" && site_state(s, "hospital-c") == "accepted"
    })
    .await;
    second.shutdown().await.unwrap();
    drop((a, b, c));

    // Second restart: hospital-a's and hospital-b's results are kept; only hospital-c is
    // missing.
    let third = coordinator(dir.path(), |_| {}).await;
    let url = third.url();
    let mut admin_client = admin(&url).await;
    let resumed = status(&mut admin_client, &id).await;
    assert_eq!(resumed.state, "running");
    assert!(
        resumed
            .reason
            .contains("2 result(s) kept (hospital-a, hospital-b)"),
        "{}",
        resumed.reason
    );
    let _a = FakeSite::connect(&url, "hospital-a").await;
    let _b = FakeSite::connect(&url, "hospital-b").await;
    let mut c = FakeSite::connect(&url, "hospital-c").await;
    let last = c.next_task().await;
    assert!(
        ![&tc.task_id, &rc.task_id].contains(&&last.task_id),
        "{}",
        last.task_id
    );
    c.answer(&last, 3.0).await;
    let done = wait_for_state(&mut admin_client, &id, "succeeded").await;
    let summary: Value = serde_json::from_str(&done.summary_json).unwrap();
    assert_eq!(
        summary["sites"],
        serde_json::json!(["hospital-a", "hospital-b", "hospital-c"])
    );
    assert_eq!(summary["pooled"]["count"]["value"], 110.0);
    // One release each: nothing acknowledged was asked for again.
    for site in ["hospital-a", "hospital-b", "hospital-c"] {
        assert_eq!(summary["epsilon_spent"][site], 0.5, "{site}");
    }

    let tasks = third.store().tasks(&id).unwrap();
    let count = |site: &str| tasks.iter().filter(|t| t.site == site).count();
    assert_eq!(
        (
            count("hospital-a"),
            count("hospital-b"),
            count("hospital-c")
        ),
        (1, 2, 3),
        "{tasks:?}"
    );
    assert!(
        tasks.iter().all(|t| t.round == 1 && t.attempt == 1),
        "{tasks:?}"
    );
    let ids: std::collections::HashSet<_> = tasks.iter().map(|t| &t.task_id).collect();
    assert_eq!(ids.len(), tasks.len(), "task ids are unique: {tasks:?}");
    let record = third.store().job(&id).unwrap().unwrap();
    assert_eq!(record.completed_attempts, vec![1]);
    third.shutdown().await.unwrap();
}

/// Results kept across a restart that already meet min_sites close the round on reload,
/// before any site is back.
#[tokio::test]
async fn a_restart_closes_a_round_whose_kept_results_meet_min_sites() {
    let dir = tempfile::tempdir().unwrap();
    let first = coordinator(dir.path(), |_| {}).await;
    let url = first.url();
    let mut a = FakeSite::connect(&url, "hospital-a").await;
    let mut b = FakeSite::connect(&url, "hospital-b").await;
    let mut c = FakeSite::connect(&url, "hospital-c").await;
    let mut admin_client = admin(&url).await;
    // min_sites 2: the round waits for hospital-c until its (long) timeout.
    let id = submit(&mut admin_client, &count_spec(2, 600)).await;
    let (ta, tb, tc) = (
        a.next_task().await,
        b.next_task().await,
        c.next_task().await,
    );
    a.answer(&ta, 100.0).await;
    b.answer(&tb, 7.0).await;
    c.update(&tc, "accepted", "").await;
    wait_for_sites(
        &mut admin_client,
        &id,
        "hospital-a and hospital-b done",
        |s| {
            site_state(s, "hospital-a") == "done"
                && site_state(s, "hospital-b") == "done"
                && site_state(s, "hospital-c") == "accepted"
        },
    )
    .await;
    first.shutdown().await.unwrap();
    drop((a, b, c));

    let second = coordinator(dir.path(), |_| {}).await;
    let mut admin_client = admin(&second.url()).await;
    let done = status(&mut admin_client, &id).await;
    assert_eq!(done.state, "succeeded", "{} {:?}", done.reason, done.sites);
    let summary: Value = serde_json::from_str(&done.summary_json).unwrap();
    assert_eq!(
        summary["sites"],
        serde_json::json!(["hospital-a", "hospital-b"])
    );
    assert_eq!(summary["pooled"]["count"]["value"], 107.0);
    let c_task = done.sites.iter().find(|s| s.site == "hospital-c").unwrap();
    assert_eq!(c_task.state, "failed", "{c_task:?}");
    assert!(
        c_task.reason.contains("coordinator restarted"),
        "{c_task:?}"
    );
    assert_eq!(second.store().tasks(&id).unwrap().len(), 3);
    second.shutdown().await.unwrap();
}

/// min_sites equals the number of sites: the first refusal dooms the round, yet the job
/// waits for the other answers and fails with all three refusals on record.
#[tokio::test]
async fn every_refusal_is_on_record_when_min_sites_is_every_site() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = coordinator(dir.path(), |_| {}).await;
    let url = coordinator.url();
    let mut a = FakeSite::connect(&url, "hospital-a").await;
    let mut b = FakeSite::connect(&url, "hospital-b").await;
    let mut c = FakeSite::connect(&url, "hospital-c").await;
    let mut admin = admin(&url).await;
    let id = submit(&mut admin, &count_spec(3, 60)).await;
    let (ta, tb, tc) = (
        a.next_task().await,
        b.next_task().await,
        c.next_task().await,
    );
    let why = |site: &str| {
        format!(
            "epsilon 0.5 exceeds max_epsilon_per_job 0.{} of {site}",
            site.len()
        )
    };
    for (site, fake, task) in [("hospital-a", &a, &ta), ("hospital-b", &b, &tb)] {
        fake.update(task, "refused", &why(site)).await;
        wait_for_sites(&mut admin, &id, "the refusal", |s| {
            site_state(s, site) == "refused"
        })
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let waiting = status(&mut admin, &id).await;
        assert_eq!(waiting.state, "running", "{waiting:?}");
    }
    c.update(&tc, "refused", &why("hospital-c")).await;
    let failed = wait_for_state(&mut admin, &id, "failed").await;
    assert_eq!(failed.sites.len(), 3, "{:?}", failed.sites);
    for site in ["hospital-a", "hospital-b", "hospital-c"] {
        let task = failed.sites.iter().find(|s| s.site == site).unwrap();
        assert_eq!(task.state, "refused", "{task:?}");
        assert_eq!(task.reason, why(site), "{task:?}");
        assert!(
            failed
                .reason
                .contains(&format!("{site}: refused ({})", why(site))),
            "{}",
            failed.reason
        );
    }
    assert!(
        failed.reason.contains("only 0 of min_sites 3"),
        "{}",
        failed.reason
    );
    coordinator.shutdown().await.unwrap();
}

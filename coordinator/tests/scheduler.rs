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

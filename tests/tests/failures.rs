//! Reliability (DESIGN section 9): a site that dies or stalls mid-round leaves the job to
//! the quorum; a coordinator killed mid-job resumes after a restart.
//!
//! The failing site is a [`FakeSite`]: a real `SiteApi` session with a real site
//! certificate that accepts its task and then stalls or drops, on cue.

use silo_proto::tls::Role;
use silo_tests::jobs::{self, DpStatsSpec};
use silo_tests::{Deployment, FakeSite, SiteSetup};

/// hospital-a and hospital-b as real daemons, hospital-c as a scripted site; all three
/// connected.
async fn two_real_sites_and_a_scripted_one(
    deployment: &Deployment,
) -> (
    Vec<silo_tests::SiteFiles>,
    Vec<silo_tests::RunningSite>,
    FakeSite,
) {
    let c_cert = deployment.pki.issue(Role::Site, "hospital-c");
    let fake = FakeSite::connect(&deployment.url(), &c_cert, "hospital-c")
        .await
        .expect("the scripted hospital-c registers");
    let files = vec![
        deployment.add_site(SiteSetup::new("hospital-a", 0)),
        deployment.add_site(SiteSetup::new("hospital-b", 1)),
    ];
    let mut running = Vec::new();
    for f in &files {
        running.push(deployment.start_site(f).await);
    }
    let mut admin = deployment.admin().await;
    jobs::wait_until_connected(&mut admin, &["hospital-a", "hospital-b", "hospital-c"]).await;
    (files, running, fake)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_dying_mid_task_leaves_the_job_to_the_quorum() {
    let deployment = Deployment::start().await;
    let (files, running, mut fake) = two_real_sites_and_a_scripted_one(&deployment).await;
    let mut admin = deployment.admin().await;
    let id = jobs::submit(
        &mut admin,
        &DpStatsSpec::new("mean-age", "mean", 0.5).min_sites(2),
    )
    .await;

    let task = fake.next_task().await;
    assert_eq!(task.job_id, id);
    fake.accept(&task).await;
    jobs::wait_until(&mut admin, &id, "hospital-c running", |s| {
        jobs::site_task(s, "hospital-c").state == "running"
    })
    .await;
    drop(fake); // the daemon dies with its task

    let done = jobs::wait_for_end(&mut admin, &id).await;
    assert_eq!(done.state, "succeeded", "{} {:?}", done.reason, done.sites);
    let c = jobs::site_task(&done, "hospital-c");
    assert_eq!(c.state, "failed", "{c:?}");
    assert!(c.reason.contains("disconnected"), "{}", c.reason);
    for f in &files {
        assert_eq!(
            jobs::site_task(&done, &f.name).state,
            "done",
            "{:?}",
            done.sites
        );
        assert_eq!(f.ledger_entries().len(), 1, "{} was charged once", f.name);
    }
    let report = jobs::report(&mut admin, &id).await;
    assert_eq!(
        report["sites"],
        serde_json::json!(["hospital-a", "hospital-b"])
    );
    assert_eq!(
        jobs::connected(&mut admin).await,
        ["hospital-a", "hospital-b"]
    );

    for site in running {
        site.stop().await;
    }
    deployment.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_stalling_past_the_round_timeout_is_excluded() {
    let deployment = Deployment::start().await;
    let (files, running, mut fake) = two_real_sites_and_a_scripted_one(&deployment).await;
    let mut admin = deployment.admin().await;
    let spec = DpStatsSpec::new("mean-age", "mean", 0.5)
        .min_sites(2)
        .round_timeout(4);
    let id = jobs::submit(&mut admin, &spec).await;

    let task = fake.next_task().await;
    fake.accept(&task).await; // ...and never answers

    let done = jobs::wait_for_end(&mut admin, &id).await;
    assert_eq!(done.state, "succeeded", "{} {:?}", done.reason, done.sites);
    let c = jobs::site_task(&done, "hospital-c");
    assert_eq!(c.state, "excluded", "{c:?}");
    assert!(
        c.reason.contains("round_timeout_seconds = 4"),
        "{}",
        c.reason
    );
    assert_eq!(
        fake.next_cancel().await,
        task.task_id,
        "the stalled task is cancelled at its site"
    );
    for f in &files {
        assert_eq!(
            jobs::site_task(&done, &f.name).state,
            "done",
            "{:?}",
            done.sites
        );
    }
    let report = jobs::report(&mut admin, &id).await;
    assert_eq!(
        report["sites"],
        serde_json::json!(["hospital-a", "hospital-b"])
    );

    drop(fake);
    for site in running {
        site.stop().await;
    }
    deployment.shutdown().await;
}

/// min_sites 3: hospital-a and hospital-b finish, hospital-c (scripted) accepts and stalls.
/// The coordinator is killed, restarted on the same data directory and port; the real
/// sites reconnect on their own, a real hospital-c joins, and the job succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_coordinator_resumes_the_job_after_a_restart() {
    let mut deployment = Deployment::start().await;
    let (files, mut running, mut fake) = two_real_sites_and_a_scripted_one(&deployment).await;
    let mut admin = deployment.admin().await;
    let id = jobs::submit(
        &mut admin,
        &DpStatsSpec::new("mean-age", "mean", 0.5).min_sites(3),
    )
    .await;
    let task = fake.next_task().await;
    fake.accept(&task).await;
    jobs::wait_until(&mut admin, &id, "hospital-a and hospital-b done", |s| {
        ["hospital-a", "hospital-b"]
            .iter()
            .all(|n| jobs::site_task(s, n).state == "done")
    })
    .await;

    deployment.kill_coordinator();
    drop(fake);
    deployment.restart_coordinator().await;
    for site in &mut running {
        site.wait_registered().await;
    }
    let mut admin = deployment.admin().await;
    let resumed = jobs::status(&mut admin, &id).await;
    assert_eq!(resumed.state, "running", "{resumed:?}");

    let c = deployment.add_site(SiteSetup::new("hospital-c", 2));
    running.push(deployment.start_site(&c).await);
    let done = jobs::wait_for_end(&mut admin, &id).await;
    assert_eq!(done.state, "succeeded", "{} {:?}", done.reason, done.sites);
    let report = jobs::report(&mut admin, &id).await;
    assert_eq!(
        report["sites"],
        serde_json::json!(["hospital-a", "hospital-b", "hospital-c"])
    );
    assert_eq!(c.ledger_entries().len(), 1);
    for f in &files {
        let charges: Vec<_> = f
            .ledger_entries()
            .into_iter()
            .filter(|e| e.job_id == id)
            .collect();
        assert!(!charges.is_empty(), "{}", f.name);
    }

    for site in running {
        site.stop().await;
    }
    deployment.shutdown().await;
}

/// What the restart must not cost: the releases hospital-a and hospital-b delivered (and
/// were charged for) before the crash were acknowledged and stored; the restarted
/// coordinator should finish the round with them and ask only hospital-c.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_restart_keeps_the_results_it_acknowledged() {
    let mut deployment = Deployment::start().await;
    let (files, mut running, mut fake) = two_real_sites_and_a_scripted_one(&deployment).await;
    let mut admin = deployment.admin().await;
    let id = jobs::submit(
        &mut admin,
        &DpStatsSpec::new("mean-age", "mean", 0.5).min_sites(3),
    )
    .await;
    let task = fake.next_task().await;
    fake.accept(&task).await;
    jobs::wait_until(&mut admin, &id, "hospital-a and hospital-b done", |s| {
        ["hospital-a", "hospital-b"]
            .iter()
            .all(|n| jobs::site_task(s, n).state == "done")
    })
    .await;

    deployment.kill_coordinator();
    drop(fake);
    deployment.restart_coordinator().await;
    for site in &mut running {
        site.wait_registered().await;
    }
    let c = deployment.add_site(SiteSetup::new("hospital-c", 2));
    running.push(deployment.start_site(&c).await);
    let mut admin = deployment.admin().await;
    let done = jobs::wait_for_end(&mut admin, &id).await;
    assert_eq!(done.state, "succeeded", "{} {:?}", done.reason, done.sites);
    for f in &files {
        let charges: Vec<_> = f
            .ledger_entries()
            .into_iter()
            .filter(|e| e.job_id == id)
            .collect();
        assert_eq!(
            charges.len(),
            1,
            "{} released twice for one job: {charges:?}",
            f.name
        );
    }
    let report = jobs::report(&mut admin, &id).await;
    for f in &files {
        let spent = report["epsilon_spent"][&f.name].as_f64().unwrap();
        assert!(
            spent <= 0.5 + 1e-9,
            "{} charged {spent} for a job of ε 0.5",
            f.name
        );
    }

    for site in running {
        site.stop().await;
    }
    deployment.shutdown().await;
}

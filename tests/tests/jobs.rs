//! Jobs end to end: real site daemons compute, charge and release; the coordinator pools;
//! budgets are enforced at the sites before anything is released, and survive restarts.

use silo_tests::jobs::{self, DpStatsSpec};
use silo_tests::{Deployment, SiteSetup};

/// Three hospitals estimate a mean age together: the pooled estimate is within four of
/// its stated noise standard deviations of the truth (which the test knows: it made the
/// data), and every site's ledger and the coordinator's audit agree on what it cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sites_pool_a_dp_mean_within_its_stated_noise() {
    let deployment = Deployment::start().await;
    let files: Vec<_> = [
        ("hospital-a", 200),
        ("hospital-b", 300),
        ("hospital-c", 400),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (name, patients))| deployment.add_site(SiteSetup::new(name, i).patients(patients)))
    .collect();
    let mut running = Vec::new();
    for f in &files {
        running.push(deployment.start_site(f).await);
    }
    let mut admin = deployment.admin().await;

    // Gaussian noise (δ set): its tails make a 4σ bound a safe test.
    let spec = DpStatsSpec::new("mean-age", "mean", 1.0)
        .delta(1e-6)
        .min_sites(3);
    let id = jobs::submit(&mut admin, &spec).await;
    let done = jobs::wait_for_end(&mut admin, &id).await;
    assert_eq!(done.state, "succeeded", "{} {:?}", done.reason, done.sites);
    for f in &files {
        assert_eq!(
            jobs::site_task(&done, &f.name).state,
            "done",
            "{:?}",
            done.sites
        );
    }

    let report = jobs::report(&mut admin, &id).await;
    for key in ["kind", "sites", "epsilon_spent"] {
        assert!(
            report.get(key).is_some(),
            "report.json has no {key}: {report}"
        );
    }
    assert_eq!(report["kind"], "dp_stats");
    assert_eq!(
        report["sites"],
        serde_json::json!(["hospital-a", "hospital-b", "hospital-c"])
    );

    let ages: Vec<f64> = files.iter().flat_map(|f| f.ages.iter().copied()).collect();
    let truth_mean = ages.iter().sum::<f64>() / ages.len() as f64;
    let mean = &report["pooled"]["mean"];
    let (estimate, std) = (
        mean["value"].as_f64().unwrap(),
        mean["noise_std"].as_f64().unwrap(),
    );
    assert!(
        std > 0.0 && std < 5.0,
        "implausible noise std {std}: {report}"
    );
    assert!(
        (estimate - truth_mean).abs() <= 4.0 * std,
        "pooled mean {estimate} ± {std} is more than 4σ from the truth {truth_mean}"
    );
    let count = &report["pooled"]["count"];
    let (n, n_std) = (
        count["value"].as_f64().unwrap(),
        count["noise_std"].as_f64().unwrap(),
    );
    assert!(
        (n - ages.len() as f64).abs() <= 4.0 * n_std,
        "pooled count {n} ± {n_std} vs {} patients",
        ages.len()
    );

    // What each site spent: one ledger entry for the job, at most the job's ε, and the
    // same figure in the report and in the coordinator's audit copy.
    for f in &files {
        let entries = f.ledger_entries();
        assert_eq!(entries.len(), 1, "{}: {entries:?}", f.name);
        assert_eq!(entries[0].job_id, id);
        assert!(f.ledger().verify().unwrap().ok());
        let reported = report["epsilon_spent"][&f.name].as_f64().unwrap();
        assert!(
            reported > 0.0 && reported <= 1.0 + 1e-9,
            "{}: {reported}",
            f.name
        );
        let rows = jobs::budget(&mut admin, &f.name).await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].charges, 1);
        assert!(rows[0].ledger_consistent, "{rows:?}");
        assert!(
            (rows[0].epsilon_spent - f.spent()).abs() < 1e-9,
            "{rows:?} vs {}",
            f.spent()
        );
    }

    for site in running {
        site.stop().await;
    }
    deployment.shutdown().await;
}

/// A job that would overrun the sites' budgets (ε = 0.8 after 0.8 of 1.0), and one above
/// a site's per-job cap, are refused by every site before anything is computed or
/// released: the job fails with each site's reason, and the ledgers do not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_over_budget_is_refused_before_any_release() {
    let deployment = Deployment::start().await;
    let files: Vec<_> = ["hospital-a", "hospital-b"]
        .into_iter()
        .enumerate()
        .map(|(i, name)| deployment.add_site(SiteSetup::new(name, i).budget(1.0)))
        .collect();
    let mut running = Vec::new();
    for f in &files {
        running.push(deployment.start_site(f).await);
    }
    let mut admin = deployment.admin().await;

    let first = jobs::submit(&mut admin, &DpStatsSpec::new("first", "sum", 0.8)).await;
    let done = jobs::wait_for_end(&mut admin, &first).await;
    assert_eq!(done.state, "succeeded", "{} {:?}", done.reason, done.sites);
    let before: Vec<_> = files.iter().map(|f| f.ledger_entries()).collect();
    assert!(
        before.iter().all(|entries| entries.len() == 1),
        "{before:?}"
    );

    // The job fails only once every site has answered, so each refusal is on record (with
    // min_sites = every site too: see every_refusal_is_on_record_when_min_sites_is_every_site).
    for (spec, why) in [
        (
            DpStatsSpec::new("second", "sum", 0.8).min_sites(1),
            "budget exhausted",
        ),
        (
            DpStatsSpec::new("greedy", "sum", 2.5).min_sites(1),
            "max_epsilon_per_job",
        ),
    ] {
        let id = jobs::submit(&mut admin, &spec).await;
        let failed = jobs::wait_for_end(&mut admin, &id).await;
        assert_eq!(failed.state, "failed", "{}: {failed:?}", spec.name);
        for f in &files {
            let task = jobs::site_task(&failed, &f.name);
            assert_eq!(task.state, "refused", "{}: {task:?}", spec.name);
            assert!(task.reason.contains(why), "{}: {}", spec.name, task.reason);
            assert!(
                task.reason.contains(&f.name),
                "the reason names the site: {}",
                task.reason
            );
            assert!(failed.reason.contains(&f.name), "{}", failed.reason);
        }
        let err = jobs::result_files(&mut admin, &id).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err}");
    }
    let after: Vec<_> = files.iter().map(|f| f.ledger_entries()).collect();
    assert_eq!(before, after, "a refused job changed a ledger");

    for site in running {
        site.stop().await;
    }
    deployment.shutdown().await;
}

/// Spend is durable: a site that stops and starts again from the same folder still has
/// its charge, reports the same spend at registration (and so in the coordinator's
/// audit), and refuses a job that the remaining budget cannot pay for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_survives_a_site_restart_and_still_bounds_new_jobs() {
    let deployment = Deployment::start().await;
    let a = deployment.add_site(SiteSetup::new("hospital-a", 0).budget(1.0));
    let b = deployment.add_site(SiteSetup::new("hospital-b", 1).budget(1.0));
    let site_a = deployment.start_site(&a).await;
    let site_b = deployment.start_site(&b).await;
    let mut admin = deployment.admin().await;
    let mut auditor = deployment.auditor().await;

    let id = jobs::submit(&mut admin, &DpStatsSpec::new("first", "mean", 0.7)).await;
    let done = jobs::wait_for_end(&mut admin, &id).await;
    assert_eq!(done.state, "succeeded", "{} {:?}", done.reason, done.sites);
    let charged = a.ledger_entries();
    assert_eq!(charged.len(), 1, "{charged:?}");
    let spent = a.spent();
    assert!(spent > 0.6 && spent <= 0.7 + 1e-9, "{spent}");

    site_a.stop().await;
    jobs::wait_until_disconnected(&mut auditor, "hospital-a").await;
    assert_eq!(
        a.ledger_entries(),
        charged,
        "the ledger changed while the site was down"
    );

    let site_a = deployment.start_site(&a).await;
    let info = jobs::sites(&mut auditor)
        .await
        .into_iter()
        .find(|s| s.name == "hospital-a")
        .expect("hospital-a is known");
    assert!(info.connected);
    assert_eq!(
        info.ledger_head, charged[0].hash,
        "registration reports the ledger head"
    );
    assert!(info.ledger_consistent);
    let declared = &info.datasets[0];
    assert!(
        (declared.epsilon_spent - spent).abs() < 1e-9,
        "registered {declared:?}, ledger {spent}"
    );
    let rows = jobs::budget(&mut auditor, "hospital-a").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!((rows[0].epsilon_spent - spent).abs() < 1e-9, "{rows:?}");
    assert!(
        (rows[0].epsilon_remaining - (1.0 - spent)).abs() < 1e-9,
        "{rows:?}"
    );
    assert_eq!(rows[0].jobs, vec![id.clone()]);

    // 0.7 more does not fit in what is left.
    let spec = DpStatsSpec::new("second", "mean", 0.7)
        .sites(&["hospital-a"])
        .min_sites(1);
    let second = jobs::submit(&mut admin, &spec).await;
    let refused = jobs::wait_for_end(&mut admin, &second).await;
    assert_eq!(refused.state, "failed", "{refused:?}");
    let task = jobs::site_task(&refused, "hospital-a");
    assert_eq!(task.state, "refused", "{task:?}");
    assert!(task.reason.contains("budget exhausted"), "{}", task.reason);
    assert_eq!(a.ledger_entries(), charged);

    site_a.stop().await;
    site_b.stop().await;
    deployment.shutdown().await;
}

/// Regression: a site's first charge must advance the ledger head the coordinator holds
/// for it, so the audit does not flag an honest site as inconsistent after its first job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_site_stays_ledger_consistent_after_its_first_job() {
    let deployment = Deployment::start().await;
    let a = deployment.add_site(SiteSetup::new("hospital-a", 0));
    let site = deployment.start_site(&a).await;
    let mut admin = deployment.admin().await;
    let spec = DpStatsSpec::new("count", "count", 0.5).min_sites(1);
    let id = jobs::submit(&mut admin, &spec).await;
    let done = jobs::wait_for_end(&mut admin, &id).await;
    assert_eq!(done.state, "succeeded", "{} {:?}", done.reason, done.sites);

    let head = a.ledger_entries().last().expect("one charge").hash.clone();
    let info = jobs::sites(&mut admin)
        .await
        .into_iter()
        .find(|s| s.name == "hospital-a")
        .unwrap();
    assert_eq!(info.audit_head, head);
    assert_eq!(
        info.ledger_head, head,
        "the coordinator did not follow the site's chain"
    );
    assert!(info.ledger_consistent, "{info:?}");
    let rows = jobs::budget(&mut admin, "hospital-a").await;
    assert!(rows.iter().all(|r| r.ledger_consistent), "{rows:?}");

    site.stop().await;
    deployment.shutdown().await;
}

/// min_sites equals the number of sites and every site refuses (ε above each site's
/// `max_epsilon_per_job`): the first refusal already dooms the round, but the job waits for
/// the other answers, so it fails with every site's own reason on record (none of them
/// "cancelled: job failed"), and nothing is charged anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_on_record_when_min_sites_is_every_site() {
    let deployment = Deployment::start().await;
    let files: Vec<_> = ["hospital-a", "hospital-b", "hospital-c"]
        .into_iter()
        .enumerate()
        .map(|(i, name)| deployment.add_site(SiteSetup::new(name, i)))
        .collect();
    let mut running = Vec::new();
    for f in &files {
        running.push(deployment.start_site(f).await);
    }
    let mut admin = deployment.admin().await;
    jobs::wait_until_connected(&mut admin, &["hospital-a", "hospital-b", "hospital-c"]).await;

    // Each site caps ε per job at 2.0.
    let spec = DpStatsSpec::new("greedy", "mean", 2.5).min_sites(3);
    let id = jobs::submit(&mut admin, &spec).await;
    let failed = jobs::wait_for_end(&mut admin, &id).await;
    assert_eq!(failed.state, "failed", "{failed:?}");
    assert_eq!(failed.sites.len(), 3, "{:?}", failed.sites);
    for f in &files {
        let task = jobs::site_task(&failed, &f.name);
        assert_eq!(task.state, "refused", "{task:?}");
        assert!(
            task.reason.contains("max_epsilon_per_job"),
            "{}: {}",
            f.name,
            task.reason
        );
        assert!(
            failed.reason.contains(&format!("{}: refused", f.name)),
            "{}",
            failed.reason
        );
        assert!(f.ledger_entries().is_empty(), "{} was charged", f.name);
    }
    assert!(
        failed.reason.contains("only 0 of min_sites 3"),
        "{}",
        failed.reason
    );

    for site in running {
        site.stop().await;
    }
    deployment.shutdown().await;
}

//! Who may talk to the coordinator, and as whom: mutual TLS with the project CA, roles
//! from certificates, and sites that can only ever speak for themselves (DESIGN section 2,
//! rule 6).
//!
//! With TLS 1.3 a client whose certificate the server refuses still completes its side of
//! the handshake, so `connect` may succeed: every refusal is proven by a failing RPC.

use silo_proto::tls::{self, Role};
use silo_proto::{BudgetAuditRequest, HealthRequest, JobRef, ListJobsRequest, SubmitJobRequest};
use silo_tests::jobs::{self, DpStatsSpec};
use silo_tests::{Deployment, FakeSite, SiteSetup, eventually};
use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// An error and its causes on one line (TLS alerts sit deep in the chain).
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        text.push_str(&format!(": {next}"));
        cause = next.source();
    }
    text
}

/// Asserts that a call failed at the transport (the TLS handshake was refused), not in
/// a service: a service error (`InvalidArgument`, `PermissionDenied`...) would mean the
/// request was read. Depending on timing the client sees the server's TLS alert
/// (`CertificateRequired`, `UnknownCA`, `CertificateExpired`) or only the closed connection.
fn assert_refused_by_tls(what: &str, result: Result<tonic::Status, tls::TlsError>, alert: &str) {
    match result {
        Err(e) => assert!(
            chain(&e).contains(alert) || chain(&e).contains("connection"),
            "{what}: {}",
            chain(&e)
        ),
        Ok(status) => {
            let text = chain(&status);
            assert!(
                matches!(
                    status.code(),
                    Code::Unknown | Code::Unavailable | Code::Cancelled | Code::Internal
                ),
                "{what} was served: {text}"
            );
            assert!(
                text.contains(alert) || text.contains("connection") || text.contains("broken pipe"),
                "{what}: {text}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_a_certificate_of_the_project_ca_are_refused() {
    let deployment = Deployment::start().await;
    let url = deployment.url();

    // No client certificate: trusts the CA, presents nothing.
    let ca = std::fs::read(deployment.pki.ca_pem()).unwrap();
    let anonymous = Endpoint::from_shared(url.clone())
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&ca))
                .domain_name("127.0.0.1"),
        )
        .unwrap();
    match anonymous.connect().await {
        Err(e) => assert!(chain(&e).contains("CertificateRequired"), "{}", chain(&e)),
        Ok(channel) => {
            let admin_call = tls::admin_client(channel.clone())
                .health(HealthRequest {})
                .await;
            let admin_call = admin_call.expect_err("a client without a certificate was served");
            assert_refused_by_tls("anonymous Health", Ok(admin_call), "CertificateRequired");
            let site_call = tls::site_client(channel)
                .session(tokio_stream::iter(Vec::<silo_proto::SiteMessage>::new()))
                .await
                .expect_err("a site session without a certificate was opened");
            assert_refused_by_tls("anonymous Session", Ok(site_call), "CertificateRequired");
        }
    }

    // A well-formed admin certificate from another CA.
    let mallory = deployment.pki.foreign(Role::Admin, "mallory");
    let result = match deployment.client(&mallory).await {
        Err(e) => Err(e),
        Ok(mut client) => Ok(client
            .submit_job(SubmitJobRequest {
                spec_toml: DpStatsSpec::new("x", "count", 0.1).toml(),
            })
            .await
            .expect_err("a certificate from another CA was served")),
    };
    assert_refused_by_tls("foreign admin SubmitJob", result, "UnknownCA");

    // A foreign *site* certificate cannot open a session either.
    let rogue_site = deployment.pki.foreign(Role::Site, "hospital-z");
    let err = FakeSite::connect(&url, &rogue_site, "hospital-z")
        .await
        .err()
        .expect("a site with a foreign certificate registered");
    assert_refused_by_tls("foreign site Session", Ok(err), "UnknownCA");

    // An expired certificate from the right CA.
    let expired = deployment.pki.issue_expired(Role::Admin, "bob");
    let result = match deployment.client(&expired).await {
        Err(e) => Err(e),
        Ok(mut client) => Ok(client
            .list_jobs(ListJobsRequest {})
            .await
            .expect_err("an expired certificate was served")),
    };
    assert_refused_by_tls("expired ListJobs", result, "CertificateExpired");

    // None of them left a trace, and honest clients are still served.
    let mut admin = deployment.admin().await;
    assert!(jobs::sites(&mut admin).await.is_empty());
    assert!(
        admin
            .list_jobs(ListJobsRequest {})
            .await
            .unwrap()
            .into_inner()
            .jobs
            .is_empty()
    );
    let health = admin.health(HealthRequest {}).await.unwrap().into_inner();
    assert_eq!(
        (health.caller.as_str(), health.role.as_str()),
        (silo_tests::ADMIN, "admin")
    );
    deployment.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_cannot_register_under_another_sites_name() {
    let deployment = Deployment::start().await;
    let url = deployment.url();
    let a = deployment.add_site(SiteSetup::new("hospital-a", 0));
    let mut site_a = deployment.start_site(&a).await;
    let mut admin = deployment.admin().await;
    assert_eq!(jobs::connected(&mut admin).await, ["hospital-a"]);

    // A scripted client with hospital-b's certificate saying it is hospital-a.
    let b_cert = deployment.pki.issue(Role::Site, "hospital-b");
    let err = FakeSite::connect(&url, &b_cert, "hospital-a")
        .await
        .err()
        .expect("hospital-b registered as hospital-a");
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    assert!(
        err.message().contains("\"hospital-b\"") && err.message().contains("\"hospital-a\""),
        "{err}"
    );

    // A real daemon whose site.toml says hospital-a but holds hospital-b's certificate.
    let impostor =
        deployment.add_site(SiteSetup::new("hospital-a", 1).with_cert_of("hospital-b", "impostor"));
    let mut daemon = silo_tests::RunningSite::spawn(&impostor);
    let reason = daemon.wait_disconnected().await;
    assert!(reason.contains("PermissionDenied"), "{reason}");
    assert!(
        reason.contains("may only register under the name in its certificate"),
        "{reason}"
    );

    // Neither name shows a second session, and the real hospital-a was not displaced.
    let events = site_a.pending_events();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, silo_client::daemon::DaemonEvent::Disconnected { .. })),
        "the real hospital-a lost its session: {events:?}"
    );
    let sites = jobs::sites(&mut admin).await;
    assert_eq!(
        jobs::connected(&mut admin).await,
        ["hospital-a"],
        "{sites:?}"
    );
    assert!(sites.iter().all(|s| s.name != "hospital-b"), "{sites:?}");
    let spec = DpStatsSpec::new("count", "count", 0.5).min_sites(1);
    let id = jobs::submit(&mut admin, &spec).await;
    let done = jobs::wait_for_end(&mut admin, &id).await;
    assert_eq!(done.state, "succeeded", "{} {:?}", done.reason, done.sites);
    assert_eq!(done.sites.len(), 1, "{:?}", done.sites);
    assert_eq!(jobs::site_task(&done, "hospital-a").state, "done");
    // The task reached the real daemon, not the impostor.
    assert_eq!(a.ledger_entries().len(), 1);
    assert!(!impostor.config().ledger_path().exists() || impostor.ledger_entries().is_empty());

    // An admin certificate cannot open a site session at all.
    let err = FakeSite::connect(
        &url,
        &deployment.pki.files(silo_tests::ADMIN),
        silo_tests::ADMIN,
    )
    .await
    .err()
    .expect("an admin opened a site session");
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");

    drop(daemon);
    site_a.stop().await;
    deployment.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditors_read_but_cannot_submit_or_cancel() {
    let deployment = Deployment::start().await;
    let a = deployment.add_site(SiteSetup::new("hospital-a", 0));
    let site = deployment.start_site(&a).await;
    let mut admin = deployment.admin().await;
    let mut auditor = deployment.auditor().await;

    let err = auditor
        .submit_job(SubmitJobRequest {
            spec_toml: DpStatsSpec::new("x", "count", 0.5).min_sites(1).toml(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    assert!(
        admin
            .list_jobs(ListJobsRequest {})
            .await
            .unwrap()
            .into_inner()
            .jobs
            .is_empty()
    );

    // A job that finishes, and one that waits (min_sites 2 with one site) to be cancelled.
    let finished = jobs::submit(
        &mut admin,
        &DpStatsSpec::new("count", "count", 0.5).min_sites(1),
    )
    .await;
    jobs::wait_until(&mut admin, &finished, "succeeded", |s| {
        s.state == "succeeded"
    })
    .await;
    let waiting = jobs::submit(
        &mut admin,
        &DpStatsSpec::new("waits", "count", 0.5).min_sites(2),
    )
    .await;

    let err = auditor
        .cancel_job(JobRef {
            id: waiting.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    let still = jobs::status(&mut auditor, &waiting).await;
    assert_eq!(still.state, "queued", "{still:?}");

    // Reading is allowed: status, lists, results, sites, the audit.
    let read = jobs::status(&mut auditor, &finished).await;
    assert_eq!(read.state, "succeeded");
    assert_eq!(
        auditor
            .list_jobs(ListJobsRequest {})
            .await
            .unwrap()
            .into_inner()
            .jobs
            .len(),
        2
    );
    let report = jobs::report(&mut auditor, &finished).await;
    assert_eq!(report["kind"], "dp_stats");
    let rows = auditor
        .budget_audit(BudgetAuditRequest::default())
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((rows[0].site.as_str(), rows[0].charges), ("hospital-a", 1));
    assert_eq!(jobs::connected(&mut auditor).await, ["hospital-a"]);
    let health = auditor.health(HealthRequest {}).await.unwrap().into_inner();
    assert_eq!(
        (health.caller.as_str(), health.role.as_str()),
        (silo_tests::AUDITOR, "auditor")
    );

    // A site certificate is not a user: no admin API at all.
    let mut as_site = deployment
        .client(&deployment.pki.files("hospital-a"))
        .await
        .unwrap();
    let err = as_site.list_jobs(ListJobsRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");

    // The admin can cancel what the auditor could not.
    let cancelled = admin
        .cancel_job(JobRef {
            id: waiting.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.state, "cancelled");
    eventually("the cancel to be visible to the auditor", || {
        let mut auditor = auditor.clone();
        let id = waiting.clone();
        async move { (jobs::status(&mut auditor, &id).await.state == "cancelled").then_some(()) }
    })
    .await;

    site.stop().await;
    deployment.shutdown().await;
}

//! AdminApi roles, spec errors, site identity checks and the budget audit (plaintext
//! loopback; the identity checks under mutual TLS are covered by the end-to-end tests).

mod support;

use silo_proto::site_message::Body as Up;
use silo_proto::{
    BudgetAuditRequest, HealthRequest, JobRef, ListJobsRequest, ListSitesRequest, Register,
    SiteMessage, SubmitJobRequest,
};
use support::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

#[tokio::test]
async fn auditors_read_but_cannot_submit_or_cancel_and_sites_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = coordinator(dir.path(), |_| {}).await;
    let mut admin = admin(&coordinator.url()).await;

    let health = admin
        .health(as_role(HealthRequest {}, "auditor"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (health.status.as_str(), health.role.as_str()),
        ("serving", "auditor")
    );
    admin
        .list_jobs(as_role(ListJobsRequest {}, "auditor"))
        .await
        .unwrap();
    admin
        .budget_audit(as_role(BudgetAuditRequest::default(), "auditor"))
        .await
        .unwrap();

    let spec = SubmitJobRequest {
        spec_toml: count_spec(1, 60),
    };
    let err = admin
        .submit_job(as_role(spec.clone(), "auditor"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("role auditor cannot submit jobs"),
        "{}",
        err.message()
    );
    let err = admin
        .cancel_job(as_role(JobRef { id: "x".into() }, "auditor"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    for role in ["site", "coordinator"] {
        let err = admin
            .list_jobs(as_role(ListJobsRequest {}, role))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{role}");
    }
    let err = admin
        .list_jobs(as_role(ListJobsRequest {}, "janitor"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = admin
        .get_job(JobRef {
            id: "job-nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    coordinator.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_bad_spec_is_refused_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = coordinator(dir.path(), |_| {}).await;
    let mut admin = admin(&coordinator.url()).await;
    let err = admin
        .submit_job(SubmitJobRequest {
            spec_toml: "kind = \"dp_stats\"\nname = \"\"\ndataset = \"v\"\nmin_sites = 0\n\
                        [privacy]\nepsilon = -1.0\n[params]\nstatistic = \"count\"\n"
                .into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    for field in ["name", "min_sites", "privacy.epsilon"] {
        assert!(
            err.message().contains(field),
            "{field} missing: {}",
            err.message()
        );
    }
    let id = submit(&mut admin, &count_spec(1, 60)).await;
    let err = admin.get_result(JobRef { id }).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    coordinator.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_site_may_only_register_under_its_own_name() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = coordinator(dir.path(), |_| {}).await;
    let channel = silo_proto::tls::connect(&coordinator.url(), None, true)
        .await
        .unwrap();
    let mut client = silo_proto::tls::site_client(channel);
    let (tx, rx) = mpsc::channel(4);
    tx.send(SiteMessage {
        body: Some(Up::Register(Register {
            site_name: "hospital-b".into(),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    request.metadata_mut().insert(
        silo_coordinator::server::INSECURE_NAME,
        "hospital-a".parse().unwrap(),
    );
    let err = client.session(request).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("\"hospital-a\""),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("\"hospital-b\""),
        "{}",
        err.message()
    );

    // An admin certificate cannot open a site session.
    let (tx, rx) = mpsc::channel(4);
    tx.send(SiteMessage {
        body: Some(Up::Register(Register {
            site_name: "alice".into(),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let err = client
        .session(as_role(ReceiverStream::new(rx), "admin"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    coordinator.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_budget_audit_follows_the_charges_and_the_ledger_head() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = coordinator(dir.path(), |_| {}).await;
    let url = coordinator.url();
    let mut a = FakeSite::connect(&url, "hospital-a").await;
    let mut admin = admin(&url).await;
    for _ in 0..2 {
        let id = submit(&mut admin, &count_spec(1, 60)).await;
        let task = a.next_task().await;
        a.answer(&task, 1.0).await;
        wait_for_state(&mut admin, &id, "succeeded").await;
    }
    let rows = admin
        .budget_audit(as_role(
            BudgetAuditRequest {
                site: "hospital-a".into(),
                dataset: String::new(),
            },
            "auditor",
        ))
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (row.dataset.as_str(), row.epsilon_budget, row.epsilon_spent),
        ("visits", 4.0, 1.0)
    );
    assert_eq!(row.epsilon_remaining, 3.0);
    assert_eq!((row.charges, row.jobs.len()), (2, 2));
    assert!(row.ledger_consistent);

    // The site comes back claiming a ledger head the coordinator never saw a charge for.
    drop(a);
    let _a = FakeSite::connect_with(&url, "hospital-a", "forged-head", 9, 1.0).await;
    let sites = admin
        .list_sites(ListSitesRequest {})
        .await
        .unwrap()
        .into_inner()
        .sites;
    let site = &sites[0];
    assert!(site.connected);
    assert_eq!(site.ledger_head, "forged-head");
    assert_eq!(site.audit_head, "hospital-a-h2");
    assert!(!site.ledger_consistent);
    let rows = admin
        .budget_audit(BudgetAuditRequest::default())
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert!(!rows[0].ledger_consistent);
    coordinator.shutdown().await.unwrap();
}

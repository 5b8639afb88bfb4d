//! The coordinator over mutual TLS with certificates from the project CA: roles come from
//! the certificate, a site can only register under its own name, and a job runs end to
//! end. (The full multi-daemon scenarios live in the workspace `tests/` crate.)

mod support;

use silo_coordinator::ca::{self, Ca};
use silo_coordinator::config::CoordinatorConfig;
use silo_coordinator::server;
use silo_proto::tls::{Role, TlsFiles};
use silo_proto::{HealthRequest, ListJobsRequest, SubmitJobRequest};
use support::*;
use tonic::Code;

async fn admin_as(
    url: &str,
    files: &TlsFiles,
) -> silo_proto::admin_api_client::AdminApiClient<tonic::transport::Channel> {
    let channel = silo_proto::tls::connect(url, Some(files), false)
        .await
        .unwrap();
    silo_proto::tls::admin_client(channel)
}

#[tokio::test]
async fn roles_and_site_names_come_from_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_dir, certs) = (dir.path().join("ca"), dir.path().join("certs"));
    let authority = Ca::generate().unwrap();
    authority.write(&ca_dir, false).unwrap();
    for (role, name) in [
        (Role::Coordinator, "coordinator"),
        (Role::Admin, "alice"),
        (Role::Auditor, "audrey"),
        (Role::Site, "hospital-a"),
    ] {
        let issued = authority.issue(role, name, &[], 30).unwrap();
        ca::write_pair(&certs, name, &issued, false).unwrap();
    }
    let mut config = CoordinatorConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        dir.path().join("data"),
        Some(ca::tls_files(&ca_dir, &certs, "coordinator")),
    );
    config.shutdown_grace_seconds = 2;
    let coordinator = server::start(config).await.unwrap();
    let url = coordinator.url();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let mut alice = admin_as(&url, &ca::tls_files(&ca_dir, &certs, "alice")).await;
    let health = alice.health(HealthRequest {}).await.unwrap().into_inner();
    assert_eq!(
        (health.caller.as_str(), health.role.as_str()),
        ("alice", "admin")
    );

    let mut audrey = admin_as(&url, &ca::tls_files(&ca_dir, &certs, "audrey")).await;
    audrey.list_jobs(ListJobsRequest {}).await.unwrap();
    let err = audrey
        .submit_job(SubmitJobRequest {
            spec_toml: count_spec(1, 60),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("role auditor cannot submit jobs"),
        "{}",
        err.message()
    );

    let site_files = ca::tls_files(&ca_dir, &certs, "hospital-a");
    let mut as_site = admin_as(&url, &site_files).await;
    let err = as_site.list_jobs(ListJobsRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // Insecure-mode metadata means nothing under mutual TLS.
    let err = as_site
        .list_jobs(as_role(ListJobsRequest {}, "admin"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let err = FakeSite::connect_tls(&url, &site_files, "hospital-b")
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("\"hospital-a\""),
        "{}",
        err.message()
    );
    let err = FakeSite::connect_tls(&url, &ca::tls_files(&ca_dir, &certs, "alice"), "alice")
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::PermissionDenied);

    let mut site = FakeSite::connect_tls(&url, &site_files, "hospital-a")
        .await
        .unwrap();
    let id = submit(&mut alice, &count_spec(1, 60)).await;
    let task = site.next_task().await;
    site.answer(&task, 42.0).await;
    let done = wait_for_state(&mut alice, &id, "succeeded").await;
    assert_eq!(done.submitted_by, "alice");
    coordinator.shutdown().await.unwrap();
}

#[tokio::test]
async fn plaintext_is_refused_off_loopback_and_without_tls_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = CoordinatorConfig::new("0.0.0.0:0".parse().unwrap(), dir.path(), None);
    config.insecure = true;
    let err = server::start(config).await.unwrap_err();
    assert!(format!("{err:#}").contains("loopback"), "{err:#}");
    let mut config = CoordinatorConfig::new("127.0.0.1:0".parse().unwrap(), dir.path(), None);
    config.insecure = false;
    let err = server::start(config).await.unwrap_err();
    assert!(format!("{err:#}").contains("[tls]"), "{err:#}");
}

//! Mutual TLS end to end: a CA made with `silo ca`, a tonic server on 127.0.0.1:0 that
//! requires client certificates, and clients with good, missing, foreign and expired
//! certificates.
//!
//! With TLS 1.3 the client finishes its handshake before the server has checked the
//! client certificate, so a refused client may still "connect": each refusal below is
//! proven by a failing RPC.

use std::net::SocketAddr;
use std::path::Path;

use clap::Parser;
use silo_coordinator::ca::{self, Ca};
use silo_coordinator::cli::{self, Cli};
use silo_proto::admin_api_server::{AdminApi, AdminApiServer};
use silo_proto::tls::{self, Role, TlsError, TlsFiles};
use silo_proto::{
    BudgetAuditRequest, BudgetAuditResponse, HealthRequest, HealthResponse, JobEvent, JobRef,
    JobStatus, ListJobsRequest, ListJobsResponse, ListSitesRequest, ListSitesResponse, ResultFile,
    SubmitJobRequest,
};
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Server};
use tonic::{Request, Response, Status};

/// An `AdminApi` that answers `health` with the caller's certificate identity.
struct Echo;

type Empty<T> = tokio_stream::Empty<Result<T, Status>>;

#[tonic::async_trait]
impl AdminApi for Echo {
    async fn health(
        &self,
        request: Request<HealthRequest>,
    ) -> Result<Response<HealthResponse>, Status> {
        let peer = tls::peer_identity(&request)?;
        Ok(Response::new(HealthResponse {
            status: "serving".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            caller: peer.name,
            role: peer.role.to_string(),
        }))
    }
    async fn submit_job(
        &self,
        _: Request<SubmitJobRequest>,
    ) -> Result<Response<JobStatus>, Status> {
        Err(Status::unimplemented("test server"))
    }
    async fn list_jobs(
        &self,
        _: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        Err(Status::unimplemented("test server"))
    }
    async fn get_job(&self, _: Request<JobRef>) -> Result<Response<JobStatus>, Status> {
        Err(Status::unimplemented("test server"))
    }
    type WatchJobStream = Empty<JobEvent>;
    async fn watch_job(
        &self,
        _: Request<JobRef>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        Err(Status::unimplemented("test server"))
    }
    async fn cancel_job(&self, _: Request<JobRef>) -> Result<Response<JobStatus>, Status> {
        Err(Status::unimplemented("test server"))
    }
    type GetResultStream = Empty<ResultFile>;
    async fn get_result(
        &self,
        _: Request<JobRef>,
    ) -> Result<Response<Self::GetResultStream>, Status> {
        Err(Status::unimplemented("test server"))
    }
    async fn list_sites(
        &self,
        _: Request<ListSitesRequest>,
    ) -> Result<Response<ListSitesResponse>, Status> {
        Err(Status::unimplemented("test server"))
    }
    async fn budget_audit(
        &self,
        _: Request<BudgetAuditRequest>,
    ) -> Result<Response<BudgetAuditResponse>, Status> {
        Err(Status::unimplemented("test server"))
    }
}

/// A running test server; dropping it stops the server.
struct TestServer {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

async fn start_server(files: &TlsFiles) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let router = Server::builder()
        .tls_config(tls::server_tls_config(files).unwrap())
        .unwrap()
        .add_service(AdminApiServer::new(Echo));
    tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    TestServer { addr, _stop: stop }
}

/// Runs `silo ARGS…` in-process, returning its exit code and stdout.
fn silo(args: &[&str]) -> (i32, String) {
    let cli = Cli::try_parse_from(std::iter::once("silo").chain(args.iter().copied())).unwrap();
    let mut out = Vec::new();
    // `cli::run` writes to the real stdout; call the CA command directly to capture it.
    let result = match cli.command {
        cli::Command::Ca(cmd) => cli::ca::run(cmd, &mut out),
        _ => unreachable!("only ca commands here"),
    };
    match result {
        Ok(()) => (0, String::from_utf8(out).unwrap()),
        Err(err) => (cli::exit_code(&err), format!("{err:#}")),
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An error and all its causes on one line (the TLS alert sits deep in the chain).
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        text.push_str(&format!(": {next}"));
        cause = next.source();
    }
    text
}

/// Health as seen by a client using `files`: `Ok((name, role))` or the refusal with its
/// causes.
async fn health_with(url: &str, files: &TlsFiles) -> Result<(String, String), String> {
    let channel = tls::connect(url, Some(files), false)
        .await
        .map_err(|e| format!("connect: {}", chain(&e)))?;
    let reply = tls::admin_client(channel)
        .health(HealthRequest {})
        .await
        .map_err(|status| format!("rpc: {}", chain(&status)))?
        .into_inner();
    assert_eq!(reply.status, "serving");
    Ok((reply.caller, reply.role))
}

#[tokio::test]
async fn mutual_tls_admits_only_certificates_of_the_project_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let certs = dir.path().join("certs");

    // The CA and certificates, made exactly as an operator would.
    let (code, out) = silo(&["ca", "init", "--out", path(&ca_dir)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ca.pem"), "{out}");
    for (role, name) in [
        ("coordinator", "coordinator"),
        ("site", "hospital-a"),
        ("admin", "alice"),
    ] {
        let (code, out) = silo(&[
            "ca",
            "issue",
            "--ca",
            path(&ca_dir),
            "--role",
            role,
            "--name",
            name,
            "--out",
            path(&certs),
        ]);
        assert_eq!(code, 0, "{out}");
    }

    let server = start_server(&ca::tls_files(&ca_dir, &certs, "coordinator")).await;
    let port = server.addr.port();
    let url = format!("https://127.0.0.1:{port}");

    // An admin gets its own name and role back, by IP and by DNS name.
    let alice = ca::tls_files(&ca_dir, &certs, "alice");
    assert_eq!(
        health_with(&url, &alice).await,
        Ok(("alice".to_string(), "admin".to_string()))
    );
    assert_eq!(
        health_with(&format!("https://localhost:{port}"), &alice).await,
        Ok(("alice".to_string(), "admin".to_string()))
    );
    let site = ca::tls_files(&ca_dir, &certs, "hospital-a");
    assert_eq!(
        health_with(&url, &site).await,
        Ok(("hospital-a".to_string(), "site".to_string()))
    );

    // No client certificate at all: trusts the CA but presents nothing.
    let ca_pem = std::fs::read(ca_dir.join(ca::CA_CERT_FILE)).unwrap();
    let anonymous = Endpoint::from_shared(url.clone())
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&ca_pem))
                .domain_name("127.0.0.1"),
        )
        .unwrap();
    let channel = anonymous
        .connect()
        .await
        .expect("TLS 1.3: the client side of the handshake completes");
    let status = tls::admin_client(channel)
        .health(HealthRequest {})
        .await
        .expect_err("a client without a certificate was served");
    assert!(
        chain(&status).contains("CertificateRequired"),
        "{}",
        chain(&status)
    );

    // A certificate from another CA (the client still trusts the real CA).
    let rogue_dir = dir.path().join("rogue");
    let rogue_ca = Ca::generate().unwrap();
    let mallory = rogue_ca.issue(Role::Admin, "mallory", &[], 30).unwrap();
    ca::write_pair(&rogue_dir, "mallory", &mallory, false).unwrap();
    let mallory_files = TlsFiles {
        ca: ca_dir.join(ca::CA_CERT_FILE),
        ..ca::tls_files(&ca_dir, &rogue_dir, "mallory")
    };
    let refusal = health_with(&url, &mallory_files).await.unwrap_err();
    assert!(
        refusal.starts_with("rpc:") && refusal.contains("UnknownCA"),
        "{refusal}"
    );

    // An expired certificate from the right CA.
    let real_ca = Ca::load(&ca_dir).unwrap();
    let expired = real_ca.issue_expired(Role::Admin, "bob", &[]).unwrap();
    ca::write_pair(&certs, "bob", &expired, false).unwrap();
    let bob = ca::tls_files(&ca_dir, &certs, "bob");
    let refusal = health_with(&url, &bob).await.unwrap_err();
    assert!(
        refusal.starts_with("rpc:") && refusal.contains("CertificateExpired"),
        "{refusal}"
    );

    // A client that trusts only another CA refuses the coordinator.
    rogue_ca.write(&rogue_dir, false).unwrap();
    let gullible = TlsFiles {
        ca: rogue_dir.join(ca::CA_CERT_FILE),
        ..alice.clone()
    };
    let refusal = health_with(&url, &gullible).await.unwrap_err();
    assert!(
        refusal.contains("UnknownIssuer"),
        "a foreign server was trusted: {refusal}"
    );

    // The server is still up for honest clients after the refusals.
    assert_eq!(
        health_with(&url, &alice).await,
        Ok(("alice".to_string(), "admin".to_string()))
    );
}

#[tokio::test]
async fn plaintext_is_refused_off_loopback() {
    for url in [
        "http://10.1.2.3:7443",
        "http://coordinator.example.org:7443",
        "http://0.0.0.0:7443",
    ] {
        let err = tls::connect(url, None, true).await.unwrap_err();
        assert!(
            matches!(err, TlsError::PlaintextNotLoopback { .. }),
            "{url}: {err}"
        );
        assert!(err.to_string().contains(url), "{err}");
    }
    let err = tls::connect("http://127.0.0.1:7443", None, false)
        .await
        .unwrap_err();
    assert!(matches!(err, TlsError::PlaintextNotAllowed { .. }), "{err}");
    let err = tls::connect("https://127.0.0.1:7443", None, true)
        .await
        .unwrap_err();
    assert!(matches!(err, TlsError::MissingTlsFiles { .. }), "{err}");
    assert!(tls::check_insecure_listen(&"0.0.0.0:7443".parse().unwrap()).is_err());
    assert!(tls::check_insecure_listen(&"127.0.0.1:7443".parse().unwrap()).is_ok());
}

#[test]
fn ca_cli_refuses_bad_input_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    assert_eq!(silo(&["ca", "init", "--out", path(&ca_dir)]).0, 0);

    // A second init would orphan every issued certificate.
    let (code, message) = silo(&["ca", "init", "--out", path(&ca_dir)]);
    assert_eq!(code, 2, "{message}");
    assert!(
        message.contains("already exists") && message.contains("--force"),
        "{message}"
    );
    assert_eq!(
        silo(&["ca", "init", "--out", path(&ca_dir), "--force"]).0,
        0
    );

    let issue = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "ca",
            "issue",
            "--ca",
            path(&ca_dir),
            "--role",
            "site",
            "--name",
            name,
            "--out",
            path(dir.path()),
        ];
        args.extend_from_slice(extra);
        silo(&args)
    };
    for (name, extra, expect) in [
        ("a/b", &[][..], "invalid name"),
        ("", &[][..], "invalid name"),
        ("ok", &["--san", "bad host"][..], "invalid SAN"),
        ("ok", &["--days", "0"][..], "invalid validity"),
    ] {
        let (code, message) = issue(name, extra);
        assert_eq!(code, 2, "{name}: {message}");
        assert!(message.contains(expect), "{message}");
        assert_eq!(message.lines().count(), 1, "{message}");
    }
    let (code, message) = silo(&[
        "ca",
        "issue",
        "--ca",
        path(&dir.path().join("nowhere")),
        "--role",
        "site",
        "--name",
        "x",
        "--out",
        path(dir.path()),
    ]);
    assert_eq!(code, 2, "{message}");
    assert!(message.contains("nowhere"), "{message}");

    // An unknown role is rejected by argument parsing.
    let err = Cli::try_parse_from([
        "silo", "ca", "issue", "--ca", "x", "--role", "janitor", "--name", "x", "--out", "y",
    ])
    .unwrap_err();
    assert!(err.to_string().contains("unknown role"), "{err}");

    // Issued keys are private.
    assert_eq!(issue("hospital-b", &[]).0, 0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("hospital-b.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

//! End-to-end test harness: whole Silo deployments in one test process.
//!
//! A [`Deployment`] is what an operator would build, made in a temporary directory: a
//! project CA and certificates written as PEM files, a coordinator with mutual TLS on
//! `127.0.0.1:0` over its own data directory, and site daemons started from real
//! `site.toml` files next to synthetic visit tables (STYLE rule 15). The coordinator,
//! the daemons and the admin clients use the same library code `silo serve`,
//! `silo-site serve` and the `silo` CLI run; only the processes are replaced by tasks.
//!
//! - [`pki`]: the CA and the certificate files;
//! - [`sites`]: site folders (data, config) and running site daemons;
//! - [`fake_site`]: a scripted site that speaks the real `SiteApi` with a real site
//!   certificate, for failures a real daemon will not produce on cue (stalling, dropping
//!   its stream mid-task);
//! - [`jobs`]: job specs and the admin API calls the tests make.
//!
//! Nothing here sets global state: every deployment owns its directory, ports and tasks,
//! so tests run in parallel. Drop tears everything down; [`Deployment::shutdown`] does it
//! gracefully.

pub mod fake_site;
pub mod jobs;
pub mod pki;
pub mod sites;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use silo_coordinator::config::CoordinatorConfig;
use silo_coordinator::server::{self, RunningCoordinator};
use silo_proto::admin_api_client::AdminApiClient;
use silo_proto::tls::{self, Role, TlsFiles};
use tempfile::TempDir;
use tonic::transport::Channel;

pub use fake_site::FakeSite;
pub use pki::Pki;
pub use sites::{
    EHR_DATASET, EhrFormat, PAIRS_DATASET, RunningSite, SiteFiles, SiteSetup, ehr_generator,
    pairs_generator,
};

/// Generous bound on anything a test waits for (the build machine is small and busy);
/// a healthy test finishes in seconds.
pub const WAIT: Duration = Duration::from_secs(60);

/// Name of the admin certificate every deployment issues.
pub const ADMIN: &str = "alice";
/// Name of the auditor certificate every deployment issues.
pub const AUDITOR: &str = "olga";

/// A coordinator with mutual TLS, its CA and certificates, in a temporary directory.
pub struct Deployment {
    /// The CA and every certificate, under `<dir>/certs`.
    pub pki: Pki,
    coordinator: Option<RunningCoordinator>,
    addr: SocketAddr,
    coordinator_tls: TlsFiles,
    // Last: removed after everything above has stopped using it.
    dir: TempDir,
}

impl Deployment {
    /// A new CA, the coordinator, admin and auditor certificates, and a coordinator
    /// listening on a free loopback port.
    pub async fn start() -> Deployment {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = Pki::new(&dir.path().join("certs"));
        let coordinator_tls = pki.issue(Role::Coordinator, "coordinator");
        pki.issue(Role::Admin, ADMIN);
        pki.issue(Role::Auditor, AUDITOR);
        let coordinator = start_coordinator(
            "127.0.0.1:0".parse().expect("address"),
            &dir.path().join("coordinator-data"),
            &coordinator_tls,
        )
        .await
        .expect("the coordinator starts");
        Deployment {
            pki,
            addr: coordinator.local_addr(),
            coordinator: Some(coordinator),
            coordinator_tls,
            dir,
        }
    }

    /// The deployment's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The coordinator's data directory (database and job results).
    pub fn coordinator_data(&self) -> PathBuf {
        self.dir.path().join("coordinator-data")
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The running coordinator.
    pub fn coordinator(&self) -> &RunningCoordinator {
        self.coordinator
            .as_ref()
            .expect("the coordinator is running")
    }

    /// Kills the coordinator: no graceful shutdown, no draining (the process dying).
    pub fn kill_coordinator(&mut self) {
        drop(self.coordinator.take());
    }

    /// Starts a new coordinator over the same data directory and on the same port, so
    /// site daemons reconnect to it on their own, as they would to a restarted process.
    pub async fn restart_coordinator(&mut self) {
        assert!(self.coordinator.is_none(), "kill the coordinator first");
        let deadline = tokio::time::Instant::now() + WAIT;
        let data = self.coordinator_data();
        // The old listener may take a moment to be released.
        let coordinator = loop {
            match start_coordinator(self.addr, &data, &self.coordinator_tls).await {
                Ok(c) => break c,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    eprintln!(
                        "restarting the coordinator on {}: {e:#}; retrying",
                        self.addr
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("the coordinator does not restart on {}: {e:#}", self.addr),
            }
        };
        self.coordinator = Some(coordinator);
    }

    /// Writes a site's certificate, data and `site.toml` (nothing runs yet).
    pub fn add_site(&self, setup: SiteSetup) -> SiteFiles {
        sites::write_site(self.path(), &self.pki, &self.url(), setup)
    }

    /// Starts the site daemon of `files` and waits until it has registered.
    pub async fn start_site(&self, files: &SiteFiles) -> RunningSite {
        let mut site = RunningSite::spawn(files);
        site.wait_registered().await;
        site
    }

    /// An admin API client with the admin certificate.
    pub async fn admin(&self) -> AdminApiClient<Channel> {
        self.client(&self.pki.files(ADMIN))
            .await
            .expect("admin connects")
    }

    /// An admin API client with the auditor certificate.
    pub async fn auditor(&self) -> AdminApiClient<Channel> {
        self.client(&self.pki.files(AUDITOR))
            .await
            .expect("auditor connects")
    }

    /// An admin API client presenting `files` (any role, any CA).
    pub async fn client(&self, files: &TlsFiles) -> Result<AdminApiClient<Channel>, tls::TlsError> {
        let channel = tls::connect(&self.url(), Some(files), false).await?;
        Ok(tls::admin_client(channel))
    }

    /// Stops the coordinator gracefully (sites should be stopped first).
    pub async fn shutdown(mut self) {
        if let Some(coordinator) = self.coordinator.take() {
            coordinator
                .shutdown()
                .await
                .expect("the coordinator stops cleanly");
        }
    }
}

async fn start_coordinator(
    listen: SocketAddr,
    data_dir: &Path,
    tls: &TlsFiles,
) -> anyhow::Result<RunningCoordinator> {
    let mut config = CoordinatorConfig::new(listen, data_dir, Some(tls.clone()));
    config.shutdown_grace_seconds = 2;
    server::start(config).await
}

/// Polls `check` every 50 ms until it returns `Some`, for at most [`WAIT`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

//! The coordinator daemon: one gRPC listener carrying `SiteApi` and `AdminApi` over mutual
//! TLS, the job scheduler, and their shared state.
//!
//! [`start`] binds the listener (`127.0.0.1:0` picks a free port), opens the store, starts
//! the scheduler (which resumes unfinished jobs) and returns a [`RunningCoordinator`] with
//! the bound address — for tests and `silo demo`. [`serve`] runs until its shutdown future
//! resolves (`silo serve` passes SIGINT/SIGTERM).
//!
//! Plaintext is served only with `insecure = true` *and* a loopback address
//! (`check_insecure_listen`); otherwise every connection must present a client certificate
//! issued by the project CA.
//!
//! Shutdown: the signal stops the scheduler and every session reader (sites get
//! `Unavailable` and reconnect to the next instance), the listener stops accepting, and open
//! connections get the configured grace period to finish before they are dropped. Job state
//! is durable at every step, so nothing is lost.

mod admin_api;
mod auth;
mod error;
mod reassembly;
mod registry;
mod site_api;
mod tasks;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use silo_proto::admin_api_server::AdminApiServer;
use silo_proto::site_api_server::SiteApiServer;
use silo_proto::{JobEvent, MAX_MESSAGE_BYTES};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::config::CoordinatorConfig;
use crate::jobs::scheduler::SchedulerSettings;
use crate::jobs::{Scheduler, SchedulerHandle};
use crate::store::{SqliteStore, Store};

pub use admin_api::AdminService;
pub use auth::{AuthMode, INSECURE_NAME, INSECURE_ROLE};
pub use error::ApiError;
pub use registry::SiteRegistry;
pub use site_api::SiteService;
pub use tasks::TaskGroup;

/// How long an HTTP/2 keep-alive ping may go unanswered before the connection (and any
/// site session on it) is considered dead.
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// State shared by the services and the tasks they spawn.
pub(crate) struct Hub {
    pub store: Arc<dyn Store>,
    pub registry: Arc<SiteRegistry>,
    pub scheduler: SchedulerHandle,
    pub events: broadcast::Sender<JobEvent>,
    pub tasks: Arc<TaskGroup>,
    pub shutdown: watch::Receiver<bool>,
    pub auth: AuthMode,
    pub heartbeat: Duration,
    pub heartbeat_seconds: u32,
    pub max_result_bytes: u64,
}

/// A coordinator running in this process.
pub struct RunningCoordinator {
    addr: SocketAddr,
    tls: bool,
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
    tasks: Arc<TaskGroup>,
    grace: Duration,
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for RunningCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningCoordinator")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .finish()
    }
}

impl RunningCoordinator {
    /// The address the listener is bound to (the real port when configured with `:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://ADDR` (or `http://ADDR` in insecure mode), for clients on this machine.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The coordinator's store (read-only inspection in tests and `silo demo`).
    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// Signals shutdown without waiting (also done on drop).
    pub fn trigger_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves when the gRPC server stops on its own (an error), which it should not do
    /// before [`shutdown`](Self::shutdown).
    pub async fn stopped(&mut self) -> anyhow::Result<()> {
        let Some(server) = self.server.as_mut() else {
            return std::future::pending().await;
        };
        let result = server.await;
        self.server = None;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::Error::new(e).context("the gRPC server failed")),
            Err(e) => Err(anyhow::Error::new(e).context("the gRPC server task failed")),
        }
    }

    /// Stops the coordinator: no new connections, sessions end, open streams get the grace
    /// period, then everything still running is dropped.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.trigger_shutdown();
        let mut result = Ok(());
        if let Some(mut server) = self.server.take() {
            match tokio::time::timeout(self.grace, &mut server).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => {
                    result = Err(anyhow::Error::new(e).context("the gRPC server failed"))
                }
                Ok(Err(e)) if e.is_cancelled() => {}
                Ok(Err(e)) => {
                    result = Err(anyhow::Error::new(e).context("the gRPC server task failed"))
                }
                Err(_) => {
                    tracing::warn!(
                        "connections still open after the {:?} grace period; closing them",
                        self.grace
                    );
                    server.abort();
                    let _ = server.await;
                }
            }
        }
        self.tasks.shutdown(self.grace).await;
        tracing::info!("coordinator on {} stopped", self.addr);
        result
    }
}

impl Drop for RunningCoordinator {
    fn drop(&mut self) {
        // A coordinator dropped without `shutdown()` still stops: every task watches this.
        self.shutdown.send_replace(true);
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Starts a coordinator: opens the store, binds the listener, starts the scheduler (which
/// resumes unfinished jobs) and serves in background tasks.
pub async fn start(config: CoordinatorConfig) -> anyhow::Result<RunningCoordinator> {
    let tls = if config.insecure {
        silo_proto::tls::check_insecure_listen(&config.listen)?;
        tracing::warn!(
            "serving WITHOUT TLS on {} (insecure development mode): callers are not \
             authenticated",
            config.listen
        );
        None
    } else {
        let files = config
            .tls
            .as_ref()
            .context("a [tls] table (ca, cert, key) is required unless insecure = true")?;
        Some(silo_proto::tls::server_tls_config(files)?)
    };
    let data_dir = config.data_dir.clone();
    let store: Arc<dyn Store> = Arc::new(
        tokio::task::spawn_blocking(move || SqliteStore::open(&data_dir))
            .await
            .context("store worker failed")?
            .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?,
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (events, _) = broadcast::channel(256);
    let registry = Arc::new(SiteRegistry::default());
    let (mut scheduler, handle) = Scheduler::new(
        Arc::clone(&store),
        registry.clone(),
        events.clone(),
        SchedulerSettings {
            round_retries: config.round_retries,
        },
    );
    // Unfinished jobs are back in the scheduler before the first request is served.
    scheduler.resume_jobs().await;
    let tasks = Arc::new(TaskGroup::new());
    tasks.spawn(scheduler.run(shutdown_rx.clone()));
    let hub = Arc::new(Hub {
        store: Arc::clone(&store),
        registry,
        scheduler: handle,
        events,
        tasks: Arc::clone(&tasks),
        shutdown: shutdown_rx.clone(),
        auth: if tls.is_some() {
            AuthMode::MutualTls
        } else {
            AuthMode::Insecure
        },
        heartbeat: config.heartbeat(),
        heartbeat_seconds: config.heartbeat_seconds,
        max_result_bytes: config.max_result_bytes,
    });

    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(config.heartbeat()))
        .http2_keepalive_timeout(Some(KEEP_ALIVE_TIMEOUT));
    let tls_on = tls.is_some();
    if let Some(tls) = tls {
        builder = builder
            .tls_config(tls)
            .context("invalid TLS configuration")?;
    }
    let router = builder
        .add_service(
            SiteApiServer::new(SiteService::new(Arc::clone(&hub)))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(
            AdminApiServer::new(AdminService::new(hub))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        );
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let mut signal = shutdown_rx;
    let server = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(incoming, async move {
                let _ = signal.wait_for(|stop| *stop).await;
            })
            .await
    });
    tracing::info!(
        "coordinator listening on {addr} ({})",
        if tls_on {
            "mutual TLS"
        } else {
            "plaintext, insecure"
        }
    );
    Ok(RunningCoordinator {
        addr,
        tls: tls_on,
        shutdown: shutdown_tx,
        server: Some(server),
        tasks,
        grace: config.shutdown_grace(),
        store,
    })
}

/// Runs a coordinator until `shutdown` resolves, then drains within the grace period.
pub async fn serve(
    config: CoordinatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut running = start(config).await?;
    let failed = tokio::select! {
        _ = shutdown => None,
        result = running.stopped() => Some(result),
    };
    match failed {
        None => running.shutdown().await,
        Some(result) => {
            let _ = running.shutdown().await;
            result?;
            anyhow::bail!("the gRPC server stopped unexpectedly")
        }
    }
}

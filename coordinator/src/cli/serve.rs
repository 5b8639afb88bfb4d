//! `silo serve --config coordinator.toml`: runs the coordinator until SIGINT or SIGTERM,
//! then drains open streams within the configured grace period.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use super::usage;
use crate::config::CoordinatorConfig;

/// Arguments of `silo serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The coordinator config (DESIGN section 7); `SILO_*` variables override its keys.
    #[arg(long, default_value = "coordinator.toml")]
    pub config: PathBuf,
    /// Serve plaintext without client certificates (development only; loopback only).
    #[arg(long)]
    pub insecure: bool,
}

/// Runs `silo serve`.
pub fn run(args: ServeArgs) -> Result<()> {
    let insecure = args.insecure;
    let config = CoordinatorConfig::load_with_env(&args.config, |key| {
        if insecure && key == "SILO_INSECURE" {
            Some("true".into())
        } else {
            std::env::var(key).ok()
        }
    })
    .map_err(|e| usage(e.to_string()))?;
    init_tracing();
    super::block_on(crate::server::serve(config, shutdown_signal()))
}

/// Logs to stderr at `info` unless `RUST_LOG` says otherwise; a no-op if the process
/// already installed a subscriber.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM (what Kubernetes and systemd send).
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received; shutting down"),
        _ = term => tracing::info!("SIGTERM received; shutting down"),
    }
}

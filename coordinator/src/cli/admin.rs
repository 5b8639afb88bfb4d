//! How admin commands find the coordinator: `silo-admin.toml`.
//!
//! Lookup order (DESIGN section 7): `--admin-config FILE`, then the `SILO_ADMIN_CONFIG`
//! variable, then `./silo-admin.toml`. Paths inside the file are relative to the file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde::Deserialize;
use silo_proto::admin_api_client::AdminApiClient;
use silo_proto::tls::{self, TlsFiles};
use tonic::transport::Channel;

use super::usage;

/// The `--admin-config` flag shared by every command that talks to the coordinator.
#[derive(Debug, Clone, Args)]
pub struct AdminOpts {
    /// Admin config (coordinator URL and your certificate); default $SILO_ADMIN_CONFIG or
    /// ./silo-admin.toml.
    #[arg(long, value_name = "FILE", global = true)]
    pub admin_config: Option<PathBuf>,
}

/// `silo-admin.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// The coordinator's URL, `https://host:port`.
    pub coordinator: String,
    /// Your certificate (role admin or auditor), its key and the project CA.
    pub tls: Option<TlsFiles>,
    /// Plaintext to a loopback coordinator started with `insecure = true` (development).
    #[serde(default)]
    pub insecure: bool,
}

impl AdminOpts {
    /// The config file in effect.
    pub fn path(&self) -> PathBuf {
        if let Some(p) = &self.admin_config {
            return p.clone();
        }
        if let Some(p) = std::env::var_os("SILO_ADMIN_CONFIG") {
            return PathBuf::from(p);
        }
        PathBuf::from("silo-admin.toml")
    }

    /// Loads the config and connects to the coordinator's admin API.
    pub async fn connect(&self) -> Result<AdminApiClient<Channel>> {
        let path = self.path();
        let config = AdminConfig::load(&path)?;
        let channel =
            match tls::connect(&config.coordinator, config.tls.as_ref(), config.insecure).await {
                Ok(channel) => channel,
                // Unreachable coordinator: a runtime failure (exit 1).
                Err(e @ tls::TlsError::Connect { .. }) => {
                    return Err(anyhow::Error::new(e)).with_context(|| {
                        format!("cannot reach the coordinator at {}", config.coordinator)
                    });
                }
                // Anything else is a bad file or setting in the admin config (exit 2).
                Err(e) => return Err(usage(format!("{}: {e}", path.display()))),
            };
        Ok(AdminApiClient::new(channel)
            .max_decoding_message_size(silo_proto::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(silo_proto::MAX_MESSAGE_BYTES))
    }
}

impl AdminConfig {
    /// Reads and checks `path`; errors name the file and the field.
    pub fn load(path: &Path) -> Result<AdminConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            usage(format!(
                "cannot read admin config {}: {e} (pass --admin-config FILE or set SILO_ADMIN_CONFIG)",
                path.display()
            ))
        })?;
        let mut config: AdminConfig = toml::from_str(&text)
            .map_err(|e| usage(format!("{}: {}", path.display(), e.message())))?;
        if let Ok(url) = std::env::var("SILO_COORDINATOR") {
            config.coordinator = url;
        }
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(files) = config.tls.as_mut() {
            for p in [&mut files.ca, &mut files.cert, &mut files.key] {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
        } else if !config.insecure {
            return Err(usage(format!(
                "{}: tls: expected a [tls] table with ca, cert and key (or insecure = true for a loopback dev coordinator)",
                path.display()
            )));
        }
        Ok(config)
    }
}

/// Turns a gRPC status into an error with the right exit code: bad input (invalid
/// argument, not found) exits 2, everything else 1.
pub fn status_error(status: tonic::Status) -> anyhow::Error {
    use tonic::Code;
    let message = if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        status.message().to_string()
    };
    match status.code() {
        Code::InvalidArgument | Code::NotFound => usage(message),
        Code::PermissionDenied => anyhow::anyhow!("permission denied: {message}"),
        Code::Unauthenticated => anyhow::anyhow!("not authenticated: {message}"),
        Code::Unavailable | Code::Unknown => anyhow::anyhow!("coordinator unavailable: {message}"),
        _ => anyhow::anyhow!("{message}"),
    }
}

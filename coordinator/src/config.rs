//! `coordinator.toml`: the coordinator's typed, validated configuration (DESIGN section 7).
//!
//! ```toml
//! listen = "127.0.0.1:7443"
//! data_dir = "coordinator-data"
//! # insecure = false          # plaintext, development only, loopback addresses only
//! # heartbeat_seconds = 30     # interval of heartbeats on site sessions
//! # round_retries = 1          # extra attempts of a round that lost its quorum
//! # shutdown_grace_seconds = 10
//! # max_result_bytes = 536870912
//! [tls]
//! ca = "certs/ca.pem"
//! cert = "certs/coordinator.pem"
//! key = "certs/coordinator.key"
//! ```
//!
//! Every key can be overridden by an environment variable named `SILO_` + the key in upper
//! case (`SILO_LISTEN`, `SILO_DATA_DIR`, `SILO_TLS_CA`, `SILO_TLS_CERT`, `SILO_TLS_KEY`,
//! `SILO_INSECURE`, ...): the Kubernetes manifests set the data directory and certificate
//! paths that way. Relative paths, from the file or from the environment, are taken
//! relative to the directory of the config file, so a config works wherever it is started
//! from. Validation reports every bad field at once (STYLE rule 8).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use silo_proto::tls::TlsFiles;

/// Default interval of heartbeats on site sessions.
pub const DEFAULT_HEARTBEAT_SECONDS: u32 = 30;
/// Default number of extra attempts of a round that lost its quorum.
pub const DEFAULT_ROUND_RETRIES: u32 = 1;
/// Default time given to open connections to finish after a shutdown signal.
pub const DEFAULT_SHUTDOWN_GRACE_SECONDS: u64 = 10;
/// Default cap on one reassembled task result (512 MiB).
pub const DEFAULT_MAX_RESULT_BYTES: u64 = 512 * 1024 * 1024;

/// The coordinator's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// Address of the gRPC listener (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// Directory of the coordinator database and job artefacts (created if missing).
    pub data_dir: PathBuf,
    /// Certificates for mutual TLS; required unless `insecure`.
    pub tls: Option<TlsFiles>,
    /// Serve plaintext (development only; refused on non-loopback addresses). Callers
    /// are then identified by what they claim, not by a certificate.
    pub insecure: bool,
    /// Interval of the heartbeats the coordinator sends on each site session; also sent
    /// to sites in `Registered` so they heartbeat at the same pace.
    pub heartbeat_seconds: u32,
    /// How many times a round that lost its quorum (dropped or slow sites) is retried
    /// with new tasks before the job fails.
    pub round_retries: u32,
    /// How long open streams get to finish after a shutdown signal.
    pub shutdown_grace_seconds: u64,
    /// Largest reassembled result of one task; bigger results are rejected.
    pub max_result_bytes: u64,
}

impl CoordinatorConfig {
    /// A configuration with every optional key at its default: mutual TLS with `tls`, or
    /// plaintext (insecure) when `tls` is `None`. Used by tests and `silo demo`.
    pub fn new(listen: SocketAddr, data_dir: impl Into<PathBuf>, tls: Option<TlsFiles>) -> Self {
        CoordinatorConfig {
            listen,
            data_dir: data_dir.into(),
            insecure: tls.is_none(),
            tls,
            heartbeat_seconds: DEFAULT_HEARTBEAT_SECONDS,
            round_retries: DEFAULT_ROUND_RETRIES,
            shutdown_grace_seconds: DEFAULT_SHUTDOWN_GRACE_SECONDS,
            max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
        }
    }

    /// The heartbeat interval as a duration.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(u64::from(self.heartbeat_seconds.max(1)))
    }

    /// The shutdown grace period as a duration.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_seconds)
    }

    /// Reads `path`, applies `SILO_*` overrides from the process environment, validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_with_env(path, |key| std::env::var(key).ok())
    }

    /// [`load`](Self::load) with `env` in place of the process environment (used by
    /// `silo serve --insecure`, which sets `SILO_INSECURE`, and by tests).
    pub fn load_with_env(
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            origin: path.display().to_string(),
            issues: vec![ConfigIssue {
                field: "file".into(),
                message: format!("cannot read: {e}"),
            }],
        })?;
        let base = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        Self::from_toml(&text, &path.display().to_string(), base, env)
    }

    /// Parses and validates a config text. `origin` names it in errors, `base` is the
    /// directory relative paths start from, `env` looks up `SILO_*` overrides.
    pub fn from_toml(
        text: &str,
        origin: &str,
        base: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut issues = Issues::default();
        let table: toml::Table = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                let line = e
                    .span()
                    .map(|s| format!("line {}: ", text[..s.start].lines().count().max(1)))
                    .unwrap_or_default();
                return Err(ConfigError {
                    origin: origin.to_string(),
                    issues: vec![ConfigIssue {
                        field: "toml".into(),
                        message: format!("{line}{}", e.message()),
                    }],
                });
            }
        };
        let mut raw = RawConfig::default();
        for (key, value) in &table {
            match key.as_str() {
                "listen" => raw.listen = issues.string(key, value),
                "data_dir" => raw.data_dir = issues.string(key, value),
                "insecure" => raw.insecure = issues.boolean(key, value),
                "heartbeat_seconds" => raw.heartbeat_seconds = issues.integer(key, value),
                "round_retries" => raw.round_retries = issues.integer(key, value),
                "shutdown_grace_seconds" => raw.shutdown_grace_seconds = issues.integer(key, value),
                "max_result_bytes" => raw.max_result_bytes = issues.integer(key, value),
                "tls" => match value.as_table() {
                    Some(tls) => {
                        raw.tls_present = true;
                        for (k, v) in tls {
                            let field = format!("tls.{k}");
                            match k.as_str() {
                                "ca" => raw.tls_ca = issues.string(&field, v),
                                "cert" => raw.tls_cert = issues.string(&field, v),
                                "key" => raw.tls_key = issues.string(&field, v),
                                _ => issues.push(&field, "unknown field: expected ca, cert or key"),
                            }
                        }
                    }
                    None => issues.push("tls", "expected a table with ca, cert and key"),
                },
                _ => issues.push(
                    key,
                    "unknown field: expected listen, data_dir, insecure, heartbeat_seconds, \
                     round_retries, shutdown_grace_seconds, max_result_bytes or [tls]",
                ),
            }
        }
        raw.apply_env(&env, &mut issues);
        let config = raw.validate(base, &mut issues);
        match config {
            Some(config) if issues.0.is_empty() => Ok(config),
            _ => Err(ConfigError {
                origin: origin.to_string(),
                issues: issues.0,
            }),
        }
    }
}

/// One problem in a config: the field (as written in the file, or the variable) and what
/// was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    /// `listen`, `tls.ca`, `SILO_ROUND_RETRIES`, ...
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Why a config was refused: every problem found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {}", .issues.iter().map(|i| format!("{}: {}", i.field, i.message)).collect::<Vec<_>>().join("; "))]
pub struct ConfigError {
    /// The config file.
    pub origin: String,
    /// The problems, in the order found.
    pub issues: Vec<ConfigIssue>,
}

#[derive(Default)]
struct Issues(Vec<ConfigIssue>);

impl Issues {
    fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(ConfigIssue {
            field: field.to_string(),
            message: message.into(),
        });
    }

    fn string(&mut self, field: &str, value: &toml::Value) -> Option<String> {
        match value.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.push(
                    field,
                    format!("expected a string, found {}", value.type_str()),
                );
                None
            }
        }
    }

    fn boolean(&mut self, field: &str, value: &toml::Value) -> Option<bool> {
        match value.as_bool() {
            Some(b) => Some(b),
            None => {
                self.push(
                    field,
                    format!("expected true or false, found {}", value.type_str()),
                );
                None
            }
        }
    }

    fn integer(&mut self, field: &str, value: &toml::Value) -> Option<i64> {
        match value.as_integer() {
            Some(i) => Some(i),
            None => {
                self.push(
                    field,
                    format!("expected an integer, found {}", value.type_str()),
                );
                None
            }
        }
    }
}

/// Fields as found, before validation; `None` = absent (or already reported as bad).
#[derive(Default)]
struct RawConfig {
    listen: Option<String>,
    data_dir: Option<String>,
    insecure: Option<bool>,
    heartbeat_seconds: Option<i64>,
    round_retries: Option<i64>,
    shutdown_grace_seconds: Option<i64>,
    max_result_bytes: Option<i64>,
    tls_present: bool,
    tls_ca: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
}

impl RawConfig {
    fn apply_env(&mut self, env: &impl Fn(&str) -> Option<String>, issues: &mut Issues) {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        let int = |name: &str, issues: &mut Issues| {
            var(name).and_then(|v| match v.trim().parse::<i64>() {
                Ok(i) => Some(i),
                Err(_) => {
                    issues.push(name, format!("{v:?}: expected an integer"));
                    None
                }
            })
        };
        if let Some(v) = var("SILO_LISTEN") {
            self.listen = Some(v);
        }
        if let Some(v) = var("SILO_DATA_DIR") {
            self.data_dir = Some(v);
        }
        if let Some(v) = var("SILO_INSECURE") {
            match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" => self.insecure = Some(true),
                "0" | "false" | "no" => self.insecure = Some(false),
                _ => issues.push("SILO_INSECURE", format!("{v:?}: expected true or false")),
            }
        }
        for (name, slot) in [
            ("SILO_HEARTBEAT_SECONDS", &mut self.heartbeat_seconds),
            ("SILO_ROUND_RETRIES", &mut self.round_retries),
            (
                "SILO_SHUTDOWN_GRACE_SECONDS",
                &mut self.shutdown_grace_seconds,
            ),
            ("SILO_MAX_RESULT_BYTES", &mut self.max_result_bytes),
        ] {
            if let Some(i) = int(name, issues) {
                *slot = Some(i);
            }
        }
        for (name, slot) in [
            ("SILO_TLS_CA", &mut self.tls_ca),
            ("SILO_TLS_CERT", &mut self.tls_cert),
            ("SILO_TLS_KEY", &mut self.tls_key),
        ] {
            if let Some(v) = var(name) {
                *slot = Some(v);
                self.tls_present = true;
            }
        }
    }

    fn validate(self, base: &Path, issues: &mut Issues) -> Option<CoordinatorConfig> {
        let resolve = |p: &str| {
            let p = PathBuf::from(p);
            if p.is_absolute() { p } else { base.join(p) }
        };
        let listen = match &self.listen {
            None => {
                issues.push(
                    "listen",
                    "missing: expected an address such as \"127.0.0.1:7443\"",
                );
                None
            }
            Some(s) => match s.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    issues.push(
                        "listen",
                        format!("{s:?}: expected IP:PORT, e.g. \"0.0.0.0:7443\" or \"[::1]:7443\""),
                    );
                    None
                }
            },
        };
        let data_dir = match self.data_dir.as_deref() {
            None => {
                issues.push(
                    "data_dir",
                    "missing: expected the directory for the database and job results",
                );
                None
            }
            Some(s) if s.trim().is_empty() => {
                issues.push("data_dir", "expected a non-empty directory path");
                None
            }
            Some(s) => Some(resolve(s)),
        };
        let insecure = self.insecure.unwrap_or(false);
        let tls = if self.tls_present {
            let mut missing = Vec::new();
            for (name, v) in [
                ("ca", &self.tls_ca),
                ("cert", &self.tls_cert),
                ("key", &self.tls_key),
            ] {
                if v.as_deref().is_none_or(|s| s.trim().is_empty()) {
                    missing.push(name);
                }
            }
            for name in &missing {
                issues.push(
                    &format!("tls.{name}"),
                    "missing: expected the path of a PEM file",
                );
            }
            if missing.is_empty() {
                Some(TlsFiles {
                    ca: resolve(self.tls_ca.as_deref().unwrap_or_default()),
                    cert: resolve(self.tls_cert.as_deref().unwrap_or_default()),
                    key: resolve(self.tls_key.as_deref().unwrap_or_default()),
                })
            } else {
                None
            }
        } else {
            if !insecure {
                issues.push(
                    "tls",
                    "missing: expected a [tls] table with ca, cert and key (or insecure = true \
                     on a loopback address for development)",
                );
            }
            None
        };
        if insecure
            && let Some(addr) = listen
            && let Err(e) = silo_proto::tls::check_insecure_listen(&addr)
        {
            issues.push("insecure", e.to_string());
        }
        let mut bounded = |field: &str, v: Option<i64>, min: i64, max: i64, default: i64| match v {
            None => Some(default),
            Some(i) if (min..=max).contains(&i) => Some(i),
            Some(i) => {
                issues.push(field, format!("{i}: expected an integer in {min}..={max}"));
                None
            }
        };
        let heartbeat = bounded(
            "heartbeat_seconds",
            self.heartbeat_seconds,
            1,
            3600,
            i64::from(DEFAULT_HEARTBEAT_SECONDS),
        );
        let retries = bounded(
            "round_retries",
            self.round_retries,
            0,
            100,
            i64::from(DEFAULT_ROUND_RETRIES),
        );
        let grace = bounded(
            "shutdown_grace_seconds",
            self.shutdown_grace_seconds,
            0,
            3600,
            DEFAULT_SHUTDOWN_GRACE_SECONDS as i64,
        );
        let max_result = bounded(
            "max_result_bytes",
            self.max_result_bytes,
            1024,
            i64::MAX,
            DEFAULT_MAX_RESULT_BYTES as i64,
        );
        Some(CoordinatorConfig {
            listen: listen?,
            data_dir: data_dir?,
            tls: if insecure { tls } else { Some(tls?) },
            insecure,
            heartbeat_seconds: heartbeat? as u32,
            round_retries: retries? as u32,
            shutdown_grace_seconds: grace? as u64,
            max_result_bytes: max_result? as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, env: &[(&str, &str)]) -> Result<CoordinatorConfig, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CoordinatorConfig::from_toml(text, "coordinator.toml", Path::new("/etc/silo"), |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    const SAMPLE: &str = r#"
listen = "127.0.0.1:7443"
data_dir = "coordinator-data"
[tls]
ca = "certs/ca.pem"
cert = "certs/coordinator.pem"
key = "/abs/coordinator.key"
"#;

    #[test]
    fn sample_parses_with_defaults_and_relative_paths() {
        let c = parse(SAMPLE, &[]).unwrap();
        assert_eq!(c.listen, "127.0.0.1:7443".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("/etc/silo/coordinator-data"));
        let tls = c.tls.unwrap();
        assert_eq!(tls.ca, PathBuf::from("/etc/silo/certs/ca.pem"));
        assert_eq!(tls.key, PathBuf::from("/abs/coordinator.key"));
        assert!(!c.insecure);
        assert_eq!(c.round_retries, 1);
        assert_eq!(c.heartbeat_seconds, 30);
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = parse(
            SAMPLE,
            &[
                ("SILO_LISTEN", "0.0.0.0:9000"),
                ("SILO_DATA_DIR", "/var/lib/silo"),
                ("SILO_ROUND_RETRIES", "3"),
                ("SILO_TLS_CERT", "other.pem"),
            ],
        )
        .unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/silo"));
        assert_eq!(c.round_retries, 3);
        assert_eq!(c.tls.unwrap().cert, PathBuf::from("/etc/silo/other.pem"));
    }

    #[test]
    fn every_bad_field_is_reported() {
        let err = parse(
            r#"
listen = "nowhere"
data_dir = 3
round_retries = -1
colour = "blue"
[tls]
ca = "ca.pem"
"#,
            &[("SILO_HEARTBEAT_SECONDS", "often")],
        )
        .unwrap_err();
        let fields: Vec<&str> = err.issues.iter().map(|i| i.field.as_str()).collect();
        for expected in [
            "listen",
            "data_dir",
            "round_retries",
            "colour",
            "tls.cert",
            "tls.key",
            "SILO_HEARTBEAT_SECONDS",
        ] {
            assert!(fields.contains(&expected), "{expected} missing from {err}");
        }
        assert!(err.to_string().starts_with("coordinator.toml: "), "{err}");
    }

    #[test]
    fn tls_is_required_unless_insecure_on_loopback() {
        let err = parse("listen = \"127.0.0.1:1\"\ndata_dir = \"d\"\n", &[]).unwrap_err();
        assert_eq!(err.issues[0].field, "tls");
        let c = parse(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"d\"\ninsecure = true\n",
            &[],
        )
        .unwrap();
        assert!(c.insecure && c.tls.is_none());
        let err = parse(
            "listen = \"0.0.0.0:7443\"\ndata_dir = \"d\"\ninsecure = true\n",
            &[],
        )
        .unwrap_err();
        assert_eq!(err.issues[0].field, "insecure");
        assert!(err.to_string().contains("loopback"), "{err}");
    }

    #[test]
    fn the_deploy_sample_is_valid() {
        let c = parse(include_str!("../../deploy/coordinator.toml"), &[]).unwrap();
        assert_eq!(c.listen, "0.0.0.0:7443".parse().unwrap());
        assert_eq!(c.round_retries, 1);
        assert_eq!(
            c.tls.unwrap().cert,
            PathBuf::from("/etc/silo/certs/coordinator.pem")
        );
    }

    #[test]
    fn toml_syntax_errors_name_the_line() {
        let err = parse("listen = \"127.0.0.1:1\"\ndata_dir = \n", &[]).unwrap_err();
        assert_eq!(err.issues[0].field, "toml");
        assert!(err.issues[0].message.contains("line"), "{err}");
    }
}

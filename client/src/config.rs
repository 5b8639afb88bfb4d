//! The site configuration, `site.toml` (DESIGN section 7).
//!
//! The file is read once at start-up into a typed [`SiteConfig`] and validated completely
//! before the daemon does anything: every bad field is reported (file, field, what was
//! expected), not only the first (STYLE rule 8), and the binaries exit with code 2.
//!
//! Rules:
//! - top-level keys can be overridden by `SILO_`-prefixed environment variables
//!   (`SILO_NAME`, `SILO_COORDINATOR`, `SILO_DATA_DIR`, `SILO_INSECURE`), which is how
//!   containers set them;
//! - relative paths (data directory, certificates, datasets) are resolved against the
//!   folder that holds the config file, also when they come from the environment, so a
//!   config means the same thing whatever the working directory;
//! - unknown keys are errors (a misspelt `epsilon_bugdet` must not silently fall back to
//!   nothing);
//! - files the site needs (certificates, datasets) must exist at start-up.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use silo_common::privacy::AccountantKind;
use silo_common::spec::JobKind;
use silo_proto::tls::{self, TlsError, TlsFiles};

/// File name of the ledger database inside `data_dir`.
pub const LEDGER_FILE: &str = "ledger.sqlite";

/// Top-level keys that `SILO_<KEY>` environment variables may override.
pub const ENV_OVERRIDABLE: [&str; 4] = ["name", "coordinator", "data_dir", "insecure"];

/// A validated `site.toml`.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteConfig {
    /// The config file this was read from (for messages).
    pub path: PathBuf,
    /// The site's name; must equal the CN of the site certificate.
    pub name: String,
    /// The coordinator URL (`https://HOST:PORT`, or `http://` on loopback with `insecure`).
    pub coordinator: String,
    /// Where the ledger database and task log live (absolute or relative to the cwd).
    pub data_dir: PathBuf,
    /// Development only: allow a plaintext `http://` coordinator on a loopback host.
    pub insecure: bool,
    /// The project CA and the site's certificate and key (required unless `insecure`).
    pub tls: Option<TlsFiles>,
    /// What the site agrees to run.
    pub policy: PolicyConfig,
    /// The datasets the site serves.
    pub datasets: Vec<DatasetConfig>,
}

/// The `[policy]` table: the site operator's rules, checked before any computation.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyConfig {
    /// Job kinds the site runs; any other kind is refused.
    pub allowed_kinds: Vec<JobKind>,
    /// Largest per-site ε a single job may ask for.
    pub max_epsilon_per_job: f64,
    /// Optional floor on noise multipliers (noise scale / sensitivity) of every release.
    pub min_noise_multiplier: Option<f64>,
    /// The accountant for calibrations the site makes on its own (default PLD; the DP-SGD
    /// executors will read it). `dp_stats` always calibrates with PLD, exactly as the
    /// coordinator plans it. Spend is always reported as the tighter of the PLD and RDP
    /// bounds (see [`crate::ledger::SPEND_ACCOUNTANTS`]), whatever this says.
    pub accountant: AccountantKind,
}

/// What a dataset holds, which decides the job kinds that can read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DatasetKind {
    /// One CSV file with a header.
    Csv,
    /// A folder of OMOP-CDM CSV files.
    Omop,
    /// A folder of FHIR NDJSON files or Bundles, with a term dictionary.
    Fhir,
    /// Frozen-encoder image/text features (safetensors, or two .npy files).
    Pairs,
}

impl DatasetKind {
    /// The kind's name as written in `site.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Csv => "csv",
            DatasetKind::Omop => "omop",
            DatasetKind::Fhir => "fhir",
            DatasetKind::Pairs => "pairs",
        }
    }

    /// Parses a kind name.
    pub fn parse(name: &str) -> Option<DatasetKind> {
        match name {
            "csv" => Some(DatasetKind::Csv),
            "omop" => Some(DatasetKind::Omop),
            "fhir" => Some(DatasetKind::Fhir),
            "pairs" => Some(DatasetKind::Pairs),
            _ => None,
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[datasets]]` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetConfig {
    /// The name jobs refer to.
    pub name: String,
    /// What the dataset holds.
    pub kind: DatasetKind,
    /// The file or folder (absent only for `pairs` given as `image` + `text`).
    pub path: Option<PathBuf>,
    /// The column (or record type) that identifies one individual: the privacy unit.
    pub privacy_unit: String,
    /// Lifetime ε cap across all jobs, at `delta`.
    pub epsilon_budget: f64,
    /// The δ at which spend is composed and capped.
    pub delta: f64,
    /// `fhir`: CSV `term,concept_system,concept_code` used to tag note text.
    pub dictionary: Option<PathBuf>,
    /// `pairs`: image features (.npy), with `text`.
    pub image: Option<PathBuf>,
    /// `pairs`: text features (.npy), with `image`.
    pub text: Option<PathBuf>,
    /// Optional column names the operator declares public; sent to the coordinator at
    /// registration (DESIGN section 2, rule 1b). Nothing else about the data is sent.
    pub columns: Option<Vec<String>>,
}

/// One problem in a config file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted path of the field (`datasets[1].delta`), with the environment variable when
    /// the value came from one.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Why a config file was refused: every problem found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// The config file.
    pub file: PathBuf,
    /// The problems, in file order.
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    /// One line per problem, each naming the file and the field.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(
                f,
                "{}: {}: {}",
                self.file.display(),
                issue.field,
                issue.message
            )?;
        }
        Ok(())
    }
}

impl SiteConfig {
    /// Reads and validates `path`, with overrides from the process environment.
    pub fn load(path: &Path) -> Result<SiteConfig, ConfigError> {
        Self::load_with_env(path, |key| std::env::var(key).ok())
    }

    /// [`SiteConfig::load`] with an explicit environment (for tests).
    pub fn load_with_env(
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<SiteConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            issues: vec![ConfigIssue {
                field: "(file)".into(),
                message: format!("cannot read the config file: {e}"),
            }],
        })?;
        Self::parse(&text, path, env)
    }

    /// Parses and validates config `text` that was read from `path` (relative paths in it
    /// are resolved against `path`'s folder).
    pub fn parse(
        text: &str,
        path: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<SiteConfig, ConfigError> {
        // Absolute, so that paths in logs and in the daemon do not depend on the cwd.
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_default();
        let mut table: toml::Table = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| {
                    format!(
                        "line {}",
                        text[..s.start.min(text.len())].lines().count().max(1)
                    )
                })
                .unwrap_or_else(|| "toml".into());
            ConfigError {
                file: path.to_path_buf(),
                issues: vec![ConfigIssue {
                    field: line,
                    message: format!("not valid TOML: {}", e.message().trim()),
                }],
            }
        })?;
        let mut r = Reader {
            issues: Vec::new(),
            base,
            env_keys: HashSet::new(),
        };
        r.apply_env(&mut table, &env);
        let config = r.site(table, path);
        match config {
            Some(config) if r.issues.is_empty() => Ok(config),
            _ => Err(ConfigError {
                file: path.to_path_buf(),
                issues: r.issues,
            }),
        }
    }

    /// The ledger database file.
    pub fn ledger_path(&self) -> PathBuf {
        self.data_dir.join(LEDGER_FILE)
    }

    /// The dataset called `name`.
    pub fn dataset(&self, name: &str) -> Option<&DatasetConfig> {
        self.datasets.iter().find(|d| d.name == name)
    }
}

/// Walks the TOML table, collecting issues instead of stopping at the first.
struct Reader {
    issues: Vec<ConfigIssue>,
    base: PathBuf,
    /// Top-level keys whose value came from the environment.
    env_keys: HashSet<String>,
}

impl Reader {
    fn bad(&mut self, field: &str, message: impl Into<String>) {
        let field = if self.env_keys.contains(field) {
            format!("{field} (from SILO_{})", field.to_ascii_uppercase())
        } else {
            field.to_string()
        };
        self.issues.push(ConfigIssue {
            field,
            message: message.into(),
        });
    }

    fn apply_env(&mut self, table: &mut toml::Table, env: &impl Fn(&str) -> Option<String>) {
        for key in ENV_OVERRIDABLE {
            let var = format!("SILO_{}", key.to_ascii_uppercase());
            let Some(value) = env(&var) else { continue };
            self.env_keys.insert(key.to_string());
            let value = if key == "insecure" {
                match value.trim().to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" => toml::Value::Boolean(true),
                    "0" | "false" | "no" | "" => toml::Value::Boolean(false),
                    _ => toml::Value::String(value),
                }
            } else {
                toml::Value::String(value)
            };
            table.insert(key.to_string(), value);
        }
    }

    fn resolve(&self, p: &str) -> PathBuf {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            self.base.join(p)
        }
    }

    fn unknown_keys(&mut self, prefix: &str, table: &toml::Table, known: &[&str]) {
        for key in table.keys() {
            if !known.contains(&key.as_str()) {
                let field = join(prefix, key);
                self.bad(
                    &field,
                    format!("unknown key; expected one of: {}", known.join(", ")),
                );
            }
        }
    }

    fn string(
        &mut self,
        t: &toml::Table,
        prefix: &str,
        key: &str,
        required: bool,
    ) -> Option<String> {
        let field = join(prefix, key);
        match t.get(key) {
            None if required => {
                self.bad(&field, "missing; expected a string");
                None
            }
            None => None,
            Some(toml::Value::String(s)) if s.trim().is_empty() => {
                self.bad(&field, "empty; expected a non-empty string");
                None
            }
            Some(toml::Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.bad(&field, format!("{}: expected a string", show(other)));
                None
            }
        }
    }

    fn number(&mut self, t: &toml::Table, prefix: &str, key: &str, required: bool) -> Option<f64> {
        let field = join(prefix, key);
        match t.get(key) {
            None if required => {
                self.bad(&field, "missing; expected a number");
                None
            }
            None => None,
            Some(toml::Value::Float(x)) => Some(*x),
            Some(toml::Value::Integer(i)) => Some(*i as f64),
            Some(other) => {
                self.bad(&field, format!("{}: expected a number", show(other)));
                None
            }
        }
    }

    fn positive(
        &mut self,
        t: &toml::Table,
        prefix: &str,
        key: &str,
        required: bool,
    ) -> Option<f64> {
        let x = self.number(t, prefix, key, required)?;
        if x.is_finite() && x > 0.0 {
            Some(x)
        } else {
            self.bad(
                &join(prefix, key),
                format!("{x}: expected a finite number > 0"),
            );
            None
        }
    }

    /// A path that must exist; `dir` = Some(true) for a folder, Some(false) for a file.
    fn existing_path(
        &mut self,
        t: &toml::Table,
        prefix: &str,
        key: &str,
        required: bool,
        dir: Option<bool>,
    ) -> Option<PathBuf> {
        let raw = self.string(t, prefix, key, required)?;
        let path = self.resolve(&raw);
        let field = join(prefix, key);
        match std::fs::metadata(&path) {
            Err(e) => {
                self.bad(
                    &field,
                    format!(
                        "{}: {e}; expected an existing {}",
                        path.display(),
                        what(dir)
                    ),
                );
                None
            }
            Ok(m) if dir == Some(true) && !m.is_dir() => {
                self.bad(
                    &field,
                    format!("{} is not a folder; expected {}", path.display(), what(dir)),
                );
                None
            }
            Ok(m) if dir == Some(false) && m.is_dir() => {
                self.bad(
                    &field,
                    format!("{} is a folder; expected {}", path.display(), what(dir)),
                );
                None
            }
            Ok(_) => Some(path),
        }
    }

    fn table<'t>(
        &mut self,
        t: &'t toml::Table,
        key: &str,
        required: bool,
    ) -> Option<&'t toml::Table> {
        match t.get(key) {
            None if required => {
                self.bad(key, format!("missing; expected a [{key}] table"));
                None
            }
            None => None,
            Some(toml::Value::Table(inner)) => Some(inner),
            Some(other) => {
                self.bad(key, format!("{}: expected a [{key}] table", show(other)));
                None
            }
        }
    }

    fn site(&mut self, t: toml::Table, path: &Path) -> Option<SiteConfig> {
        self.unknown_keys(
            "",
            &t,
            &[
                "name",
                "coordinator",
                "data_dir",
                "insecure",
                "tls",
                "policy",
                "datasets",
            ],
        );
        let name = self.string(&t, "", "name", true);
        if let Some(n) = &name
            && !tls::is_valid_name(n)
        {
            self.bad("name", format!("{n:?}: expected 1-64 characters of [A-Za-z0-9._-] (the CN of the site certificate)"));
        }
        let coordinator = self.string(&t, "", "coordinator", true);
        let data_dir = self
            .string(&t, "", "data_dir", true)
            .map(|d| self.resolve(&d));
        let insecure = match t.get("insecure") {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(other) => {
                self.bad(
                    "insecure",
                    format!("{}: expected true or false", show(other)),
                );
                false
            }
        };
        let tls_files = self.table(&t, "tls", false).and_then(|tt| {
            self.unknown_keys("tls", tt, &["ca", "cert", "key"]);
            let ca = self.existing_path(tt, "tls", "ca", true, Some(false));
            let cert = self.existing_path(tt, "tls", "cert", true, Some(false));
            let key = self.existing_path(tt, "tls", "key", true, Some(false));
            Some(TlsFiles {
                ca: ca?,
                cert: cert?,
                key: key?,
            })
        });
        let tls_present = t.contains_key("tls");
        if let Some(url) = &coordinator {
            self.check_coordinator(url, tls_files.as_ref(), tls_present, insecure);
        }
        let policy = self.policy(&t);
        let datasets = self.datasets(&t);
        Some(SiteConfig {
            path: path.to_path_buf(),
            name: name?,
            coordinator: coordinator?,
            data_dir: data_dir?,
            insecure,
            tls: tls_files,
            policy: policy?,
            datasets: datasets?,
        })
    }

    fn check_coordinator(
        &mut self,
        url: &str,
        files: Option<&TlsFiles>,
        tls_present: bool,
        insecure: bool,
    ) {
        let is_https = url.starts_with("https://");
        if is_https && !tls_present {
            self.bad(
                "tls",
                format!("missing; expected a [tls] table with ca, cert and key to reach {url}"),
            );
            return;
        }
        if is_https && files.is_none() {
            return; // the [tls] problems are already reported
        }
        // The same check the daemon runs before dialling: URL, scheme, loopback rule, and
        // that the certificates and key parse.
        match tls::endpoint(url, files, insecure) {
            Ok(_) => {}
            Err(
                e @ (TlsError::Read { .. }
                | TlsError::BadCertificate { .. }
                | TlsError::BadKey { .. }),
            ) => self.bad("tls", e.to_string()),
            Err(e) => self.bad("coordinator", e.to_string()),
        }
    }

    fn policy(&mut self, t: &toml::Table) -> Option<PolicyConfig> {
        let p = self.table(t, "policy", true)?;
        self.unknown_keys(
            "policy",
            p,
            &[
                "allowed_kinds",
                "max_epsilon_per_job",
                "min_noise_multiplier",
                "accountant",
            ],
        );
        let mut kinds_ok = true;
        let mut allowed_kinds = Vec::new();
        match p.get("allowed_kinds") {
            None => {
                self.bad("policy.allowed_kinds", "missing; expected a list of job kinds (dp_stats, pmi_svd, contrastive_svd, dp_clip)");
                kinds_ok = false;
            }
            Some(toml::Value::Array(items)) => {
                if items.is_empty() {
                    self.bad("policy.allowed_kinds", "empty; expected at least one job kind (dp_stats, pmi_svd, contrastive_svd, dp_clip)");
                    kinds_ok = false;
                }
                for (i, item) in items.iter().enumerate() {
                    match item.as_str().and_then(JobKind::parse) {
                        Some(k) => allowed_kinds.push(k),
                        None => {
                            self.bad(
                                &format!("policy.allowed_kinds[{i}]"),
                                format!("{}: expected one of dp_stats, pmi_svd, contrastive_svd, dp_clip", show(item)),
                            );
                            kinds_ok = false;
                        }
                    }
                }
            }
            Some(other) => {
                self.bad(
                    "policy.allowed_kinds",
                    format!("{}: expected a list of job kinds", show(other)),
                );
                kinds_ok = false;
            }
        }
        let max_eps = self.positive(p, "policy", "max_epsilon_per_job", true);
        let min_nm = if p.contains_key("min_noise_multiplier") {
            Some(self.positive(p, "policy", "min_noise_multiplier", false))
        } else {
            None
        };
        let accountant = match self.string(p, "policy", "accountant", false) {
            None => Some(AccountantKind::Pld),
            Some(s) => match s.parse::<AccountantKind>() {
                Ok(k) => Some(k),
                Err(_) => {
                    self.bad(
                        "policy.accountant",
                        format!("{s:?}: expected \"pld\" or \"rdp\""),
                    );
                    None
                }
            },
        };
        let min_noise_multiplier = match min_nm {
            None => None,
            Some(v) => Some(v?),
        };
        if !kinds_ok {
            return None;
        }
        Some(PolicyConfig {
            allowed_kinds,
            max_epsilon_per_job: max_eps?,
            min_noise_multiplier,
            accountant: accountant?,
        })
    }

    fn datasets(&mut self, t: &toml::Table) -> Option<Vec<DatasetConfig>> {
        let items = match t.get("datasets") {
            None => {
                self.bad(
                    "datasets",
                    "missing; expected at least one [[datasets]] entry",
                );
                return None;
            }
            Some(toml::Value::Array(items)) => items,
            Some(other) => {
                self.bad(
                    "datasets",
                    format!("{}: expected [[datasets]] tables", show(other)),
                );
                return None;
            }
        };
        if items.is_empty() {
            self.bad(
                "datasets",
                "empty; expected at least one [[datasets]] entry",
            );
            return None;
        }
        let mut out = Vec::new();
        let mut all_ok = true;
        let mut seen = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let prefix = format!("datasets[{i}]");
            let Some(d) = item.as_table() else {
                self.bad(
                    &prefix,
                    format!("{}: expected a [[datasets]] table", show(item)),
                );
                all_ok = false;
                continue;
            };
            if let Some(name) = d.get("name").and_then(|v| v.as_str())
                && !seen.insert(name.to_string())
            {
                self.bad(
                    &format!("{prefix}.name"),
                    format!("{name:?} is declared twice; expected unique dataset names"),
                );
                all_ok = false;
            }
            match self.dataset(d, &prefix) {
                Some(ds) => out.push(ds),
                None => all_ok = false,
            }
        }
        all_ok.then_some(out)
    }

    fn dataset(&mut self, d: &toml::Table, prefix: &str) -> Option<DatasetConfig> {
        self.unknown_keys(
            prefix,
            d,
            &[
                "name",
                "kind",
                "path",
                "privacy_unit",
                "epsilon_budget",
                "delta",
                "dictionary",
                "image",
                "text",
                "columns",
            ],
        );
        let name = self.string(d, prefix, "name", true);
        let kind_name = self.string(d, prefix, "kind", true);
        let kind = kind_name.as_deref().and_then(|k| {
            let parsed = DatasetKind::parse(k);
            if parsed.is_none() {
                self.bad(
                    &join(prefix, "kind"),
                    format!("{k:?}: expected csv, omop, fhir or pairs"),
                );
            }
            parsed
        });
        let privacy_unit = self.string(d, prefix, "privacy_unit", true);
        let epsilon_budget = self.positive(d, prefix, "epsilon_budget", true);
        let delta = self.number(d, prefix, "delta", true).and_then(|x| {
            if x > 0.0 && x < 1.0 {
                Some(x)
            } else {
                self.bad(
                    &join(prefix, "delta"),
                    format!("{x}: expected a number in (0, 1), e.g. 1e-6"),
                );
                None
            }
        });
        let mut ok = true;
        let (mut path, mut dictionary, mut image, mut text) = (None, None, None, None);
        match kind {
            Some(DatasetKind::Csv) => {
                path = self.existing_path(d, prefix, "path", true, Some(false));
                ok &= path.is_some();
            }
            Some(DatasetKind::Omop) => {
                path = self.existing_path(d, prefix, "path", true, Some(true));
                ok &= path.is_some();
            }
            Some(DatasetKind::Fhir) => {
                path = self.existing_path(d, prefix, "path", true, None);
                dictionary = self.existing_path(d, prefix, "dictionary", true, Some(false));
                ok &= path.is_some() && dictionary.is_some();
            }
            Some(DatasetKind::Pairs) => {
                let has_pair = d.contains_key("image") || d.contains_key("text");
                if has_pair {
                    image = self.existing_path(d, prefix, "image", true, Some(false));
                    text = self.existing_path(d, prefix, "text", true, Some(false));
                    ok &= image.is_some() && text.is_some();
                    if d.contains_key("path") {
                        self.bad(&join(prefix, "path"), "give either path (a safetensors file) or image and text (.npy files), not both");
                        ok = false;
                    }
                } else {
                    path = self.existing_path(d, prefix, "path", true, Some(false));
                    ok &= path.is_some();
                }
            }
            None => ok = false,
        }
        if kind != Some(DatasetKind::Fhir) && d.contains_key("dictionary") {
            self.bad(
                &join(prefix, "dictionary"),
                "applies only to kind = \"fhir\"",
            );
            ok = false;
        }
        if kind.is_some() && kind != Some(DatasetKind::Pairs) {
            for key in ["image", "text"] {
                if d.contains_key(key) {
                    self.bad(&join(prefix, key), "applies only to kind = \"pairs\"");
                    ok = false;
                }
            }
        }
        let columns = match d.get("columns") {
            None => None,
            Some(toml::Value::Array(items))
                if items
                    .iter()
                    .all(|v| v.as_str().is_some_and(|s| !s.is_empty())) =>
            {
                Some(
                    items
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect(),
                )
            }
            Some(other) => {
                self.bad(
                    &join(prefix, "columns"),
                    format!("{}: expected a list of column names", show(other)),
                );
                ok = false;
                None
            }
        };
        if !ok {
            return None;
        }
        Some(DatasetConfig {
            name: name?,
            kind: kind?,
            path,
            privacy_unit: privacy_unit?,
            epsilon_budget: epsilon_budget?,
            delta: delta?,
            dictionary,
            image,
            text,
            columns,
        })
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

fn what(dir: Option<bool>) -> &'static str {
    match dir {
        Some(true) => "folder",
        Some(false) => "file",
        None => "file or folder",
    }
}

/// A TOML value shown in a message, truncated.
fn show(v: &toml::Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests;

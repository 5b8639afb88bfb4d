//! Job specs: the TOML documents researchers submit (DESIGN section 4).
//!
//! A spec is parsed and validated once, on the coordinator at submission, and again at
//! every site before it charges anything: both sides call [`JobSpec::parse_toml`] /
//! [`JobSpec::validate`], so a malformed spec is refused with the same message everywhere.
//! On the wire a spec travels as JSON (`serde_json` of [`JobSpec`]).

mod contrastive_svd;
mod dp_stats;
mod pmi_svd;

pub use contrastive_svd::{ContrastiveSvdParams, MAX_FEATURE_DIM};
pub use dp_stats::{DpStatsParams, NoiseKind, Statistic};
pub use pmi_svd::{MAX_VOCABULARY, PmiSvdParams, VocabularySource};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Job kinds Silo runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// Federated DP counts, sums, means and histograms of a CSV column.
    DpStats,
    /// Concept embeddings from noisy co-occurrence counts and a PMI SVD.
    PmiSvd,
    /// One-round linear contrastive learning from a noisy cross-covariance SVD.
    ContrastiveSvd,
    /// Federated DP-CLIP heads trained with DP-SGD and per-batch clipping.
    DpClip,
}

impl JobKind {
    /// The kind's name as written in specs and site policies.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::DpStats => "dp_stats",
            JobKind::PmiSvd => "pmi_svd",
            JobKind::ContrastiveSvd => "contrastive_svd",
            JobKind::DpClip => "dp_clip",
        }
    }

    /// Parses a kind name; `None` for unknown names.
    pub fn parse(name: &str) -> Option<JobKind> {
        match name {
            "dp_stats" => Some(JobKind::DpStats),
            "pmi_svd" => Some(JobKind::PmiSvd),
            "contrastive_svd" => Some(JobKind::ContrastiveSvd),
            "dp_clip" => Some(JobKind::DpClip),
            _ => None,
        }
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which sites a job runs on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SiteSelection {
    /// The string `"all"`: every site that serves the dataset.
    All(AllSites),
    /// An explicit list of site names.
    List(Vec<String>),
}

/// The literal `"all"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllSites {
    /// Every site.
    All,
}

impl Default for SiteSelection {
    fn default() -> Self {
        SiteSelection::All(AllSites::All)
    }
}

impl SiteSelection {
    /// Whether `site` is selected.
    pub fn includes(&self, site: &str) -> bool {
        match self {
            SiteSelection::All(_) => true,
            SiteSelection::List(names) => names.iter().any(|n| n == site),
        }
    }
}

/// The per-site privacy target of a job.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyTarget {
    /// ε each site may spend on this job.
    pub epsilon: f64,
    /// δ of the job's guarantee; omitted for pure-DP mechanisms.
    #[serde(default)]
    pub delta: Option<f64>,
}

/// A validated job spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// What the job computes.
    pub kind: JobKind,
    /// A human name for lists and reports.
    pub name: String,
    /// The dataset name each site serves it from.
    pub dataset: String,
    /// The sites it runs on.
    #[serde(default)]
    pub sites: SiteSelection,
    /// Fewest sites that must accept (and finish each round) for the job to go on.
    #[serde(default = "default_min_sites")]
    pub min_sites: u32,
    /// The per-site privacy target.
    pub privacy: PrivacyTarget,
    /// Seconds a site has to finish a round before it is excluded from it.
    #[serde(default = "default_round_timeout")]
    pub round_timeout_seconds: u64,
    /// Kind-specific parameters, kept as JSON; read them through the typed accessors.
    #[serde(default)]
    pub params: serde_json::Value,
}

fn default_min_sites() -> u32 {
    1
}

fn default_round_timeout() -> u64 {
    600
}

/// One problem found in a spec: the field (dotted path) and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecIssue {
    /// Dotted path of the field, e.g. `params.bins`.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Why a spec was refused: every problem found, not only the first.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{origin}: {}", describe(.issues))]
pub struct SpecError {
    /// Where the spec came from (a file path, or `job spec`).
    pub origin: String,
    /// The problems, in field order.
    pub issues: Vec<SpecIssue>,
}

/// The issues as one line: `field: message; field: message`.
pub fn describe(issues: &[SpecIssue]) -> String {
    issues
        .iter()
        .map(|i| format!("{}: {}", i.field, i.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl JobSpec {
    /// Parses and validates a TOML spec; `origin` names it in errors (e.g. the file path).
    pub fn parse_toml(text: &str, origin: &str) -> Result<JobSpec, SpecError> {
        // Deserialise straight from TOML so errors carry a position: a misspelt key
        // (`sitez`) or a value of the wrong type (`epsilon = "lots"`) is reported with its
        // dotted field path and line, not as an anonymous serde message.
        let spec: JobSpec = toml::from_str(text).map_err(|e| SpecError {
            origin: origin.to_string(),
            issues: vec![toml_issue(text, &e)],
        })?;
        // The kind-specific params are kept as JSON; re-read them from the TOML with their
        // typed struct so their errors are located too.
        #[derive(Deserialize)]
        struct Params<P> {
            #[allow(dead_code)]
            params: P,
        }
        let typed = match spec.kind {
            JobKind::DpStats => toml::from_str::<Params<DpStatsParams>>(text).err(),
            JobKind::PmiSvd if text.contains("[params]") => {
                toml::from_str::<Params<PmiSvdParams>>(text).err()
            }
            JobKind::ContrastiveSvd if text.contains("[params]") => {
                toml::from_str::<Params<ContrastiveSvdParams>>(text).err()
            }
            _ => None,
        };
        if let Some(e) = typed {
            return Err(SpecError {
                origin: origin.to_string(),
                issues: vec![toml_issue(text, &e)],
            });
        }
        spec.validate(origin)?;
        Ok(spec)
    }

    /// Parses a spec received as JSON (over the wire) and re-validates it.
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<JobSpec, SpecError> {
        let spec: JobSpec = serde_json::from_slice(bytes).map_err(|e| SpecError {
            origin: origin.to_string(),
            issues: vec![SpecIssue {
                field: "spec".into(),
                message: e.to_string(),
            }],
        })?;
        spec.validate(origin)?;
        Ok(spec)
    }

    /// The spec as JSON bytes for the wire.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a JobSpec always serialises")
    }

    /// Checks every field; reports all problems at once.
    pub fn validate(&self, origin: &str) -> Result<(), SpecError> {
        let mut issues = Vec::new();
        let mut bad = |field: &str, message: String| {
            issues.push(SpecIssue {
                field: field.to_string(),
                message,
            })
        };
        if self.name.trim().is_empty() {
            bad("name", "expected a non-empty name".into());
        }
        if self.dataset.trim().is_empty() {
            bad("dataset", "expected a dataset name".into());
        }
        if self.min_sites == 0 {
            bad("min_sites", "expected at least 1".into());
        }
        if let SiteSelection::List(names) = &self.sites {
            if names.is_empty() {
                bad(
                    "sites",
                    "expected \"all\" or a non-empty list of site names".into(),
                );
            } else if (names.len() as u64) < u64::from(self.min_sites) {
                bad(
                    "min_sites",
                    format!(
                        "{} exceeds the {} listed site(s)",
                        self.min_sites,
                        names.len()
                    ),
                );
            }
        }
        let eps = self.privacy.epsilon;
        if !(eps.is_finite() && eps > 0.0) {
            bad(
                "privacy.epsilon",
                format!("{eps}: expected a finite number > 0"),
            );
        }
        if let Some(delta) = self.privacy.delta
            && !(delta > 0.0 && delta < 1.0)
        {
            bad(
                "privacy.delta",
                format!("{delta}: expected a number in (0, 1)"),
            );
        }
        if self.round_timeout_seconds == 0 {
            bad("round_timeout_seconds", "expected at least 1".into());
        }
        match self.kind {
            JobKind::DpStats => {
                if let Err(found) = DpStatsParams::from_spec(self) {
                    issues.extend(found);
                }
            }
            JobKind::PmiSvd => {
                if let Err(found) = PmiSvdParams::from_spec(self) {
                    issues.extend(found);
                }
            }
            JobKind::ContrastiveSvd => {
                if let Err(found) = ContrastiveSvdParams::from_spec(self) {
                    issues.extend(found);
                }
            }
            other => issues.push(SpecIssue {
                field: "kind".into(),
                message: format!("job kind {other} is not available in this build yet"),
            }),
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(SpecError {
                origin: origin.to_string(),
                issues,
            })
        }
    }
}

/// Turns a TOML error into an issue naming the field (`table.key`) and the line.
fn toml_issue(text: &str, err: &toml::de::Error) -> SpecIssue {
    let message = err.message().trim().to_string();
    let Some(span) = err.span() else {
        return SpecIssue {
            field: "toml".into(),
            message,
        };
    };
    let offset = span.start.min(text.len());
    let line_no = text[..offset].matches('\n').count() + 1;
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    // The innermost `[table]` header above the line, if any.
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('[') && l.ends_with(']'))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string());
    let field = match (table, key) {
        (Some(t), Some(k)) if !k.is_empty() => format!("{t}.{k}"),
        (None, Some(k)) if !k.is_empty() => k,
        (Some(t), _) => t,
        _ => "toml".to_string(),
    };
    SpecIssue {
        field,
        message: format!("{message} (line {line_no})"),
    }
}

#[cfg(test)]
mod tests;

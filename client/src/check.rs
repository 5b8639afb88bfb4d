//! `silo-site check`: validate the config, the data and the ledger, and show what the site
//! would register. Sends nothing.
//!
//! The report shows exact row and unit counts (for EHR datasets: patients, events,
//! concepts per modality, the date span and each file's skipped rows; for image–text
//! pairs: pairs, dimensions, splits, classes and unpaired rows) to the *local operator*;
//! none of these numbers is ever sent to the coordinator (registration carries only
//! declared metadata and the spend, see [`crate::daemon::build_register`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;
use silo_common::synth::ehr::omop::iso_date;

use crate::config::{DatasetConfig, DatasetKind, SiteConfig};
use crate::data::csv;
use crate::data::ehr::{self, EhrLoad};
use crate::data::pairs::{self, PairsData};
use crate::ledger::{Ledger, SPEND_ACCOUNTANTS};

/// What `check` found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckReport {
    /// The config file.
    pub config: PathBuf,
    /// The site name.
    pub site: String,
    /// The coordinator URL.
    pub coordinator: String,
    /// Allowed job kinds.
    pub allowed_kinds: Vec<String>,
    /// The per-job ε cap.
    pub max_epsilon_per_job: f64,
    /// The noise floor, if any.
    pub min_noise_multiplier: Option<f64>,
    /// The ledger database.
    pub ledger: PathBuf,
    /// Ledger entries (0 when the ledger does not exist yet).
    pub ledger_entries: u64,
    /// Ledger head hash.
    pub ledger_head: Option<String>,
    /// One report per dataset.
    pub datasets: Vec<DatasetReport>,
    /// Every problem found (empty = ready to serve).
    pub errors: Vec<String>,
    /// Things the operator should know that do not stop the site (skipped rows).
    pub warnings: Vec<String>,
}

/// One dataset as `check` sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DatasetReport {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// File or folder.
    pub path: Option<PathBuf>,
    /// The privacy unit.
    pub privacy_unit: String,
    /// Data rows (CSV only; local information, never sent).
    pub rows: Option<u64>,
    /// Distinct privacy units (CSV only; local information, never sent).
    pub units: Option<u64>,
    /// Header columns (CSV only).
    pub columns: Option<Vec<String>>,
    /// Patients, events, concepts and files (`omop` and `fhir` only; local information,
    /// never sent).
    pub ehr: Option<EhrSummary>,
    /// Pairs, dimensions, splits, classes and unpaired rows (`pairs` only; local
    /// information, never sent).
    pub pairs: Option<PairsSummary>,
    /// Lifetime cap.
    pub epsilon_budget: f64,
    /// δ.
    pub delta: f64,
    /// Composed spend from the ledger.
    pub epsilon_spent: f64,
    /// Cap − spend.
    pub epsilon_remaining: f64,
}

/// An EHR dataset (`omop`, `fhir`) as `check` read it: exact local counts, shown to the
/// operator and never sent (DESIGN section 2, rule 1).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EhrSummary {
    /// Patients with at least one event.
    pub patients: u64,
    /// Events: distinct (patient, day, concept).
    pub events: u64,
    /// Per modality (`code`, `note`): events and distinct concepts.
    pub modalities: BTreeMap<String, ModalityCounts>,
    /// The earliest event's date (ISO), if any.
    pub first_date: Option<String>,
    /// The latest event's date (ISO), if any.
    pub last_date: Option<String>,
    /// Every file read, in the order read.
    pub files: Vec<EhrFile>,
}

/// Events and distinct concepts of one modality.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModalityCounts {
    /// Events of the modality.
    pub events: u64,
    /// Distinct concepts of the modality.
    pub concepts: u64,
}

/// What was read from one file of an EHR dataset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EhrFile {
    /// The file.
    pub path: PathBuf,
    /// Rows (or records) read.
    pub rows: u64,
    /// Rows that became events (or, for `person`/`Patient`, patients).
    pub used: u64,
    /// Rows skipped (the examples are in the report's warnings).
    pub skipped: u64,
}

/// A `pairs` dataset as `check` read it: exact local counts, shown to the operator and
/// never sent (DESIGN section 2, rule 1).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PairsSummary {
    /// Image–text pairs n (the privacy units).
    pub pairs: u64,
    /// Image feature dimension d1.
    pub dim_image: u64,
    /// Text feature dimension d2.
    pub dim_text: u64,
    /// Pairs in the training split (all of them without a `split` tensor).
    pub train: u64,
    /// Pairs in the held-out test split.
    pub test: u64,
    /// Whether the data carry a `split` tensor.
    pub has_split: bool,
    /// Distinct labels, when the data carry a `label` tensor.
    pub classes: Option<u64>,
    /// Unpaired image rows.
    pub image_only: u64,
    /// Unpaired text rows.
    pub text_only: u64,
    /// Stored dtype of the image features (`F32`, `F64`, ...).
    pub image_dtype: String,
    /// Stored dtype of the text features.
    pub text_dtype: String,
    /// The files read.
    pub files: Vec<PathBuf>,
}

impl PairsSummary {
    /// Summarises a load.
    pub fn new(data: &PairsData) -> PairsSummary {
        let test = data.test_indices().len() as u64;
        PairsSummary {
            pairs: data.n as u64,
            dim_image: data.d1 as u64,
            dim_text: data.d2 as u64,
            train: data.n as u64 - test,
            test,
            has_split: data.split.is_some(),
            classes: data.classes().map(|c| c as u64),
            image_only: data.image_only_rows() as u64,
            text_only: data.text_only_rows() as u64,
            image_dtype: data.image_dtype.to_string(),
            text_dtype: data.text_dtype.to_string(),
            files: data.files.clone(),
        }
    }
}

impl EhrSummary {
    /// Summarises a load.
    pub fn new(load: &EhrLoad) -> EhrSummary {
        let s = load.timelines.summary();
        EhrSummary {
            patients: s.patients as u64,
            events: s.events,
            modalities: s
                .modalities
                .iter()
                .map(|m| {
                    let counts = ModalityCounts {
                        events: m.events,
                        concepts: m.concepts as u64,
                    };
                    (m.modality.as_str().to_string(), counts)
                })
                .collect(),
            first_date: s.first_day.map(iso_date),
            last_date: s.last_day.map(iso_date),
            files: load
                .files
                .iter()
                .map(|f| EhrFile {
                    path: f.path.clone(),
                    rows: f.rows,
                    used: f.used,
                    skipped: f.skipped,
                })
                .collect(),
        }
    }

    /// The modality's counts (zero when absent).
    fn counts(&self, modality: &str) -> ModalityCounts {
        self.modalities
            .get(modality)
            .cloned()
            .unwrap_or(ModalityCounts {
                events: 0,
                concepts: 0,
            })
    }
}

impl CheckReport {
    /// Whether the site is ready to serve.
    pub fn ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// The human-readable report (stdout); the errors themselves go to stderr.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "site {} ({})", self.site, self.config.display());
        let _ = writeln!(s, "  coordinator    {}", self.coordinator);
        let _ = writeln!(s, "  allowed kinds  {}", self.allowed_kinds.join(", "));
        let floor = self
            .min_noise_multiplier
            .map(|f| format!(", noise multiplier >= {f}"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "  per job        epsilon <= {}{floor}",
            self.max_epsilon_per_job
        );
        let head = self
            .ledger_head
            .as_deref()
            .map(|h| &h[..h.len().min(16)])
            .unwrap_or("-");
        let _ = writeln!(
            s,
            "  ledger         {} ({} entries, head {head})",
            self.ledger.display(),
            self.ledger_entries
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<16} {:<6} {:>10} {:>10} {:>10} {:>10} {:>10}  {:<16} columns",
            "dataset", "kind", "rows", "units", "budget", "spent", "remaining", "privacy unit"
        );
        let opt = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        for d in &self.datasets {
            let _ = writeln!(
                s,
                "{:<16} {:<6} {:>10} {:>10} {:>10.4} {:>10.4} {:>10.4}  {:<16} {}",
                d.name,
                d.kind,
                opt(d.rows),
                opt(d.units),
                d.epsilon_budget,
                d.epsilon_spent,
                d.epsilon_remaining,
                d.privacy_unit,
                d.columns
                    .as_ref()
                    .map(|c| c.join(","))
                    .unwrap_or_else(|| "-".into())
            );
        }
        for d in &self.datasets {
            let Some(e) = &d.ehr else { continue };
            let (codes, notes) = (e.counts("code"), e.counts("note"));
            let span = match (&e.first_date, &e.last_date) {
                (Some(a), Some(b)) => format!("{a} to {b}"),
                _ => "no events".into(),
            };
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "{} ({}): {} patients, {} events, {span}",
                d.name, d.kind, e.patients, e.events
            );
            let _ = writeln!(
                s,
                "  codes          {} concepts, {} events",
                codes.concepts, codes.events
            );
            let _ = writeln!(
                s,
                "  note concepts  {} concepts, {} events",
                notes.concepts, notes.events
            );
            for f in &e.files {
                let name = f.path.file_name().map_or_else(
                    || f.path.display().to_string(),
                    |n| n.to_string_lossy().into_owned(),
                );
                let _ = writeln!(
                    s,
                    "  {name:<28} {:>10} rows {:>10} used {:>8} skipped",
                    f.rows, f.used, f.skipped
                );
            }
        }
        for d in &self.datasets {
            let Some(p) = &d.pairs else { continue };
            let _ = writeln!(s);
            let split = if p.has_split {
                format!("{} train, {} test", p.train, p.test)
            } else {
                "no split: all train".into()
            };
            let _ = writeln!(s, "{} ({}): {} pairs ({split})", d.name, d.kind, p.pairs);
            let _ = writeln!(
                s,
                "  features       image {}-d {}, text {}-d {}",
                p.dim_image, p.image_dtype, p.dim_text, p.text_dtype
            );
            let classes = p
                .classes
                .map_or_else(|| "none".into(), |c| format!("{c} classes"));
            let _ = writeln!(s, "  labels         {classes}");
            let _ = writeln!(
                s,
                "  unpaired       {} image-only, {} text-only",
                p.image_only, p.text_only
            );
            for f in &p.files {
                let _ = writeln!(s, "  file           {}", f.display());
            }
        }
        let _ = writeln!(s);
        for w in &self.warnings {
            let _ = writeln!(s, "warning: {w}");
        }
        if self.errors.is_empty() {
            let _ = writeln!(
                s,
                "ok: the site would register {} dataset(s); nothing was sent",
                self.datasets.len()
            );
        } else {
            let _ = writeln!(
                s,
                "not ready: {} problem(s), listed on stderr",
                self.errors.len()
            );
        }
        s
    }
}

/// Checks `config`'s data and ledger; collects every problem.
pub fn check(config: &SiteConfig) -> CheckReport {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let ledger_path = config.ledger_path();
    // Read-only: a missing ledger is an empty one; `check` creates nothing.
    let ledger = if ledger_path.exists() {
        match Ledger::open(&ledger_path) {
            Ok(l) => Some(l),
            Err(e) => {
                errors.push(format!("{e}"));
                None
            }
        }
    } else {
        None
    };
    let (mut entries, mut head) = (0, None);
    if let Some(l) = &ledger {
        match l.verify() {
            Ok(v) => {
                entries = v.entries;
                head = v.head.clone();
                if let Some(bad) = v.first_bad {
                    errors.push(format!(
                        "{}: the ledger chain is broken at entry {}: {}",
                        ledger_path.display(),
                        bad.seq,
                        bad.reason
                    ));
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    let mut datasets = Vec::new();
    for d in &config.datasets {
        let (mut rows, mut units, mut columns, mut ehr) = (None, None, None, None);
        let mut pairs = None;
        if d.kind == DatasetKind::Csv
            && let Some(path) = &d.path
        {
            match csv::summarize(path, &d.privacy_unit) {
                Ok(s) => {
                    if s.rows_without_unit > 0 {
                        warnings.push(format!(
                            "{}: {} row(s) have an empty privacy unit {:?}; they will be skipped",
                            path.display(),
                            s.rows_without_unit,
                            d.privacy_unit
                        ));
                    }
                    if let Some(declared) = &d.columns {
                        for c in declared.iter().filter(|c| !s.columns.contains(c)) {
                            errors.push(format!(
                                "{}: dataset {}: declared column {c:?} is not in the header ({})",
                                config.path.display(),
                                d.name,
                                s.columns.join(", ")
                            ));
                        }
                    }
                    rows = Some(s.rows);
                    units = Some(s.units);
                    columns = Some(s.columns);
                }
                Err(e) => errors.push(format!("dataset {}: {e}", d.name)),
            }
        }
        if matches!(d.kind, DatasetKind::Omop | DatasetKind::Fhir)
            && let Some(summary) = check_ehr(d, &mut errors, &mut warnings)
        {
            rows = Some(summary.events);
            units = Some(summary.patients);
            ehr = Some(summary);
        }
        if d.kind == DatasetKind::Pairs {
            match pairs::load(d) {
                Ok(data) => {
                    // The privacy unit of a pairs dataset is one pair.
                    rows = Some(data.n as u64);
                    units = Some(data.n as u64);
                    pairs = Some(PairsSummary::new(&data));
                }
                Err(e) => errors.push(format!("dataset {}: {e}", d.name)),
            }
        }
        let spent = match &ledger {
            Some(l) => l
                .spent(&d.name, d.delta, &SPEND_ACCOUNTANTS)
                .unwrap_or_else(|e| {
                    errors.push(format!(
                        "dataset {}: cannot compose its ledger history: {e}",
                        d.name
                    ));
                    f64::NAN
                }),
            None => 0.0,
        };
        datasets.push(DatasetReport {
            name: d.name.clone(),
            kind: d.kind.as_str().into(),
            path: d.path.clone(),
            privacy_unit: d.privacy_unit.clone(),
            rows,
            units,
            columns,
            ehr,
            pairs,
            epsilon_budget: d.epsilon_budget,
            delta: d.delta,
            epsilon_spent: spent,
            epsilon_remaining: (d.epsilon_budget - spent).max(0.0),
        });
    }
    CheckReport {
        config: config.path.clone(),
        site: config.name.clone(),
        coordinator: config.coordinator.clone(),
        allowed_kinds: config
            .policy
            .allowed_kinds
            .iter()
            .map(|k| k.as_str().to_string())
            .collect(),
        max_epsilon_per_job: config.policy.max_epsilon_per_job,
        min_noise_multiplier: config.policy.min_noise_multiplier,
        ledger: ledger_path,
        ledger_entries: entries,
        ledger_head: head,
        datasets,
        errors,
        warnings,
    }
}

/// Reads an `omop` or `fhir` dataset as a task would; skipped rows become warnings, a
/// dataset that cannot be read an error.
fn check_ehr(
    d: &DatasetConfig,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<EhrSummary> {
    match ehr::load(d) {
        Ok(load) => {
            warnings.extend(
                load.files
                    .iter()
                    .filter_map(|f| f.skipped_summary())
                    .map(|w| format!("dataset {}: {w}", d.name)),
            );
            if load.timelines.events.is_empty() {
                warnings.push(format!(
                    "dataset {}: no events; every job on it would release noise only",
                    d.name
                ));
            }
            Some(EhrSummary::new(&load))
        }
        Err(e) => {
            errors.push(format!("dataset {}: {e}", d.name));
            None
        }
    }
}

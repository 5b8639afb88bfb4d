//! EHR datasets (`omop`, `fhir`): patient timelines of coded and note concepts.
//!
//! Both adapters return the same [`EhrLoad`]: the timelines (see
//! [`silo_common::ehr::Timelines`]) and, per file, how many rows were read, used and
//! skipped, with the first few skipped rows and their line numbers. Skipped rows are
//! reported to the operator's log and `silo-site check` only; their counts are exact
//! aggregates of the data and never leave the site. A file that cannot be parsed at all
//! (not CSV / not JSON, a required column missing) is an [`EhrError`], which stops the
//! task before anything is charged or released.

use std::path::{Path, PathBuf};

use silo_common::ehr::Timelines;

use super::csv::Skipped;
use crate::config::{DatasetConfig, DatasetKind};

/// How many skipped rows are kept as examples per file.
pub const MAX_EXAMPLES: usize = 5;

/// What was read from one file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// Data rows (CSV lines after the header, NDJSON lines, Bundle entries) read.
    pub rows: u64,
    /// Rows that became events (or, for `person`/`Patient`, patients).
    pub used: u64,
    /// Rows skipped (unparseable date, missing patient, unmapped concept, negated, ...).
    pub skipped: u64,
    /// The first [`MAX_EXAMPLES`] skipped rows with their line numbers.
    pub examples: Vec<Skipped>,
}

impl FileReport {
    /// A report for `path` with nothing read yet.
    pub fn new(path: &Path) -> Self {
        FileReport {
            path: path.to_path_buf(),
            ..FileReport::default()
        }
    }

    /// Counts a skipped row, keeping it as an example while there are fewer than
    /// [`MAX_EXAMPLES`].
    pub fn skip(&mut self, line: u64, reason: impl Into<String>) {
        self.skipped += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(Skipped {
                line,
                reason: reason.into(),
            });
        }
    }

    /// One line for the operator's log when rows were skipped, e.g.
    /// `condition_occurrence.csv: 3 of 1200 row(s) skipped (line 7: bad date "2021-13-01"; ...)`.
    pub fn skipped_summary(&self) -> Option<String> {
        (self.skipped > 0).then(|| {
            let examples: Vec<String> = self
                .examples
                .iter()
                .map(|s| format!("line {}: {}", s.line, s.reason))
                .collect();
            format!(
                "{}: {} of {} row(s) skipped ({})",
                self.path.display(),
                self.skipped,
                self.rows,
                examples.join("; ")
            )
        })
    }
}

/// An EHR dataset as read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EhrLoad {
    /// Every patient's dated concepts.
    pub timelines: Timelines,
    /// One report per file read, in the order read.
    pub files: Vec<FileReport>,
}

/// Why an EHR dataset could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum EhrError {
    /// A file or folder could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not in the expected format at all (at a line, when known).
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(": line {l}")).unwrap_or_default())]
    Format {
        /// The file.
        path: PathBuf,
        /// The line, when known.
        line: Option<u64>,
        /// What was expected and what was found.
        message: String,
    },
    /// The dataset config lacks something the adapter needs (a path, a dictionary).
    #[error("dataset {dataset}: {message}")]
    Config {
        /// The dataset's name.
        dataset: String,
        /// What is missing.
        message: String,
    },
}

/// Reads an `omop` or `fhir` dataset.
pub fn load(dataset: &DatasetConfig) -> Result<EhrLoad, EhrError> {
    let Some(path) = dataset.path.as_deref() else {
        return Err(EhrError::Config {
            dataset: dataset.name.clone(),
            message: "no path; expected the folder of the dataset's files".into(),
        });
    };
    match dataset.kind {
        DatasetKind::Omop => super::omop::load(path, &dataset.privacy_unit),
        DatasetKind::Fhir => super::fhir::load(path, dataset.dictionary.as_deref()),
        other => Err(EhrError::Config {
            dataset: dataset.name.clone(),
            message: format!("kind {other} is not an EHR dataset (expected omop or fhir)"),
        }),
    }
}

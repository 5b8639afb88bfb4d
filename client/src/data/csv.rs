//! CSV datasets: one file, a header row, one row per record, a privacy-unit column.
//!
//! The header is required, and so is the privacy-unit column: without it no contribution
//! bound can be enforced, so the file is refused. Numeric columns are read leniently:
//! empty, `NA`, `null`, non-numeric and non-finite cells are skipped and counted, and the
//! first few are kept (with their line numbers) for the operator's log. Rows with an
//! empty privacy unit are skipped too (they cannot be attributed to anyone, so they
//! could not be bounded). What is skipped is reported locally only: counts of skipped
//! rows are exact aggregates of the data and never leave the site.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// How many skipped cells are kept as examples.
pub const MAX_EXAMPLES: usize = 5;

/// Why a CSV dataset could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not CSV the reader can parse (at a line).
    #[error("{}: line {line}: not valid CSV: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line.
        line: u64,
        /// The parser's message.
        message: String,
    },
    /// The header lacks a required column.
    #[error("{}: no column {column:?} ({role}); the header has: {}", path.display(), header.join(", "))]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The missing column.
        column: String,
        /// What it was needed for ("privacy unit", "the job's column").
        role: &'static str,
        /// The header as read.
        header: Vec<String>,
    },
    /// The file has no header row.
    #[error("{}: empty file; expected a header row naming the columns", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// A cell (or row) that was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line number in the file.
    pub line: u64,
    /// Why (`empty`, `not a number: "abc"`, `missing privacy unit`, ...).
    pub reason: String,
}

/// The rows of one column, keyed by privacy unit, in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UnitValues {
    /// (privacy unit, value) for every usable row, in file order. The value is 0.0 when no
    /// column was asked for (a count).
    pub rows: Vec<(Vec<u8>, f64)>,
    /// Data rows read (excluding the header).
    pub total_rows: u64,
    /// Rows skipped (missing unit, missing or non-numeric value, ragged).
    pub skipped: u64,
    /// The first [`MAX_EXAMPLES`] skipped rows.
    pub examples: Vec<Skipped>,
}

impl UnitValues {
    /// A one-line summary of what was skipped, for the site's log.
    pub fn skipped_summary(&self) -> Option<String> {
        if self.skipped == 0 {
            return None;
        }
        let ex: Vec<String> = self
            .examples
            .iter()
            .map(|s| format!("line {}: {}", s.line, s.reason))
            .collect();
        Some(format!(
            "skipped {} of {} rows ({})",
            self.skipped,
            self.total_rows,
            ex.join("; ")
        ))
    }
}

/// A description of a CSV dataset for `silo-site check` (local only: exact counts).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct CsvSummary {
    /// The header.
    pub columns: Vec<String>,
    /// Data rows.
    pub rows: u64,
    /// Distinct privacy units.
    pub units: u64,
    /// Rows with an empty privacy unit.
    pub rows_without_unit: u64,
}

fn open(path: &Path) -> Result<(csv::Reader<std::fs::File>, Vec<String>), CsvError> {
    let file = std::fs::File::open(path).map_err(|source| CsvError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(file);
    let header = reader
        .byte_headers()
        .map_err(|e| to_error(path, e))?
        .clone();
    if header.is_empty() {
        return Err(CsvError::Empty {
            path: path.to_path_buf(),
        });
    }
    let header: Vec<String> = header
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_string())
        .collect();
    Ok((reader, header))
}

fn to_error(path: &Path, e: csv::Error) -> CsvError {
    let line = e.position().map(|p| p.line()).unwrap_or(0);
    match e.into_kind() {
        csv::ErrorKind::Io(source) => CsvError::Io {
            path: path.to_path_buf(),
            source,
        },
        other => CsvError::Parse {
            path: path.to_path_buf(),
            line,
            message: format!("{other:?}"),
        },
    }
}

fn column_index(
    path: &Path,
    header: &[String],
    column: &str,
    role: &'static str,
) -> Result<usize, CsvError> {
    header
        .iter()
        .position(|h| h == column)
        .ok_or_else(|| CsvError::MissingColumn {
            path: path.to_path_buf(),
            column: column.to_string(),
            role,
            header: header.to_vec(),
        })
}

/// Reads `(unit, value)` rows from `path`: the privacy unit from column `unit`, the value
/// from column `value` (leniently; `None` reads no value, for counts).
pub fn read_unit_values(
    path: &Path,
    unit: &str,
    value: Option<&str>,
) -> Result<UnitValues, CsvError> {
    let (mut reader, header) = open(path)?;
    let unit_idx = column_index(path, &header, unit, "the dataset's privacy unit")?;
    let value_idx = value
        .map(|c| column_index(path, &header, c, "the job's column"))
        .transpose()?;
    let mut out = UnitValues::default();
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(to_error(path, e)),
        }
        out.total_rows += 1;
        let line = record
            .position()
            .map(|p| p.line())
            .unwrap_or(out.total_rows + 1);
        let mut skip = |reason: String| {
            out.skipped += 1;
            if out.examples.len() < MAX_EXAMPLES {
                out.examples.push(Skipped { line, reason });
            }
        };
        let unit_cell = record.get(unit_idx).map(trim_bytes).unwrap_or_default();
        if unit_cell.is_empty() {
            skip(format!("missing privacy unit {unit:?}"));
            continue;
        }
        let v = match value_idx {
            None => 0.0,
            Some(idx) => match parse_number(record.get(idx)) {
                Ok(v) => v,
                Err(reason) => {
                    skip(reason);
                    continue;
                }
            },
        };
        out.rows.push((unit_cell.to_vec(), v));
    }
    Ok(out)
}

/// Counts rows and distinct units, and returns the header (for `silo-site check`).
pub fn summarize(path: &Path, unit: &str) -> Result<CsvSummary, CsvError> {
    let (mut reader, header) = open(path)?;
    let unit_idx = column_index(path, &header, unit, "the dataset's privacy unit")?;
    let mut units: HashSet<Vec<u8>> = HashSet::new();
    let (mut rows, mut without) = (0, 0);
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(to_error(path, e)),
        }
        rows += 1;
        let cell = record.get(unit_idx).map(trim_bytes).unwrap_or_default();
        if cell.is_empty() {
            without += 1;
        } else if !units.contains(cell) {
            units.insert(cell.to_vec());
        }
    }
    Ok(CsvSummary {
        columns: header,
        rows,
        units: units.len() as u64,
        rows_without_unit: without,
    })
}

fn trim_bytes(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// Parses a numeric cell: finite numbers only; empty, NA-like and non-numeric cells are
/// errors with a short reason.
fn parse_number(cell: Option<&[u8]>) -> Result<f64, String> {
    let Some(cell) = cell else {
        return Err("row is too short: no cell in the column".into());
    };
    let text = match std::str::from_utf8(trim_bytes(cell)) {
        Ok(t) => t,
        Err(_) => return Err("not UTF-8".into()),
    };
    if text.is_empty() {
        return Err("empty".into());
    }
    let lower = text.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "na" | "n/a" | "nan" | "null" | "none" | "-" | "."
    ) {
        return Err(format!("missing ({text})"));
    }
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("not a finite number: {:?}", shorten(text))),
        Err(_) => Err(format!("not a number: {:?}", shorten(text))),
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 24 {
        format!("{}…", s.chars().take(24).collect::<String>())
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("visits.csv");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn malformed_rows_are_counted_and_the_first_reported_with_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "person_id,age\n1,30\n2,\n3,NA\n,40\n4,abc\n5,inf\n6,50.5\n7\n",
        );
        let v = read_unit_values(&p, "person_id", Some("age")).unwrap();
        assert_eq!(v.total_rows, 8);
        assert_eq!(v.rows, vec![(b"1".to_vec(), 30.0), (b"6".to_vec(), 50.5)]);
        assert_eq!(v.skipped, 6);
        assert_eq!(v.examples.len(), MAX_EXAMPLES);
        assert_eq!(
            v.examples[0],
            Skipped {
                line: 3,
                reason: "empty".into()
            }
        );
        assert_eq!(v.examples[1].line, 4);
        assert!(
            v.examples[2].reason.contains("privacy unit"),
            "{:?}",
            v.examples[2]
        );
        assert!(v.examples[3].reason.contains("not a number"));
        assert!(v.examples[4].reason.contains("finite"));
        let summary = v.skipped_summary().unwrap();
        assert!(
            summary.starts_with("skipped 6 of 8 rows (line 3: empty"),
            "{summary}"
        );
    }

    #[test]
    fn a_missing_column_names_file_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "patient,age\n1,30\n");
        let err = read_unit_values(&p, "person_id", Some("age"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("visits.csv")
                && err.contains("\"person_id\"")
                && err.contains("patient, age"),
            "{err}"
        );
        let err = read_unit_values(&p, "patient", Some("weight"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"weight\"") && err.contains("job's column"),
            "{err}"
        );
    }

    #[test]
    fn unreadable_and_empty_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_unit_values(&dir.path().join("nope.csv"), "u", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope.csv"), "{err}");
        let p = write(dir.path(), "");
        let err = summarize(&p, "u").unwrap_err().to_string();
        assert!(err.contains("empty file"), "{err}");
    }

    #[test]
    fn summary_counts_rows_and_distinct_units() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "person_id,age\n1,30\n1,31\n2,40\n,50\n");
        let s = summarize(&p, "person_id").unwrap();
        assert_eq!(s.columns, vec!["person_id", "age"]);
        assert_eq!((s.rows, s.units, s.rows_without_unit), (4, 2, 1));
        let counts = read_unit_values(&p, "person_id", None).unwrap();
        assert_eq!(counts.rows.len(), 3);
    }
}

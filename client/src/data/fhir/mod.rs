//! FHIR R4 datasets: bulk-export NDJSON and Bundles, read into patient timelines.
//!
//! `path` is a folder (or one file) of FHIR R4 JSON:
//! - `*.ndjson`: bulk-export NDJSON, one resource per line, resource types mixed freely
//!   (`Condition.ndjson`, `Condition.000.ndjson`, `all.ndjson`), read line by line;
//! - `*.json`: a Bundle (`entry[].resource`, as Synthea writes one per patient) or a
//!   single resource, read whole (only the fields below are kept).
//!
//! Other files in the folder are ignored; a folder with no such file is an error. Files
//! are read in name order.
//!
//! What each resource gives — the patient (the privacy unit), a day, and concepts:
//!
//! | resource | day, first that is a full date | concepts |
//! | --- | --- | --- |
//! | Patient | — (counted as a patient) | — |
//! | Condition | `onsetDateTime`, `onsetPeriod.start`, `recordedDate`, its encounter's | `code.coding[]` |
//! | MedicationRequest | `authoredOn`, its encounter's | `medicationCodeableConcept.coding[]`, or the referenced Medication's `code.coding[]` |
//! | MedicationStatement | `effectiveDateTime`, `effectivePeriod.start`, `dateAsserted`, its `context` encounter's | as MedicationRequest |
//! | Observation | `effectiveDateTime`, `effectivePeriod.start`, `effectiveInstant`, `issued`, its encounter's | `code.coding[]` |
//! | Procedure | `performedDateTime`, `performedPeriod.start`, its encounter's | `code.coding[]` |
//! | Encounter | `period.start` (also the day of resources that reference it) | `reasonCode[].coding[]` |
//! | DocumentReference | `date`, `context.period.start`, its `context.encounter[0]`'s | note text tagged with the dictionary ([`tagger`]) |
//!
//! The patient is `subject` (or `patient`): `Patient/<id>`, an absolute URL ending in
//! `Patient/<id>`, or — in Bundles — `urn:uuid:<x>`, resolved to the id of the Patient
//! whose `fullUrl` it is (else `<x>` itself, which is the Patient's id in Synthea's
//! output). A reference to anything but a Patient is skipped. An encounter or Medication
//! referenced by a resource may be in any file; they are resolved after every file is read.
//! Medications `contained` in the resource are not resolved.
//!
//! Concepts keep their coding system, as a short label for the well-known ones
//! (`http://hl7.org/fhir/sid/icd-10-cm` → `ICD10CM`, `…/icd-10` → `ICD10`,
//! `http://www.nlm.nih.gov/research/umls/rxnorm` → `RXNORM`, `http://loinc.org` →
//! `LOINC`, `http://snomed.info/sct` → `SNOMED`, `http://www.ama-assn.org/go/cpt` →
//! `CPT`, `http://hl7.org/fhir/sid/ndc` → `NDC`, `http://www.nlm.nih.gov/research/umls`
//! → `CUI`, `http://hl7.org/fhir/sid/cvx` → `CVX`, and the same systems' HL7 OIDs), any
//! other system verbatim. A resource with several codings (say SNOMED and ICD-10-CM)
//! contributes *each* as a separate concept on the same day; codings without a system or
//! a code are ignored. Structured concepts are [`Modality::Code`], tagged ones
//! [`Modality::Note`].
//!
//! Note text is the `text/*` (or untyped) attachments' inline base64 `data` and the
//! `description`; attachment URLs are not fetched. Without a dictionary, every
//! DocumentReference is skipped (with that reason); a note where no term is found outside
//! negations is skipped too.
//!
//! Leniency, as for CSV: unknown resource types and unknown fields are ignored (counted in
//! a file's `rows`, neither used nor skipped; a debug log names the types); a field of an
//! unexpected JSON type reads as absent. A resource without a usable patient, day or
//! concept is skipped with its reason (`Condition/abc: no onsetDateTime, onsetPeriod.start
//! or recordedDate`). Partial dates (`2021`, `2021-03`) do not give a day — mapping them
//! to the first of the year or month would invent co-occurrences — so the next date field
//! is tried, then the encounter's, and the resource is skipped if none is a full date. A
//! bad NDJSON line in a file whose earlier lines were good is skipped with its line
//! number; a file whose first resource is not JSON, or a `.json` file that is not valid
//! JSON anywhere, is an [`EhrError::Format`]. For Bundles the `line` of a skipped example
//! is the entry number in the file (1-based).

mod loader;
mod resource;
pub mod tagger;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::ehr::{EhrError, EhrLoad};
use loader::Loader;
use resource::{Obj, Resource};
#[cfg(doc)]
use silo_common::ehr::Modality;
use tagger::Dictionary;

/// The UTF-8 byte-order mark some exporters write.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads a FHIR folder (or file) into timelines; `dictionary` tags note text (see the
/// module documentation). The dictionary's report, when given, comes first in
/// [`EhrLoad::files`], then one per FHIR file in name order.
pub fn load(path: &Path, dictionary: Option<&Path>) -> Result<EhrLoad, EhrError> {
    let mut reports = Vec::new();
    let dictionary = match dictionary {
        Some(p) => {
            let (d, report) = Dictionary::read(p)?;
            reports.push(report);
            Some(d)
        }
        None => None,
    };
    let files = fhir_files(path)?;
    let mut loader = Loader::new(dictionary.as_ref(), reports);
    for (file, kind) in files {
        match kind {
            FileKind::Ndjson => loader.ndjson(&file)?,
            FileKind::Json => loader.json(&file)?,
        }
    }
    Ok(loader.finish())
}

/// How a file is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    /// One resource per line.
    Ndjson,
    /// One JSON document (a Bundle or a resource), or several one after another.
    Json,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> EhrError + '_ {
    move |source| EhrError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn file_kind(path: &Path) -> Option<FileKind> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "ndjson" | "jsonl" => Some(FileKind::Ndjson),
        "json" => Some(FileKind::Json),
        _ => None,
    }
}

/// The FHIR files of `path` in name order: the file itself, or a folder's `*.ndjson` and
/// `*.json` files (hidden files skipped).
fn fhir_files(path: &Path) -> Result<Vec<(PathBuf, FileKind)>, EhrError> {
    let meta = std::fs::metadata(path).map_err(io_error(path))?;
    if meta.is_file() {
        return Ok(vec![(
            path.to_path_buf(),
            file_kind(path).unwrap_or(FileKind::Json),
        )]);
    }
    let mut files = Vec::new();
    let mut compressed = 0;
    for entry in std::fs::read_dir(path).map_err(io_error(path))? {
        let entry = entry.map_err(io_error(path))?;
        let p = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') || !p.is_file() {
            continue;
        }
        match file_kind(&p) {
            Some(kind) => files.push((p, kind)),
            None => compressed += usize::from(p.extension().is_some_and(|e| e == "gz")),
        }
    }
    if files.is_empty() {
        let hint = if compressed > 0 {
            format!(" ({compressed} compressed file(s) found: decompress them first)")
        } else {
            String::new()
        };
        return Err(EhrError::Format {
            path: path.to_path_buf(),
            line: None,
            message: format!(
                "no FHIR files: expected bulk-export NDJSON (*.ndjson) or Bundle JSON (*.json) files in this folder{hint}"
            ),
        });
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(files)
}

/// serde_json's message without its position (a line of NDJSON is always "line 1").
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => format!("{} (column {})", &text[..at], e.column()),
        None => text,
    }
}

/// Reading files: each row goes to [`Loader::resource`].
impl Loader<'_> {
    /// Reads an NDJSON file line by line.
    fn ndjson(&mut self, path: &Path) -> Result<(), EhrError> {
        let file = File::open(path).map_err(io_error(path))?;
        let mut reader = BufReader::with_capacity(1 << 18, file);
        let report = self.start_file(path);
        let mut buf = Vec::with_capacity(1 << 12);
        let mut line = 0u64;
        let mut good = false;
        loop {
            buf.clear();
            if reader.read_until(b'\n', &mut buf).map_err(io_error(path))? == 0 {
                break;
            }
            line += 1;
            let mut text = buf.trim_ascii();
            if line == 1 {
                text = text.strip_prefix(BOM).unwrap_or(text);
            }
            if text.is_empty() {
                continue;
            }
            let problem = match serde_json::from_slice::<Obj<Resource>>(text) {
                Ok(Obj(Some(r))) => {
                    good = true;
                    self.resource(report, line, None, r);
                    continue;
                }
                Ok(Obj(None)) => "a JSON value that is not an object".to_string(),
                Err(e) => json_message(&e),
            };
            if !good {
                return Err(EhrError::Format {
                    path: path.to_path_buf(),
                    line: Some(line),
                    message: format!("not FHIR NDJSON (one JSON resource per line): {problem}"),
                });
            }
            self.reports[report].rows += 1;
            self.reports[report].skip(line, format!("not a JSON resource: {problem}"));
        }
        self.end_file(report);
        Ok(())
    }

    /// Reads a `.json` file: a Bundle or a resource (or several documents in a row).
    fn json(&mut self, path: &Path) -> Result<(), EhrError> {
        let bytes = std::fs::read(path).map_err(io_error(path))?;
        let text = bytes.strip_prefix(BOM).unwrap_or(&bytes);
        let report = self.start_file(path);
        let format = |line: Option<u64>, message: String| EhrError::Format {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut documents = 0;
        for doc in serde_json::Deserializer::from_slice(text).into_iter::<Obj<Resource>>() {
            match doc {
                Ok(Obj(Some(r))) => {
                    documents += 1;
                    if r.resource_type.get() == Some("Bundle") {
                        self.bundle(report, None, r);
                    } else {
                        self.entries += 1;
                        let line = self.entries;
                        self.resource(report, line, None, r);
                    }
                }
                Ok(Obj(None)) => {
                    return Err(format(
                        None,
                        "expected a FHIR Bundle or resource (a JSON object)".into(),
                    ));
                }
                Err(e) => {
                    return Err(format(
                        Some(e.line() as u64),
                        format!("not JSON: {}", json_message(&e)),
                    ));
                }
            }
        }
        if documents == 0 {
            return Err(format(
                None,
                "empty file; expected a FHIR Bundle or resource".into(),
            ));
        }
        self.end_file(report);
        Ok(())
    }
}

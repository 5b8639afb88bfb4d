//! From resources to timeline rows: the patient, the day and the concepts of each
//! resource type (see the table in the module above), and the references that are
//! resolved once every file is read (encounters, Medications).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use silo_common::ehr::{Modality, TimelineBuilder};

use super::super::ehr::{EhrLoad, FileReport};
use super::resource::{
    CodeableConcept, Obj, Period, Resource, decode_base64, first_day, reference_key, system_label,
};
use super::tagger::{Dictionary, Mention, Scratch};

/// Concepts of one resource before they are interned.
enum Codes<'a> {
    /// Codings: (system label, code).
    Coded(Vec<(&'a str, &'a str)>),
    /// Codings held (from a Medication, or for a pending resource).
    Owned(Vec<(String, String)>),
    /// Dictionary concepts tagged in note text.
    Tagged(Vec<u32>),
}

/// Concepts of a resource held until references are resolved.
enum PendingCodes {
    /// Known already.
    Ready(Codes<'static>),
    /// A `medicationReference` whose Medication was not seen yet.
    Medication { reference: String, why: String },
}

/// A resource that needs an encounter's date or a Medication's codes from elsewhere.
struct Pending {
    report: usize,
    line: u64,
    label: String,
    patient: u32,
    /// Its own day, or why it has none (and the encounter to ask).
    day: Result<i32, (String, String)>,
    codes: PendingCodes,
}

/// The state of one load: the builder, the reports, and what references resolve to.
pub(super) struct Loader<'d> {
    dictionary: Option<&'d Dictionary>,
    /// Dictionary concept → builder concept, interned on first use.
    note_concepts: Vec<Option<u32>>,
    builder: TimelineBuilder,
    pub(super) reports: Vec<FileReport>,
    /// Patient `fullUrl` (as a reference key) → Patient id.
    patient_urls: HashMap<String, String>,
    /// Encounter reference key → day of `period.start`.
    encounters: HashMap<String, i32>,
    /// Medication reference key → codings.
    medications: HashMap<String, Vec<(String, String)>>,
    pending: Vec<Pending>,
    scratch: Scratch,
    mentions: Vec<Mention>,
    /// Bundle entries read in the current `.json` file (their "line" numbers).
    pub(super) entries: u64,
    /// Resource types not read, in the current file.
    ignored: BTreeMap<String, u64>,
    /// Negated mentions dropped in the current file.
    negated: u64,
}

impl<'d> Loader<'d> {
    pub(super) fn new(dictionary: Option<&'d Dictionary>, reports: Vec<FileReport>) -> Self {
        Loader {
            dictionary,
            note_concepts: vec![None; dictionary.map_or(0, Dictionary::concepts)],
            builder: TimelineBuilder::new(),
            reports,
            patient_urls: HashMap::new(),
            encounters: HashMap::new(),
            medications: HashMap::new(),
            pending: Vec::new(),
            scratch: Scratch::default(),
            mentions: Vec::new(),
            entries: 0,
            ignored: BTreeMap::new(),
            negated: 0,
        }
    }

    pub(super) fn start_file(&mut self, path: &Path) -> usize {
        self.reports.push(FileReport::new(path));
        self.entries = 0;
        self.ignored.clear();
        self.negated = 0;
        self.reports.len() - 1
    }

    pub(super) fn end_file(&mut self, report: usize) {
        let path = self.reports[report].path.display();
        if !self.ignored.is_empty() {
            let kinds: Vec<String> = self
                .ignored
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            tracing::debug!("{path}: resources not read: {}", kinds.join(", "));
        }
        if self.negated > 0 {
            tracing::debug!("{path}: {} negated note mention(s) dropped", self.negated);
        }
    }

    /// Reads a Bundle's entries; their "line" is `ndjson_line` for a Bundle on an NDJSON
    /// line, else their entry number in the file.
    pub(super) fn bundle(&mut self, report: usize, ndjson_line: Option<u64>, bundle: Resource) {
        // Patients first, so `urn:uuid:` subjects resolve whatever the entry order.
        for e in &bundle.entry.0 {
            if let (Some(url), Some(r)) = (e.full_url.get(), e.resource.get())
                && r.resource_type.get() == Some("Patient")
                && let Some(id) = r.id.get()
            {
                self.patient_urls
                    .insert(reference_key(url).to_string(), id.to_string());
            }
        }
        for e in bundle.entry.0 {
            let line = match ndjson_line {
                Some(l) => l,
                None => {
                    self.entries += 1;
                    self.entries
                }
            };
            let url = e.full_url.get().map(str::to_string);
            match e.resource.0 {
                Some(r) => self.resource(report, line, url.as_deref(), r),
                None => {
                    self.reports[report].rows += 1;
                    self.reports[report].skip(line, "Bundle entry without a resource");
                }
            }
        }
    }

    /// Reads one resource (one row, or a Bundle's entries).
    pub(super) fn resource(
        &mut self,
        report: usize,
        line: u64,
        full_url: Option<&str>,
        r: Resource,
    ) {
        if r.resource_type.get() == Some("Bundle") {
            self.bundle(report, Some(line), r);
            return;
        }
        let kind = r.resource_type.get().unwrap_or_default();
        self.reports[report].rows += 1;
        match kind {
            "Patient" => self.patient(report, line, full_url, &r),
            "Encounter" => self.encounter(report, line, full_url, &r),
            "Medication" => {
                let codes: Vec<(String, String)> = codings(&r.code)
                    .into_iter()
                    .map(|(s, c)| (s.to_string(), c.to_string()))
                    .collect();
                for key in keys("Medication", &r, full_url) {
                    self.medications.insert(key, codes.clone());
                }
            }
            "Condition"
            | "MedicationRequest"
            | "MedicationStatement"
            | "Observation"
            | "Procedure"
            | "DocumentReference" => self.clinical(report, line, kind, &r),
            "" => self.reports[report].skip(line, "no resourceType"),
            _ => match self.ignored.get_mut(kind) {
                Some(n) => *n += 1,
                None => {
                    self.ignored.insert(kind.to_string(), 1);
                }
            },
        }
    }

    fn patient(&mut self, report: usize, line: u64, full_url: Option<&str>, r: &Resource) {
        let Some(id) = r.id.get() else {
            self.reports[report].skip(line, "Patient without id");
            return;
        };
        self.builder.patient(id);
        if let Some(url) = full_url {
            self.patient_urls
                .insert(reference_key(url).to_string(), id.to_string());
        }
        self.reports[report].used += 1;
    }

    fn encounter(&mut self, report: usize, line: u64, full_url: Option<&str>, r: &Resource) {
        let day = first_day(&[("period.start", r.period.get().and_then(|p| p.start.get()))]);
        if let Ok(d) = day {
            for key in keys("Encounter", r, full_url) {
                self.encounters.insert(key, d);
            }
        }
        let codes: Vec<(&str, &str)> = r.reason_code.0.iter().flat_map(coding_pairs).collect();
        if codes.is_empty() {
            // Only a date for the resources that reference it: neither used nor skipped.
            return;
        }
        let label = r.label();
        let result = self.subject(r).and_then(|p| day.map(|d| (p, d)));
        match result {
            Ok((patient, day)) => {
                self.emit(patient, day, &Codes::Coded(codes));
                self.reports[report].used += 1;
            }
            Err(why) => self.reports[report].skip(line, format!("{label}: {why}")),
        }
    }

    /// Condition, MedicationRequest/-Statement, Observation, Procedure, DocumentReference.
    fn clinical(&mut self, report: usize, line: u64, kind: &str, r: &Resource) {
        let skip = |loader: &mut Self, why: String| {
            loader.reports[report].skip(line, format!("{}: {why}", r.label()));
        };
        if kind == "DocumentReference" && self.dictionary.is_none() {
            skip(self, "no dictionary configured to tag note text".into());
            return;
        }
        let patient = match self.subject(r) {
            Ok(p) => p,
            Err(why) => return skip(self, why),
        };
        let encounter = r.encounter.get().and_then(|e| e.reference.get());
        let (dates, encounter): (Vec<(&str, Option<&str>)>, Option<&str>) = match kind {
            "Condition" => (
                vec![
                    ("onsetDateTime", r.onset_date_time.get()),
                    ("onsetPeriod.start", start(&r.onset_period)),
                    ("recordedDate", r.recorded_date.get()),
                ],
                encounter,
            ),
            "MedicationRequest" => (vec![("authoredOn", r.authored_on.get())], encounter),
            "MedicationStatement" => (
                vec![
                    ("effectiveDateTime", r.effective_date_time.get()),
                    ("effectivePeriod.start", start(&r.effective_period)),
                    ("dateAsserted", r.date_asserted.get()),
                ],
                r.context
                    .get()
                    .and_then(|c| c.reference.get())
                    .or(encounter),
            ),
            "Observation" => (
                vec![
                    ("effectiveDateTime", r.effective_date_time.get()),
                    ("effectivePeriod.start", start(&r.effective_period)),
                    ("effectiveInstant", r.effective_instant.get()),
                    ("issued", r.issued.get()),
                ],
                encounter,
            ),
            "Procedure" => (
                vec![
                    ("performedDateTime", r.performed_date_time.get()),
                    ("performedPeriod.start", start(&r.performed_period)),
                ],
                encounter,
            ),
            _ => (
                vec![
                    ("date", r.date.get()),
                    (
                        "context.period.start",
                        r.context.get().and_then(|c| start(&c.period)),
                    ),
                ],
                r.context
                    .get()
                    .and_then(|c| c.encounter.0.first())
                    .and_then(|e| e.reference.get()),
            ),
        };
        let day = first_day(&dates);
        let codes: Result<Codes, (String, Option<&str>)> = match kind {
            "DocumentReference" => self.note(r).map(Codes::Tagged).map_err(|why| (why, None)),
            "MedicationRequest" | "MedicationStatement" => {
                let c = codings(&r.medication_codeable_concept);
                if c.is_empty() {
                    let reference = r.medication_reference.get().and_then(|m| m.reference.get());
                    Err((
                        "no medicationCodeableConcept.coding with a system and a code".into(),
                        reference,
                    ))
                } else {
                    Ok(Codes::Coded(c))
                }
            }
            _ => {
                let c = codings(&r.code);
                if c.is_empty() {
                    Err(("no code.coding with a system and a code".into(), None))
                } else {
                    Ok(Codes::Coded(c))
                }
            }
        };
        // The medication may already be known (Medication entries usually come first).
        let codes = match codes {
            Err((why, Some(reference))) => {
                match lookup(&self.medications, reference, "Medication") {
                    Some(c) if !c.is_empty() => Ok(Codes::Owned(c.clone())),
                    _ => Err((why, Some(reference))),
                }
            }
            other => other,
        };
        let day = match (day, encounter) {
            (Ok(d), _) => Ok(d),
            (Err(why), Some(e)) => match lookup(&self.encounters, e, "Encounter") {
                Some(&d) => Ok(d),
                None => Err((why, Some(e))),
            },
            (Err(why), None) => Err((why, None)),
        };
        let (day, codes) = match (day, codes) {
            (Ok(d), Ok(codes)) => {
                self.emit(patient, d, &codes);
                self.reports[report].used += 1;
                return;
            }
            (Err((why, None)), _) | (_, Err((why, None))) => return skip(self, why),
            // An encounter or a Medication to resolve once every file is read.
            other => other,
        };
        let day = day.map_err(|(why, e)| (why, e.unwrap_or_default().to_string()));
        let codes = match codes {
            Ok(Codes::Coded(c)) => PendingCodes::Ready(Codes::Owned(
                c.into_iter()
                    .map(|(s, c)| (s.to_string(), c.to_string()))
                    .collect(),
            )),
            Ok(Codes::Owned(c)) => PendingCodes::Ready(Codes::Owned(c)),
            Ok(Codes::Tagged(t)) => PendingCodes::Ready(Codes::Tagged(t)),
            Err((why, reference)) => PendingCodes::Medication {
                reference: reference.unwrap_or_default().to_string(),
                why,
            },
        };
        self.pending.push(Pending {
            report,
            line,
            label: r.label(),
            patient,
            day,
            codes,
        });
    }

    /// The patient of `subject` (or `patient`), interned.
    fn subject(&mut self, r: &Resource) -> Result<u32, String> {
        let Some(reference) = r.subject.get().or(r.patient.get()) else {
            return Err("no subject".into());
        };
        let Some(text) = reference.reference.get() else {
            return Err("no subject.reference".into());
        };
        let key = reference_key(text);
        let id = if let Some(id) = key.strip_prefix("Patient/") {
            id
        } else if key.starts_with("urn:") {
            match self.patient_urls.get(key) {
                Some(id) => id.as_str(),
                None => key.strip_prefix("urn:uuid:").unwrap_or(key),
            }
        } else if let Some((kind, _)) = key.split_once('/') {
            return Err(format!("subject {text} is a {kind}, not a Patient"));
        } else {
            return Err(format!(
                "subject reference {text:?} is not Patient/<id> or urn:uuid:<id>"
            ));
        };
        if id.is_empty() {
            return Err(format!("subject reference {text:?} has no id"));
        }
        Ok(self.builder.patient(id))
    }

    /// The dictionary concepts mentioned, not negated, in a DocumentReference's text.
    fn note(&mut self, r: &Resource) -> Result<Vec<u32>, String> {
        let Some(dictionary) = self.dictionary else {
            return Err("no dictionary configured to tag note text".into());
        };
        let mut texts = 0;
        let mut negated = 0;
        let mut concepts = Vec::new();
        let mut tag = |loader: &mut Self, text: &str| {
            dictionary.tag_into(text, &mut loader.scratch, &mut loader.mentions);
            for m in &loader.mentions {
                if m.negated {
                    negated += 1;
                } else {
                    concepts.extend_from_slice(&m.concepts);
                }
            }
        };
        for content in &r.content.0 {
            let Some(attachment) = content.attachment.get() else {
                continue;
            };
            let textual = attachment
                .content_type
                .get()
                .is_none_or(|t| t.to_ascii_lowercase().starts_with("text/"));
            let Some(data) = attachment.data.get().filter(|_| textual) else {
                continue;
            };
            let Some(bytes) = decode_base64(data) else {
                return Err("attachment data is not base64".into());
            };
            texts += 1;
            tag(self, &String::from_utf8_lossy(&bytes));
        }
        if let Some(description) = r.description.get() {
            texts += 1;
            tag(self, description);
        }
        self.negated += negated;
        if texts == 0 {
            return Err("no note text (text/* attachment data or description)".into());
        }
        concepts.sort_unstable();
        concepts.dedup();
        if concepts.is_empty() {
            let dropped = if negated > 0 {
                format!(" ({negated} negated mention(s) dropped)")
            } else {
                String::new()
            };
            return Err(format!("no dictionary term in the note text{dropped}"));
        }
        Ok(concepts)
    }

    /// Records the concepts of one resource on `day`.
    fn emit(&mut self, patient: u32, day: i32, codes: &Codes) {
        match codes {
            Codes::Coded(pairs) => {
                for &(system, code) in pairs {
                    let c = self.builder.concept(system, code, Modality::Code);
                    self.builder.push(patient, day, c);
                }
            }
            Codes::Owned(pairs) => {
                for (system, code) in pairs {
                    let c = self.builder.concept(system, code, Modality::Code);
                    self.builder.push(patient, day, c);
                }
            }
            Codes::Tagged(ids) => {
                for &i in ids {
                    let c = self.note_concept(i);
                    self.builder.push(patient, day, c);
                }
            }
        }
    }

    /// The builder's concept for dictionary concept `i`.
    fn note_concept(&mut self, i: u32) -> u32 {
        if let Some(c) = self.note_concepts[i as usize] {
            return c;
        }
        let dictionary = self
            .dictionary
            .expect("tagged concepts come from the dictionary");
        let (system, code) = dictionary.concept(i);
        let c = self.builder.concept(system, code, Modality::Note);
        self.note_concepts[i as usize] = Some(c);
        c
    }

    /// Resolves the pending resources and returns the load.
    pub(super) fn finish(mut self) -> EhrLoad {
        for p in std::mem::take(&mut self.pending) {
            let day = match p.day {
                Ok(d) => Ok(d),
                Err((why, encounter)) => match lookup(&self.encounters, &encounter, "Encounter") {
                    Some(&d) => Ok(d),
                    None => Err(format!(
                        "{why}, and its encounter {encounter} is not in the dataset or has no period.start"
                    )),
                },
            };
            let codes = match p.codes {
                PendingCodes::Ready(c) => Ok(c),
                PendingCodes::Medication { reference, why } => {
                    match lookup(&self.medications, &reference, "Medication") {
                        Some(c) if !c.is_empty() => Ok(Codes::Owned(c.clone())),
                        _ => Err(format!(
                            "{why}, and its medicationReference {reference} is not a Medication in the dataset with a coding"
                        )),
                    }
                }
            };
            match (day, codes) {
                (Ok(day), Ok(codes)) => {
                    self.emit(p.patient, day, &codes);
                    self.reports[p.report].used += 1;
                }
                (Err(why), _) | (_, Err(why)) => {
                    self.reports[p.report].skip(p.line, format!("{}: {why}", p.label));
                }
            }
        }
        EhrLoad {
            timelines: self.builder.finish(),
            files: self.reports,
        }
    }
}

/// The keys a resource of `kind` is referenced by: `Kind/id` and its `fullUrl`.
fn keys(kind: &str, r: &Resource, full_url: Option<&str>) -> Vec<String> {
    let mut keys = Vec::with_capacity(2);
    if let Some(id) = r.id.get() {
        keys.push(format!("{kind}/{id}"));
    }
    if let Some(url) = full_url {
        let key = reference_key(url);
        if !keys.iter().any(|k| k == key) {
            keys.push(key.to_string());
        }
    }
    keys
}

/// The value a reference points at: by its key, or a `urn:uuid:x` as `Kind/x`.
fn lookup<'m, V>(map: &'m HashMap<String, V>, reference: &str, kind: &str) -> Option<&'m V> {
    let key = reference_key(reference);
    if let Some(v) = map.get(key) {
        return Some(v);
    }
    let uuid = key.strip_prefix("urn:uuid:")?;
    map.get(&format!("{kind}/{uuid}"))
}

/// The start of a Period.
fn start(period: &Obj<Period>) -> Option<&str> {
    period.get().and_then(|p| p.start.get())
}

/// The usable codings of a CodeableConcept: (system label, code).
fn codings(concept: &Obj<CodeableConcept>) -> Vec<(&str, &str)> {
    concept
        .get()
        .map(coding_pairs)
        .into_iter()
        .flatten()
        .collect()
}

fn coding_pairs(concept: &CodeableConcept) -> impl Iterator<Item = (&str, &str)> {
    concept
        .coding
        .0
        .iter()
        .filter_map(|c| Some((system_label(c.system.get()?), c.code.get()?)))
}

//! OMOP-CDM folders: a site's CDM tables as CSV (or tab-separated) files, read into
//! patient timelines (DESIGN §4.2).
//!
//! The folder holds one file per table, named after the table in any case
//! (`condition_occurrence.csv`, `CONDITION_OCCURRENCE.csv`, `measurement.tsv`); other
//! files are ignored. Columns are matched case-insensitively. Rows come from
//! `condition_occurrence`, `drug_exposure`, `measurement`, `procedure_occurrence` (codes)
//! and `note_nlp` (note concepts); at least one of them must be there. `note_nlp` rows
//! carry `person_id` and `note_date` themselves or are joined to `note` on `note_id`;
//! rows that OMOP marks as not asserted (`term_exists = N`, or `negated=true` in
//! `term_modifiers`) are skipped. `person` is read for its row count only.
//!
//! A concept is keyed `(vocabulary_id, concept_code)` through the optional `concept`
//! table, or `("OMOP", concept_id)` when that table is absent or lacks the id. A row
//! whose concept id is 0 (OMOP's "no matching concept") falls back to its source concept
//! id, then to its source value under the system `<TABLE>_SOURCE` (`CONDITION_SOURCE`,
//! `E11.9`); a row with neither is skipped as unmapped.
//!
//! # Memory and speed
//! Tables are streamed through one reused [`csv::ByteRecord`]; nothing is allocated per
//! row. Concepts are interned while the event tables are read under a provisional key
//! and named once at the end, so that of a vocabulary table (Athena's `CONCEPT.csv` has
//! millions of rows) only the concepts the site actually uses are kept. The `note` join
//! holds 16 bytes per note. Patients and dates are looked up through a one-entry cache
//! first, which hits on every row but the first of a run in exports grouped by person.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use silo_common::ehr::{ConceptKey, Modality, TimelineBuilder, Timelines, parse_day};

use super::ehr::{EhrError, EhrLoad, FileReport};

/// The one privacy unit OMOP tables know: every clinical row names its `person_id`.
pub const PRIVACY_UNIT: &str = "person_id";

/// The system of concepts keyed by bare OMOP concept id (no `concept` row names them).
pub const OMOP_SYSTEM: &str = "OMOP";

/// An OMOP table whose rows are dated concepts of a person.
struct EventTable {
    /// Table (and file stem) name.
    name: &'static str,
    /// The concept id column (required).
    concept: &'static str,
    /// The source concept id column (optional), used when the concept id is 0.
    source_concept: &'static str,
    /// The date column, and the date-time column used when the date is absent.
    date: [&'static str; 2],
    /// The source value column (optional), used when both concept ids are 0.
    source_value: Option<&'static str>,
    /// The system of concepts named by their source value.
    source_system: &'static str,
    /// Codes, or note concepts.
    modality: Modality,
}

/// The event tables, in the order they are read (which decides the modality of a concept
/// found both in a structured table and in notes: the first, a code).
const EVENT_TABLES: [EventTable; 5] = [
    EventTable {
        name: "condition_occurrence",
        concept: "condition_concept_id",
        source_concept: "condition_source_concept_id",
        date: ["condition_start_date", "condition_start_datetime"],
        source_value: Some("condition_source_value"),
        source_system: "CONDITION_SOURCE",
        modality: Modality::Code,
    },
    EventTable {
        name: "drug_exposure",
        concept: "drug_concept_id",
        source_concept: "drug_source_concept_id",
        date: ["drug_exposure_start_date", "drug_exposure_start_datetime"],
        source_value: Some("drug_source_value"),
        source_system: "DRUG_SOURCE",
        modality: Modality::Code,
    },
    EventTable {
        name: "measurement",
        concept: "measurement_concept_id",
        source_concept: "measurement_source_concept_id",
        date: ["measurement_date", "measurement_datetime"],
        source_value: Some("measurement_source_value"),
        source_system: "MEASUREMENT_SOURCE",
        modality: Modality::Code,
    },
    EventTable {
        name: "procedure_occurrence",
        concept: "procedure_concept_id",
        source_concept: "procedure_source_concept_id",
        date: ["procedure_date", "procedure_datetime"],
        source_value: Some("procedure_source_value"),
        source_system: "PROCEDURE_SOURCE",
        modality: Modality::Code,
    },
    EventTable {
        name: "note_nlp",
        concept: "note_nlp_concept_id",
        source_concept: "note_nlp_source_concept_id",
        date: ["note_date", "note_datetime"],
        source_value: None,
        source_system: "NOTE_NLP_SOURCE",
        modality: Modality::Note,
    },
];

/// Index of `note_nlp` in [`EVENT_TABLES`].
const NOTE_NLP: usize = 4;

/// Reads the OMOP folder `path`; `privacy_unit` must be `person_id`.
pub fn load(path: &Path, privacy_unit: &str) -> Result<EhrLoad, EhrError> {
    if !privacy_unit.trim().eq_ignore_ascii_case(PRIVACY_UNIT) {
        return Err(format_error(
            path,
            None,
            format!(
                "privacy_unit {privacy_unit:?}: OMOP tables identify individuals by \
                 person_id; set privacy_unit = \"person_id\""
            ),
        ));
    }
    let files = list_tables(path)?;
    if !EVENT_TABLES.iter().any(|t| files.contains_key(t.name)) {
        let mut found: Vec<String> = files_in(path)?;
        found.sort();
        let more = found.len().saturating_sub(20);
        found.truncate(20);
        if more > 0 {
            found.push(format!("and {more} more"));
        }
        return Err(format_error(
            path,
            None,
            format!(
                "no OMOP event table: expected at least one of {} (.csv or .tsv, any case); \
                 the folder has: {}",
                EVENT_TABLES.map(|t| t.name).join(", "),
                if found.is_empty() {
                    "nothing".to_string()
                } else {
                    found.join(", ")
                }
            ),
        ));
    }
    let mut loader = Loader::default();
    for (t, spec) in EVENT_TABLES.iter().enumerate() {
        if let Some(file) = files.get(spec.name) {
            loader.read_events(t, file, files.get("note").map(PathBuf::as_path))?;
        }
    }
    if let Some(file) = files.get("person") {
        loader.read_persons(file)?;
    }
    let names = match files.get("concept") {
        Some(file) => loader.read_concepts(file)?,
        None => IdMap::default(),
    };
    let Loader {
        builder,
        pending,
        files,
        ..
    } = loader;
    let mut timelines = builder.finish();
    let keys = pending
        .iter()
        .map(|p| p.resolve(&names))
        .collect::<Vec<_>>();
    rename(&mut timelines, keys);
    Ok(EhrLoad { timelines, files })
}

fn format_error(path: &Path, line: Option<u64>, message: String) -> EhrError {
    EhrError::Format {
        path: path.to_path_buf(),
        line,
        message,
    }
}

fn io_error(path: &Path, source: std::io::Error) -> EhrError {
    EhrError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The file names in `folder`.
fn files_in(folder: &Path) -> Result<Vec<String>, EhrError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(|e| io_error(folder, e))? {
        let entry = entry.map_err(|e| io_error(folder, e))?;
        out.push(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(out)
}

/// The folder's `.csv`/`.tsv` files by lower-case stem; two files for one table are an
/// error (which one is the export?).
fn list_tables(folder: &Path) -> Result<HashMap<String, PathBuf>, EhrError> {
    let mut tables: HashMap<String, PathBuf> = HashMap::new();
    for name in files_in(folder)? {
        let lower = name.to_ascii_lowercase();
        let Some(stem) = lower
            .strip_suffix(".csv")
            .or_else(|| lower.strip_suffix(".tsv"))
        else {
            continue;
        };
        let path = folder.join(&name);
        if !path.is_file() {
            continue;
        }
        if let Some(other) = tables.get(stem) {
            return Err(format_error(
                folder,
                None,
                format!(
                    "two files for table {stem}: {} and {name}; keep one",
                    other.file_name().unwrap_or_default().to_string_lossy()
                ),
            ));
        }
        tables.insert(stem.to_string(), path);
    }
    Ok(tables)
}

/// One table file opened for streaming, with its header.
struct Table {
    path: PathBuf,
    reader: csv::Reader<File>,
    /// The header as written (for messages).
    header: Vec<String>,
    /// The header, trimmed and lower-cased (for lookups).
    lower: Vec<String>,
}

impl Table {
    /// Opens `path`: tab-separated when the header line has a tab (or, for a one-column
    /// header, when the file is `.tsv`), comma-separated otherwise. Tab-separated files
    /// are read without quoting, as Athena writes its vocabulary files (concept names
    /// hold bare `"` characters).
    fn open(path: &Path) -> Result<Table, EhrError> {
        let mut file = File::open(path).map_err(|e| io_error(path, e))?;
        let mut head = vec![0; 64 * 1024];
        let mut n = 0;
        while n < head.len() {
            match file.read(&mut head[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(path, e)),
            }
            if head[..n].contains(&b'\n') {
                break;
            }
        }
        let first = head[..n].split(|&b| b == b'\n').next().unwrap_or_default();
        let tsv = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
        let tab = first.contains(&b'\t') || (tsv && !first.contains(&b','));
        file.seek(SeekFrom::Start(0))
            .map_err(|e| io_error(path, e))?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .delimiter(if tab { b'\t' } else { b',' })
            .quoting(!tab)
            .buffer_capacity(256 * 1024)
            .from_reader(file);
        let raw = reader
            .byte_headers()
            .map_err(|e| csv_error(path, e))?
            .clone();
        if raw.is_empty() || (raw.len() == 1 && raw[0].trim_ascii().is_empty()) {
            return Err(format_error(
                path,
                None,
                "empty file; expected a header row naming the columns".into(),
            ));
        }
        let header: Vec<String> = raw
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let h = if i == 0 {
                    h.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(h)
                } else {
                    h
                };
                String::from_utf8_lossy(h).trim().to_string()
            })
            .collect();
        let lower = header.iter().map(|h| h.to_ascii_lowercase()).collect();
        Ok(Table {
            path: path.to_path_buf(),
            reader,
            header,
            lower,
        })
    }

    /// The index of column `name` (lower case), if the header has it.
    fn column(&self, name: &str) -> Option<usize> {
        self.lower.iter().position(|h| h == name)
    }

    /// The index of column `name`, or an error naming the file, the column, its `role`
    /// and the header found.
    fn require(&self, name: &str, role: &str) -> Result<usize, EhrError> {
        self.column(name)
            .ok_or_else(|| self.missing(&format!("{name:?}"), role))
    }

    fn missing(&self, what: &str, role: &str) -> EhrError {
        format_error(
            &self.path,
            None,
            format!(
                "no column {what} ({role}); the header has: {}",
                self.header.join(", ")
            ),
        )
    }

    /// Reads the next row into `record`; `false` at the end of the file.
    fn next(&mut self, record: &mut csv::ByteRecord) -> Result<bool, EhrError> {
        self.reader
            .read_byte_record(record)
            .map_err(|e| csv_error(&self.path, e))
    }

    /// Checks a row's width against the header: a ragged row's cells cannot be trusted
    /// to be in their columns.
    fn ragged(&self, record: &csv::ByteRecord) -> Option<String> {
        (record.len() != self.header.len()).then(|| {
            format!(
                "ragged row: {} field(s), the header has {}",
                record.len(),
                self.header.len()
            )
        })
    }
}

fn csv_error(path: &Path, e: csv::Error) -> EhrError {
    let line = e.position().map(|p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(source) => io_error(path, source),
        other => format_error(path, line, format!("not valid CSV: {other:?}")),
    }
}

/// The line of the row just read.
fn line_of(record: &csv::ByteRecord, rows: u64) -> u64 {
    record.position().map_or(rows + 1, |p| p.line())
}

/// A multiply-xorshift hasher for integer keys (concept and note ids). The ids are the
/// site's own data, so the flooding resistance of the default hasher buys nothing, and
/// the hot loop looks one up per row.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // splitmix64's finalizer: every input bit reaches the low (bucket) and high
        // (tag) bits, so ids that share a stride do not collide.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(23) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type IdMap<V> = HashMap<i64, V, BuildHasherDefault<IdHasher>>;
type IdSet = HashSet<i64, BuildHasherDefault<IdHasher>>;
/// Source value → builder concept.
type ByValue = HashMap<Box<[u8]>, u32>;

/// A concept as first met in an event table, named once the `concept` table is read.
#[derive(Debug)]
enum Pending {
    /// A (standard) concept id.
    Id(i64),
    /// A row whose concept id was 0: its source concept id (0 when none) and value.
    Source {
        table: usize,
        id: i64,
        value: Box<str>,
    },
}

impl Pending {
    /// The concept's key given the `concept` table's names of the ids used.
    fn resolve(&self, names: &IdMap<ConceptKey>) -> ConceptKey {
        match self {
            Pending::Id(id) => names
                .get(id)
                .cloned()
                .unwrap_or_else(|| (OMOP_SYSTEM.into(), id.to_string())),
            Pending::Source { table, id, value } => {
                if let Some(key) = names.get(id).filter(|_| *id != 0) {
                    key.clone()
                } else if !value.is_empty() {
                    (EVENT_TABLES[*table].source_system.into(), value.to_string())
                } else {
                    (OMOP_SYSTEM.into(), id.to_string())
                }
            }
        }
    }

    fn id(&self) -> Option<i64> {
        match self {
            Pending::Id(id) => Some(*id),
            Pending::Source { id, .. } => (*id != 0).then_some(*id),
        }
    }
}

/// Where a row's person and date come from.
enum Subject {
    /// Columns of the row itself.
    Columns {
        person: usize,
        date: Option<usize>,
        datetime: Option<usize>,
    },
    /// `note_nlp` rows without them: the note's, joined on `note_id`.
    Note { note_id: usize, notes: NoteIndex },
}

/// `note_id` → (patient, day), sorted by id; 16 bytes per note.
struct NoteIndex(Vec<(i64, u32, i32)>);

impl NoteIndex {
    fn get(&self, id: i64) -> Option<(u32, i32)> {
        self.0
            .binary_search_by_key(&id, |n| n.0)
            .ok()
            .map(|i| (self.0[i].1, self.0[i].2))
    }
}

/// The state of one load: the builder, the concepts met so far, the file reports and
/// the per-row caches.
#[derive(Default)]
struct Loader {
    builder: TimelineBuilder,
    /// What each of the builder's concepts stands for, by builder index.
    pending: Vec<Pending>,
    /// Concept id → builder concept.
    by_id: IdMap<u32>,
    /// (table, source concept id) → source value → builder concept.
    by_source: HashMap<(usize, i64), ByValue>,
    files: Vec<FileReport>,
    /// The previous row's person cell and its patient index.
    last_person: Vec<u8>,
    last_patient: Option<u32>,
    /// The previous date cell and its day.
    last_date: Vec<u8>,
    last_day: Option<i32>,
}

impl Loader {
    /// The patient of a person cell (trimmed, non-empty, UTF-8).
    fn patient(&mut self, cell: &[u8]) -> Result<u32, &'static str> {
        if let Some(p) = self.last_patient
            && self.last_person == cell
        {
            return Ok(p);
        }
        let text = std::str::from_utf8(cell).map_err(|_| "person_id is not UTF-8")?;
        let p = self.builder.patient(text);
        self.last_person.clear();
        self.last_person.extend_from_slice(cell);
        self.last_patient = Some(p);
        Ok(p)
    }

    /// The day of a (non-null) date cell, or `None` when it is not a date.
    fn day(&mut self, cell: &[u8]) -> Option<i32> {
        if self.last_date == cell
            && let Some(d) = self.last_day
        {
            return Some(d);
        }
        let day = parse_date(cell)?;
        self.last_date.clear();
        self.last_date.extend_from_slice(cell);
        self.last_day = Some(day);
        Some(day)
    }

    /// The builder concept of a concept id.
    fn concept_by_id(&mut self, id: i64, modality: Modality) -> u32 {
        if let Some(&c) = self.by_id.get(&id) {
            return c;
        }
        let c = self.intern(Pending::Id(id), modality);
        self.by_id.insert(id, c);
        c
    }

    /// The builder concept of an unmapped row, by its source concept id and value.
    fn concept_by_source(&mut self, table: usize, id: i64, value: &[u8]) -> Result<u32, String> {
        if let Some(&c) = self.by_source.get(&(table, id)).and_then(|m| m.get(value)) {
            return Ok(c);
        }
        let text = std::str::from_utf8(value).map_err(|_| "source value is not UTF-8")?;
        let pending = Pending::Source {
            table,
            id,
            value: text.into(),
        };
        let c = self.intern(pending, EVENT_TABLES[table].modality);
        self.by_source
            .entry((table, id))
            .or_default()
            .insert(value.into(), c);
        Ok(c)
    }

    /// Adds a concept to the builder under a provisional key unique to it.
    fn intern(&mut self, pending: Pending, modality: Modality) -> u32 {
        let n = self.pending.len();
        let c = self.builder.concept("\0pending", &n.to_string(), modality);
        debug_assert_eq!(c as usize, n, "the loader is the builder's only user");
        self.pending.push(pending);
        c
    }

    /// Reads one event table (and `note`, when `note_nlp` must be joined to it).
    fn read_events(&mut self, t: usize, path: &Path, note: Option<&Path>) -> Result<(), EhrError> {
        let spec = &EVENT_TABLES[t];
        let mut table = Table::open(path)?;
        let concept = table.require(spec.concept, "the concept id")?;
        let source_concept = table.column(spec.source_concept);
        let source_value = spec.source_value.and_then(|c| table.column(c));
        let (term_exists, term_modifiers) = if t == NOTE_NLP {
            (table.column("term_exists"), table.column("term_modifiers"))
        } else {
            (None, None)
        };
        let person = table.column("person_id");
        let (date, datetime) = (table.column(spec.date[0]), table.column(spec.date[1]));
        let has_date = date.is_some() || datetime.is_some();
        let date_columns = format!("{:?} or {:?}", spec.date[0], spec.date[1]);
        let subject = match (person, has_date) {
            (Some(person), true) => Subject::Columns {
                person,
                date,
                datetime,
            },
            _ if t == NOTE_NLP && table.column("note_id").is_some() => {
                let Some(note) = note else {
                    return Err(format_error(
                        path,
                        None,
                        "no person_id and note_date columns, and no note.csv to join on \
                         note_id; give note_nlp both columns or add the note table"
                            .into(),
                    ));
                };
                Subject::Note {
                    note_id: table.require("note_id", "the note")?,
                    notes: self.read_notes(note)?,
                }
            }
            (None, _) => return Err(table.missing("\"person_id\"", "the privacy unit")),
            (Some(_), false) => return Err(table.missing(&date_columns, "the event date")),
        };
        let mut report = FileReport::new(path);
        let mut record = csv::ByteRecord::new();
        let (mut last_note, mut last_note_subject) = (None, None);
        while table.next(&mut record)? {
            report.rows += 1;
            let line = line_of(&record, report.rows);
            if let Some(reason) = table.ragged(&record) {
                report.skip(line, reason);
                continue;
            }
            if let Some(reason) = not_asserted(&record, term_exists, term_modifiers) {
                report.skip(line, reason);
                continue;
            }
            let (patient, day) = match &subject {
                Subject::Columns {
                    person,
                    date,
                    datetime,
                } => {
                    let Some(who) = person_cell(&record[*person]) else {
                        report.skip(line, "empty person_id");
                        continue;
                    };
                    let cell = date
                        .map(|i| &record[i])
                        .filter(|c| !is_null(c))
                        .or_else(|| datetime.map(|i| &record[i]).filter(|c| !is_null(c)));
                    let Some(cell) = cell else {
                        report.skip(line, format!("no date ({date_columns} empty)"));
                        continue;
                    };
                    let Some(day) = self.day(cell) else {
                        report.skip(line, format!("bad date {:?}", shorten(cell)));
                        continue;
                    };
                    match self.patient(who) {
                        Ok(p) => (p, day),
                        Err(reason) => {
                            report.skip(line, reason);
                            continue;
                        }
                    }
                }
                Subject::Note { note_id, notes } => {
                    let id = match parse_id(&record[*note_id]) {
                        Ok(Some(id)) => id,
                        _ => {
                            let cell = shorten(&record[*note_id]);
                            report.skip(line, format!("bad note_id {cell:?}"));
                            continue;
                        }
                    };
                    if last_note != Some(id) {
                        last_note = Some(id);
                        last_note_subject = notes.get(id);
                    }
                    match last_note_subject {
                        Some(s) => s,
                        None => {
                            report.skip(line, format!("note_id {id} is not in note.csv"));
                            continue;
                        }
                    }
                }
            };
            let concept = match self.row_concept(t, &record, concept, source_concept, source_value)
            {
                Ok(c) => c,
                Err(reason) => {
                    report.skip(line, reason);
                    continue;
                }
            };
            self.builder.push(patient, day, concept);
            report.used += 1;
        }
        self.files.push(report);
        Ok(())
    }

    /// The concept of a row of table `t`: its concept id; when that is 0 or empty, its
    /// source concept id and source value; `Err` (the skip reason) when it has none.
    fn row_concept(
        &mut self,
        t: usize,
        record: &csv::ByteRecord,
        concept: usize,
        source_concept: Option<usize>,
        source_value: Option<usize>,
    ) -> Result<u32, String> {
        let spec = &EVENT_TABLES[t];
        let not_integer =
            |column: &str, cell: &[u8]| format!("{column} is not an integer: {:?}", shorten(cell));
        match parse_id(&record[concept]) {
            Ok(Some(id)) => return Ok(self.concept_by_id(id, spec.modality)),
            Ok(None) => {}
            Err(()) => return Err(not_integer(spec.concept, &record[concept])),
        }
        let id = match source_concept.map(|i| (i, parse_id(&record[i]))) {
            None | Some((_, Ok(None))) => 0,
            Some((_, Ok(Some(id)))) => id,
            Some((i, Err(()))) => return Err(not_integer(spec.source_concept, &record[i])),
        };
        let value = source_value
            .map(|i| record[i].trim_ascii())
            .filter(|v| !is_null(v))
            .unwrap_or_default();
        if id == 0 && value.is_empty() {
            return Err(if spec.source_value.is_some() {
                "unmapped concept (concept_id 0, no source value)".into()
            } else {
                "unmapped concept (concept_id 0, no source concept id)".into()
            });
        }
        self.concept_by_source(t, id, value)
    }

    /// Reads `note` into the index `note_nlp` is joined through.
    fn read_notes(&mut self, path: &Path) -> Result<NoteIndex, EhrError> {
        let mut table = Table::open(path)?;
        let note_id = table.require("note_id", "the note")?;
        let person = table.require(PRIVACY_UNIT, "the privacy unit")?;
        let (date, datetime) = (table.column("note_date"), table.column("note_datetime"));
        if date.is_none() && datetime.is_none() {
            return Err(table.missing("\"note_date\" or \"note_datetime\"", "the note date"));
        }
        let mut report = FileReport::new(path);
        let mut notes = Vec::new();
        let mut record = csv::ByteRecord::new();
        while table.next(&mut record)? {
            report.rows += 1;
            let line = line_of(&record, report.rows);
            if let Some(reason) = table.ragged(&record) {
                report.skip(line, reason);
                continue;
            }
            let id = match parse_id(&record[note_id]) {
                Ok(Some(id)) => id,
                _ => {
                    let cell = shorten(&record[note_id]);
                    report.skip(line, format!("bad note_id {cell:?}"));
                    continue;
                }
            };
            let Some(who) = person_cell(&record[person]) else {
                report.skip(line, "empty person_id");
                continue;
            };
            let cell = date
                .map(|i| &record[i])
                .filter(|c| !is_null(c))
                .or_else(|| datetime.map(|i| &record[i]).filter(|c| !is_null(c)));
            let Some(day) = cell.and_then(|c| self.day(c)) else {
                let shown = cell.map(shorten).unwrap_or_default();
                report.skip(line, format!("bad date {shown:?}"));
                continue;
            };
            let patient = match self.patient(who) {
                Ok(p) => p,
                Err(reason) => {
                    report.skip(line, reason);
                    continue;
                }
            };
            notes.push((id, patient, day));
            report.used += 1;
        }
        if !notes.is_sorted_by_key(|n| n.0) {
            // Stable: a note_id listed twice keeps its first row.
            notes.sort_by_key(|n| n.0);
        }
        notes.dedup_by_key(|n| n.0);
        notes.shrink_to_fit();
        self.files.push(report);
        Ok(NoteIndex(notes))
    }

    /// Reads `person` for its row count (patients without events have no timeline).
    fn read_persons(&mut self, path: &Path) -> Result<(), EhrError> {
        let mut table = Table::open(path)?;
        let person = table.require(PRIVACY_UNIT, "the privacy unit")?;
        let mut report = FileReport::new(path);
        let mut record = csv::ByteRecord::new();
        while table.next(&mut record)? {
            report.rows += 1;
            let line = line_of(&record, report.rows);
            if let Some(reason) = table.ragged(&record) {
                report.skip(line, reason);
            } else if person_cell(&record[person]).is_none() {
                report.skip(line, "empty person_id");
            } else {
                report.used += 1;
            }
        }
        self.files.push(report);
        Ok(())
    }

    /// Reads the names `(vocabulary_id, concept_code)` of the concept ids met in the
    /// event tables; other rows are passed over unparsed.
    fn read_concepts(&mut self, path: &Path) -> Result<IdMap<ConceptKey>, EhrError> {
        let mut table = Table::open(path)?;
        let id_col = table.require("concept_id", "the concept id")?;
        let vocabulary = table.require("vocabulary_id", "the concept's coding system")?;
        let code = table.require("concept_code", "the concept's code")?;
        let needed: IdSet = self.pending.iter().filter_map(Pending::id).collect();
        let mut names = IdMap::default();
        let mut report = FileReport::new(path);
        let mut record = csv::ByteRecord::new();
        while table.next(&mut record)? {
            report.rows += 1;
            if names.len() == needed.len() {
                continue;
            }
            let Some(Ok(Some(id))) = record.get(id_col).map(parse_id) else {
                continue;
            };
            if !needed.contains(&id) || names.contains_key(&id) {
                continue;
            }
            let line = line_of(&record, report.rows);
            if let Some(reason) = table.ragged(&record) {
                report.skip(line, reason);
                continue;
            }
            let (v, c) = (record[vocabulary].trim_ascii(), record[code].trim_ascii());
            let (Ok(v), Ok(c)) = (std::str::from_utf8(v), std::str::from_utf8(c)) else {
                report.skip(line, format!("concept {id}: not UTF-8"));
                continue;
            };
            if v.is_empty() || c.is_empty() {
                report.skip(
                    line,
                    format!("concept {id}: empty vocabulary_id or concept_code"),
                );
                continue;
            }
            names.insert(id, (v.to_string(), c.to_string()));
            report.used += 1;
        }
        self.files.push(report);
        Ok(names)
    }
}

/// Why a `note_nlp` row is not an assertion of its concept, if it is not: OMOP marks
/// negated, hypothetical or other-subject mentions `term_exists = N`, and some NLP
/// pipelines write `negated=true` into `term_modifiers`.
fn not_asserted(
    record: &csv::ByteRecord,
    term_exists: Option<usize>,
    term_modifiers: Option<usize>,
) -> Option<String> {
    if let Some(i) = term_exists {
        let cell = record[i].trim_ascii();
        if ["n", "no", "f", "false", "0"]
            .iter()
            .any(|no| cell.eq_ignore_ascii_case(no.as_bytes()))
        {
            return Some(format!("not asserted (term_exists = {:?})", shorten(cell)));
        }
    }
    if let Some(i) = term_modifiers {
        let cell = &record[i];
        if !cell.is_empty() {
            let squeezed: Vec<u8> = cell
                .iter()
                .filter(|b| !b.is_ascii_whitespace())
                .map(u8::to_ascii_lowercase)
                .collect();
            if squeezed.windows(12).any(|w| w == b"negated=true") {
                return Some(format!("negated (term_modifiers = {:?})", shorten(cell)));
            }
        }
    }
    None
}

/// Null markers of database exports, read as empty cells.
fn is_null(cell: &[u8]) -> bool {
    let c = cell.trim_ascii();
    c.is_empty()
        || c == b"\\N"
        || c.eq_ignore_ascii_case(b"null")
        || c.eq_ignore_ascii_case(b"na")
        || c.eq_ignore_ascii_case(b"none")
}

/// A person cell, trimmed, or `None` when it is empty. `123.0` (an integer id written by
/// a data-frame export as a float) reads as `123`, so tables agree on the person.
fn person_cell(cell: &[u8]) -> Option<&[u8]> {
    let c = cell.trim_ascii();
    if is_null(c) {
        return None;
    }
    Some(strip_zero_fraction(c).unwrap_or(c))
}

/// `123` of `123.0`/`123.00`, when the part before the point is all digits.
fn strip_zero_fraction(c: &[u8]) -> Option<&[u8]> {
    let dot = c.iter().position(|&b| b == b'.')?;
    let (int, frac) = (&c[..dot], &c[dot + 1..]);
    (!int.is_empty()
        && int.iter().all(u8::is_ascii_digit)
        && !frac.is_empty()
        && frac.iter().all(|&b| b == b'0'))
    .then_some(int)
}

/// An id cell: `Ok(None)` when empty, null or 0 (OMOP's "no matching concept"),
/// `Err` when it is not an integer. Accepts `123.0` like [`person_cell`].
fn parse_id(cell: &[u8]) -> Result<Option<i64>, ()> {
    let c = cell.trim_ascii();
    if is_null(c) {
        return Ok(None);
    }
    let c = strip_zero_fraction(c).unwrap_or(c);
    let (negative, digits) = match c.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, c),
    };
    if digits.is_empty() || digits.len() > 18 {
        return Err(());
    }
    let mut n: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return Err(());
        }
        n = n * 10 + i64::from(b - b'0');
    }
    let n = if negative { -n } else { n };
    Ok((n != 0).then_some(n))
}

/// The day of a date cell: ISO `YYYY-MM-DD` (or a date-time starting with one), as
/// [`parse_day`] reads it, or the compact `YYYYMMDD` some database exports write.
fn parse_date(cell: &[u8]) -> Option<i32> {
    let text = std::str::from_utf8(cell).ok()?.trim();
    let b = text.as_bytes();
    if b.len() == 8 && b.iter().all(u8::is_ascii_digit) {
        return parse_day(&format!("{}-{}-{}", &text[..4], &text[4..6], &text[6..]));
    }
    parse_day(text)
}

/// A cell for a message: lossy UTF-8, at most 24 characters.
fn shorten(cell: &[u8]) -> String {
    let s = String::from_utf8_lossy(cell);
    if s.chars().count() > 24 {
        format!("{}…", s.chars().take(24).collect::<String>())
    } else {
        s.into_owned()
    }
}

/// Gives the timelines' concepts their final keys. Two provisional concepts can name
/// the same key (a concept id and a source value that resolve alike, or two ids that the
/// vocabulary gives one code): they are merged, keeping the modality of the first, and
/// timelines are re-sorted and de-duplicated where that happened.
fn rename(timelines: &mut Timelines, keys: Vec<ConceptKey>) {
    let mut first: HashMap<&ConceptKey, u32> = HashMap::with_capacity(keys.len());
    let mut kept: Vec<usize> = Vec::with_capacity(keys.len());
    let mut remap: Vec<u32> = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let next = kept.len() as u32;
        let c = *first.entry(key).or_insert_with(|| {
            kept.push(i);
            next
        });
        remap.push(c);
    }
    drop(first);
    if kept.len() == keys.len() {
        timelines.concepts = keys;
        return;
    }
    timelines.modalities = kept.iter().map(|&i| timelines.modalities[i]).collect();
    let mut keys: Vec<Option<ConceptKey>> = keys.into_iter().map(Some).collect();
    timelines.concepts = kept
        .iter()
        .map(|&i| keys[i].take().unwrap_or_default())
        .collect();
    let Timelines {
        offsets, events, ..
    } = timelines;
    let mut write = 0;
    for p in 0..offsets.len().saturating_sub(1) {
        let (start, end) = (offsets[p], offsets[p + 1]);
        offsets[p] = write;
        for e in &mut events[start..end] {
            e.concept = remap[e.concept as usize];
        }
        events[start..end].sort_unstable();
        for i in start..end {
            if i == start || events[i] != events[i - 1] {
                events[write] = events[i];
                write += 1;
            }
        }
    }
    if let Some(last) = offsets.last_mut() {
        *last = write;
    }
    events.truncate(write);
}

#[cfg(test)]
mod tests;

//! OMOP-CDM-shaped CSV text for one synthetic site.
//!
//! Tables and columns (OMOP names; ids are synthetic):
//! - `person.csv`: `person_id,gender_concept_id,year_of_birth,gender_source_value`
//! - `condition_occurrence.csv`: `condition_occurrence_id,person_id,condition_concept_id,
//!   condition_start_date,condition_source_value`
//! - `drug_exposure.csv`: `drug_exposure_id,person_id,drug_concept_id,
//!   drug_exposure_start_date,drug_source_value`
//! - `measurement.csv`: `measurement_id,person_id,measurement_concept_id,measurement_date,
//!   measurement_source_value`
//! - `note.csv`: `note_id,person_id,note_date` (one note per encounter with note concepts)
//! - `note_nlp.csv`: `note_nlp_id,note_id,person_id,note_date,note_nlp_concept_id,
//!   lexical_variant` — `person_id` and `note_date` are copied from `note` so a loader can
//!   read concepts from notes without a join
//! - `concept.csv`: `concept_id,concept_name,domain_id,vocabulary_id,concept_code`
//!
//! Dates are ISO `YYYY-MM-DD`. `*_source_value` holds the source code (`E11.0`).

use std::fmt::Write;

use super::{SiteData, System, Vocabulary};

/// The OMOP gender concept ids (8532 female, 8507 male).
fn gender_concept_id(gender: char) -> u32 {
    if gender == 'F' { 8532 } else { 8507 }
}

/// ISO date `YYYY-MM-DD` of a day count since 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's `civil_from_days`).
pub fn iso_date(days: i32) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The site's tables as `(file name, CSV text)`, in a fixed order.
pub fn tables(vocab: &Vocabulary, site: &SiteData) -> Vec<(&'static str, String)> {
    let mut person =
        String::from("person_id,gender_concept_id,year_of_birth,gender_source_value\n");
    for p in &site.persons {
        let _ = writeln!(
            person,
            "{},{},{},{}",
            p.person_id,
            gender_concept_id(p.gender),
            p.birth_year,
            p.gender
        );
    }
    let mut condition = String::from(
        "condition_occurrence_id,person_id,condition_concept_id,condition_start_date,condition_source_value\n",
    );
    let mut drug = String::from(
        "drug_exposure_id,person_id,drug_concept_id,drug_exposure_start_date,drug_source_value\n",
    );
    let mut measurement = String::from(
        "measurement_id,person_id,measurement_concept_id,measurement_date,measurement_source_value\n",
    );
    let mut note = String::from("note_id,person_id,note_date\n");
    let mut note_nlp = String::from(
        "note_nlp_id,note_id,person_id,note_date,note_nlp_concept_id,lexical_variant\n",
    );
    let mut row_ids = [0u64; 4];
    let mut last_note: Option<(u64, i32)> = None;
    let mut note_id = 0u64;
    let mut date_cache: Option<(i32, String)> = None;
    for e in &site.events {
        let c = &vocab.concepts[e.concept as usize];
        let date = match &date_cache {
            Some((d, s)) if *d == e.day => s.clone(),
            _ => {
                let s = iso_date(e.day);
                date_cache = Some((e.day, s.clone()));
                s
            }
        };
        let (slot, table) = match c.system {
            System::Icd10cm => (0, &mut condition),
            System::Rxnorm => (1, &mut drug),
            System::Loinc => (2, &mut measurement),
            System::Cui => {
                if last_note != Some((e.person_id, e.day)) {
                    note_id += 1;
                    last_note = Some((e.person_id, e.day));
                    let _ = writeln!(note, "{note_id},{},{date}", e.person_id);
                }
                row_ids[3] += 1;
                let _ = writeln!(
                    note_nlp,
                    "{},{note_id},{},{date},{},{}",
                    row_ids[3], e.person_id, c.concept_id, c.name
                );
                continue;
            }
        };
        row_ids[slot] += 1;
        let _ = writeln!(
            table,
            "{},{},{},{date},{}",
            row_ids[slot], e.person_id, c.concept_id, c.code
        );
    }
    vec![
        ("person.csv", person),
        ("condition_occurrence.csv", condition),
        ("drug_exposure.csv", drug),
        ("measurement.csv", measurement),
        ("note.csv", note),
        ("note_nlp.csv", note_nlp),
        ("concept.csv", vocab.concept_csv()),
    ]
}

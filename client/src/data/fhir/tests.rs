//! Tests of the FHIR adapter: the tagger (longest match, case, word boundaries, negation),
//! the loader on hand-written NDJSON and a Synthea-style Bundle, its errors, and a round
//! trip through the synthetic generator's FHIR rendering.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;

use silo_common::ehr::{Modality, Timelines};
use silo_common::synth::ehr::omop::iso_date;
use silo_common::synth::ehr::{EhrConfig, Generator, fhir as synth_fhir};

use super::super::ehr::FileReport;
use super::resource::{decode_base64, first_day};
use super::tagger::Dictionary;
use super::*;

// ---------------------------------------------------------------------------------------
// Tagger

fn dictionary(terms: &[(&str, &str)]) -> Dictionary {
    let mut d = Dictionary::default();
    for (term, code) in terms {
        assert!(d.insert(term, "CUI", code), "{term}");
    }
    d
}

/// (matched text, codes, negated) of every mention.
fn tag(d: &Dictionary, text: &str) -> Vec<(String, Vec<String>, bool)> {
    d.tag(text)
        .into_iter()
        .map(|m| {
            let codes = m
                .concepts
                .iter()
                .map(|&c| d.concept(c).1.to_string())
                .collect();
            (text[m.span].to_string(), codes, m.negated)
        })
        .collect()
}

fn found(d: &Dictionary, text: &str) -> Vec<(String, bool)> {
    tag(d, text)
        .into_iter()
        .map(|(_, codes, neg)| (codes.join("+"), neg))
        .collect()
}

#[test]
fn tagger_prefers_the_longest_term() {
    let d = dictionary(&[
        ("heart", "H"),
        ("heart failure", "HF"),
        ("congestive heart failure", "CHF"),
    ]);
    assert_eq!(
        tag(
            &d,
            "Congestive heart failure, and a heart murmur; heart failure."
        ),
        [
            (
                "Congestive heart failure".to_string(),
                vec!["CHF".to_string()],
                false
            ),
            ("heart".to_string(), vec!["H".to_string()], false),
            ("heart failure".to_string(), vec!["HF".to_string()], false),
        ]
    );
    // A longer term that does not complete falls back to the shorter one.
    assert_eq!(found(&d, "congestive heart"), [("H".to_string(), false)]);
}

#[test]
fn tagger_is_case_insensitive_at_word_boundaries() {
    let d = dictionary(&[("cough", "C"), ("c7f1", "X"), ("type 2 diabetes", "T2D")]);
    assert_eq!(
        found(&d, "Coughing, COUGH; hiccough. C7F1 and c7f12"),
        [("C".to_string(), false), ("X".to_string(), false)]
    );
    // Multi-word terms match across any run of separators, including a wrapped line.
    assert_eq!(
        found(&d, "Type-2   diabetes, TYPE 2\ndiabetes"),
        [("T2D".to_string(), false), ("T2D".to_string(), false)]
    );
}

#[test]
fn tagger_term_may_name_several_concepts() {
    let mut d = Dictionary::default();
    assert!(d.insert("MI", "CUI", "C1"));
    assert!(d.insert("mi", "http://snomed.info/sct", "22298006"));
    assert!(d.insert("mi", "CUI", "C1"));
    assert!(!d.insert("--", "CUI", "C2"));
    assert_eq!(d.len(), 1);
    let m = d.tag("history of MI");
    assert_eq!(m.len(), 1);
    let concepts: Vec<(&str, &str)> = m[0].concepts.iter().map(|&c| d.concept(c)).collect();
    assert_eq!(concepts, [("CUI", "C1"), ("SNOMED", "22298006")]);
}

#[test]
fn tagger_negation_cues_within_the_window() {
    let d = dictionary(&[("fever", "F"), ("chest pain", "CP")]);
    for text in [
        "No fever.",
        "not fever",
        "Patient denies fever",
        "denied fever",
        "without fever",
        "Negative for fever",
        "ruled out fever",
        "rule out fever",
        "free of fever",
        "absence of fever",
        "Denies any chest pain",
        // The cue's last token is the fifth token before the term.
        "no a b c d fever",
    ] {
        let f = found(&d, text);
        assert_eq!(f.len(), 1, "{text}");
        assert!(f[0].1, "not negated: {text}");
    }
    for text in [
        // Six tokens between: out of the window.
        "no a b c d e fever",
        // `for` alone, `out` alone and `of` alone are no cues.
        "for fever",
        "History of fever",
        "Fever, no chills",
        "Nothing about fever",
        // A terminator ends the scope.
        "No chills but fever",
    ] {
        let f = found(&d, text);
        assert!(f.iter().any(|(c, neg)| c == "F" && !neg), "negated: {text}");
    }
    // One cue negates every term in its window.
    assert_eq!(
        found(&d, "No fever or chest pain"),
        [("F".to_string(), true), ("CP".to_string(), true)]
    );
}

#[test]
fn tagger_sentence_boundary_resets_negation() {
    let d = dictionary(&[("fever", "F")]);
    for text in [
        "No pain. Fever today.",
        "No pain; fever",
        "Denies pain: fever",
        "no pain! fever",
        "no pain? fever",
        "no pain\nfever",
    ] {
        assert_eq!(found(&d, text), [("F".to_string(), false)], "{text}");
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

#[test]
fn dictionary_file_reports_bad_rows_and_maps_systems() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("dictionary.csv");
    write(
        &p,
        "\u{feff}Term,concept_system,concept_code,note\n\
         heart attack,http://www.nlm.nih.gov/research/umls,C0027051,x\n\
         MI,CUI,C0027051\n\
         ,CUI,C1\n\
         fever,,C2\n\
         ---,CUI,C3\n\
         short\n\
         lung cancer,SNOMED,93880001\n",
    );
    let (d, report) = Dictionary::read(&p).unwrap();
    assert_eq!((report.rows, report.used, report.skipped), (7, 3, 4));
    let lines: Vec<u64> = report.examples.iter().map(|s| s.line).collect();
    assert_eq!(lines, [4, 5, 6, 7]);
    assert!(report.examples[1].reason.contains("empty concept_system"));
    assert_eq!(d.concepts(), 2);
    let m = d.tag("Heart attack (MI) and lung cancer");
    let codes: Vec<(&str, &str)> = m.iter().map(|m| d.concept(m.concepts[0])).collect();
    assert_eq!(
        codes,
        [
            ("CUI", "C0027051"),
            ("CUI", "C0027051"),
            ("SNOMED", "93880001")
        ]
    );
}

#[test]
fn dictionary_without_its_columns_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("dictionary.csv");
    write(&p, "term,system,code\nfever,CUI,C1\n");
    let err = Dictionary::read(&p).unwrap_err().to_string();
    assert!(err.contains("no column \"concept_system\""), "{err}");
    write(&p, "");
    let err = Dictionary::read(&p).unwrap_err().to_string();
    assert!(err.contains("empty file"), "{err}");
    let err = Dictionary::read(&tmp.path().join("missing.csv")).unwrap_err();
    assert!(matches!(err, EhrError::Io { .. }), "{err}");
}

// ---------------------------------------------------------------------------------------
// Loader

/// Every event as (patient index, date, system, code, modality).
fn rows(t: &Timelines) -> BTreeSet<(usize, String, String, String, Modality)> {
    let mut out = BTreeSet::new();
    for (p, events) in t.iter().enumerate() {
        for e in events {
            let (s, c) = &t.concepts[e.concept as usize];
            out.insert((
                p,
                iso_date(e.day),
                s.clone(),
                c.clone(),
                t.modalities[e.concept as usize],
            ));
        }
    }
    out
}

fn row(
    p: usize,
    date: &str,
    s: &str,
    c: &str,
    m: Modality,
) -> (usize, String, String, String, Modality) {
    (p, date.into(), s.into(), c.into(), m)
}

fn b64(text: &str) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(A[(n >> (18 - 6 * k)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_decoder_round_trips_and_refuses_garbage() {
    for text in [
        "",
        "f",
        "fo",
        "foo",
        "foob",
        "fooba",
        "foobar",
        "No fever.\n",
    ] {
        assert_eq!(decode_base64(&b64(text)).unwrap(), text.as_bytes());
    }
    assert_eq!(decode_base64("Zm9v\nYmFy").unwrap(), b"foobar");
    assert_eq!(decode_base64("Zm8").unwrap(), b"fo");
    assert!(decode_base64("Zm9v!").is_none());
    assert!(decode_base64("Zg==Zg").is_none());
    assert!(decode_base64("Z").is_none());
}

const DICTIONARY: &str = "term,concept_system,concept_code\n\
    fever,CUI,C0015967\n\
    chest pain,CUI,C0008031\n\
    cough,CUI,C0010200\n";

/// A small bulk export: two patients, every resource type, good and bad rows.
fn ndjson_folder(dir: &Path) {
    write(
        &dir.join("Patient.ndjson"),
        "{\"resourceType\":\"Patient\",\"id\":\"p1\"}\n\
         {\"resourceType\":\"Patient\",\"id\":\"p2\",\"name\":[{\"family\":\"X\"}]}\n",
    );
    write(
        &dir.join("Condition.000.ndjson"),
        concat!(
            r#"{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/p1"},"onsetDateTime":"2021-03-04T10:00:00Z","code":{"coding":[{"system":"http://snomed.info/sct","code":"44054006"},{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"E11.9"}],"text":"Diabetes"}}"#,
            "\n",
            r#"{"resourceType":"Condition","id":"c2","subject":{"reference":"Patient/p2"},"code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"I10"}]}}"#,
            "\n\n",
            "{\"resourceType\":\"Condition\",\"id\":\"c3\", this is not json\n",
            r#"{"resourceType":"Condition","id":"c4","subject":{"reference":"Patient/p2"},"onsetDateTime":"2021-03","code":{"coding":[{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"I11"}]}}"#,
            "\n",
            r#"{"resourceType":"Condition","id":"c5","subject":{"reference":"Patient/p2"},"recordedDate":"2020-01-02","code":{"coding":[{"code":"nosystem"},{"system":"urn:example:local","code":"L-1"}]}}"#,
            "\n",
            r#"{"resourceType":"Condition","id":"c6","subject":{"reference":"Group/g1"},"recordedDate":"2020-01-02","code":{"coding":[{"system":"http://loinc.org","code":"1-1"}]}}"#,
            "\n",
            r#"{"resourceType":"Condition","id":"c7","subject":{"reference":"Patient/p2"},"recordedDate":"2020-01-02","code":{"text":"free text only"}}"#,
            "\n",
        ),
    );
    write(
        &dir.join("Observation.ndjson"),
        concat!(
            r#"{"resourceType":"Observation","id":"o1","subject":{"reference":"https://ehr.example/fhir/Patient/p1/_history/3"},"effectivePeriod":{"start":"2021-03-05"},"code":{"coding":[{"system":"http://loinc.org","code":"4548-4"}]},"valueQuantity":{"value":7.1}}"#,
            "\n",
            r#"{"resourceType":"Observation","id":"o2","subject":{"reference":"Patient/p1"},"effectiveDateTime":"2021","issued":"2021-06-01T08:00:00Z","code":{"coding":[{"system":"LOINC","code":"2345-7"}]}}"#,
            "\n",
            r#"{"resourceType":"Observation","id":"o3","subject":{"reference":"Patient/p2"},"encounter":{"reference":"Encounter/e1"},"code":{"coding":[{"system":"http://loinc.org","code":"718-7"}]}}"#,
            "\n",
            r#"{"resourceType":"Observation","id":"o4","subject":{"reference":"Patient/p2"},"encounter":{"reference":"Encounter/nowhere"},"code":{"coding":[{"system":"http://loinc.org","code":"718-7"}]}}"#,
            "\n",
        ),
    );
    write(
        &dir.join("Encounter.ndjson"),
        concat!(
            r#"{"resourceType":"Encounter","id":"e1","subject":{"reference":"Patient/p2"},"period":{"start":"2022-02-02T09:00:00+01:00"},"reasonCode":[{"coding":[{"system":"http://snomed.info/sct","code":"38341003"}]}]}"#,
            "\n",
            r#"{"resourceType":"Encounter","id":"e2","subject":{"reference":"Patient/p1"},"period":{"start":"2022-02-03"}}"#,
            "\n",
        ),
    );
    write(
        &dir.join("MedicationRequest.ndjson"),
        concat!(
            r#"{"resourceType":"MedicationRequest","id":"m1","subject":{"reference":"Patient/p1"},"authoredOn":"2021-03-04","medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"860975"}]}}"#,
            "\n",
            r#"{"resourceType":"MedicationStatement","id":"ms1","subject":{"reference":"Patient/p2"},"effectivePeriod":{"start":"2021-04-01"},"medicationReference":{"reference":"Medication/med1"}}"#,
            "\n",
        ),
    );
    write(
        &dir.join("Medication.ndjson"),
        r#"{"resourceType":"Medication","id":"med1","code":{"coding":[{"system":"http://hl7.org/fhir/sid/ndc","code":"0069-2587-10"}]}}"#,
    );
    write(
        &dir.join("Procedure.ndjson"),
        concat!(
            r#"{"resourceType":"Procedure","id":"pr1","subject":{"reference":"Patient/p1"},"performedPeriod":{"start":"2021-03-04T11:00:00Z"},"code":{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"99213"}]}}"#,
            "\n",
            r#"{"resourceType":"Claim","id":"cl1","patient":{"reference":"Patient/p1"}}"#,
            "\n",
        ),
    );
    let note = b64("Patient reports fever.\nDenies chest pain. Cough resolved.");
    let negated_only = b64("No fever, no cough.");
    write(
        &dir.join("DocumentReference.ndjson"),
        &format!(
            "{{\"resourceType\":\"DocumentReference\",\"id\":\"d1\",\"subject\":{{\"reference\":\"Patient/p1\"}},\"date\":\"2021-03-04T12:00:00Z\",\"content\":[{{\"attachment\":{{\"contentType\":\"text/plain\",\"data\":\"{note}\"}}}},{{\"attachment\":{{\"contentType\":\"application/pdf\",\"data\":\"{negated_only}\"}}}}]}}\n\
             {{\"resourceType\":\"DocumentReference\",\"id\":\"d2\",\"subject\":{{\"reference\":\"Patient/p2\"}},\"context\":{{\"encounter\":[{{\"reference\":\"Encounter/e1\"}}]}},\"content\":[{{\"attachment\":{{\"contentType\":\"text/plain; charset=utf-8\",\"data\":\"{negated_only}\"}}}}],\"description\":\"cough\"}}\n\
             {{\"resourceType\":\"DocumentReference\",\"id\":\"d3\",\"subject\":{{\"reference\":\"Patient/p2\"}},\"date\":\"2021-03-04\",\"content\":[{{\"attachment\":{{\"data\":\"{negated_only}\"}}}}]}}\n"
        ),
    );
    write(&dir.join("README.txt"), "not FHIR");
}

fn report<'a>(load: &'a EhrLoad, name: &str) -> &'a FileReport {
    load.files
        .iter()
        .find(|f| f.path.file_name().unwrap() == name)
        .unwrap_or_else(|| panic!("no report for {name}"))
}

fn reasons(r: &FileReport) -> Vec<(u64, String)> {
    r.examples
        .iter()
        .map(|s| (s.line, s.reason.clone()))
        .collect()
}

#[test]
fn loads_a_bulk_export_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fhir");
    std::fs::create_dir(&dir).unwrap();
    ndjson_folder(&dir);
    let dict = tmp.path().join("dictionary.csv");
    write(&dict, DICTIONARY);
    let load = load(&dir, Some(&dict)).unwrap();

    // Dictionary first, then the FHIR files in name order (README.txt ignored).
    let names: Vec<String> = load
        .files
        .iter()
        .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "dictionary.csv",
            "Condition.000.ndjson",
            "DocumentReference.ndjson",
            "Encounter.ndjson",
            "Medication.ndjson",
            "MedicationRequest.ndjson",
            "Observation.ndjson",
            "Patient.ndjson",
            "Procedure.ndjson",
        ]
    );
    // Patients by first sight: p1 (Condition c1) is 0, p2 is 1.
    use Modality::{Code, Note};
    let expected: BTreeSet<_> = [
        row(0, "2021-03-04", "SNOMED", "44054006", Code),
        row(0, "2021-03-04", "ICD10CM", "E11.9", Code),
        row(0, "2021-03-04", "CUI", "C0015967", Note),
        row(0, "2021-03-04", "CUI", "C0010200", Note),
        row(0, "2021-03-04", "RXNORM", "860975", Code),
        row(0, "2021-03-04", "CPT", "99213", Code),
        row(0, "2021-03-05", "LOINC", "4548-4", Code),
        row(0, "2021-06-01", "LOINC", "2345-7", Code),
        row(1, "2020-01-02", "urn:example:local", "L-1", Code),
        row(1, "2021-04-01", "NDC", "0069-2587-10", Code),
        row(1, "2022-02-02", "SNOMED", "38341003", Code),
        row(1, "2022-02-02", "LOINC", "718-7", Code),
        row(1, "2022-02-02", "CUI", "C0010200", Note),
    ]
    .into_iter()
    .collect();
    assert_eq!(rows(&load.timelines), expected);

    let conditions = report(&load, "Condition.000.ndjson");
    assert_eq!(
        (conditions.rows, conditions.used, conditions.skipped),
        (7, 2, 5)
    );
    let why = reasons(conditions);
    assert_eq!(why[0].0, 2);
    assert_eq!(
        why[0].1,
        "Condition/c2: no onsetDateTime, onsetPeriod.start or recordedDate"
    );
    assert_eq!(why[1].0, 4, "the bad line is skipped with its number");
    assert!(
        why[1].1.starts_with("not a JSON resource: "),
        "{}",
        why[1].1
    );
    assert_eq!(
        why[2],
        (
            5,
            "Condition/c4: onsetDateTime \"2021-03\" is a partial date (no day)".into()
        )
    );
    assert_eq!(
        why[3],
        (
            7,
            "Condition/c6: subject Group/g1 is a Group, not a Patient".into()
        )
    );
    assert_eq!(
        why[4],
        (
            8,
            "Condition/c7: no code.coding with a system and a code".into()
        )
    );

    let observations = report(&load, "Observation.ndjson");
    assert_eq!((observations.rows, observations.used), (4, 3));
    assert_eq!(
        reasons(observations),
        [(
            4,
            "Observation/o4: no effectiveDateTime, effectivePeriod.start, effectiveInstant or issued, \
             and its encounter Encounter/nowhere is not in the dataset or has no period.start"
                .into()
        )]
    );
    let encounters = report(&load, "Encounter.ndjson");
    assert_eq!(
        (encounters.rows, encounters.used, encounters.skipped),
        (2, 1, 0)
    );
    let procedures = report(&load, "Procedure.ndjson");
    // The Claim is read as a row but neither used nor skipped.
    assert_eq!(
        (procedures.rows, procedures.used, procedures.skipped),
        (2, 1, 0)
    );
    let documents = report(&load, "DocumentReference.ndjson");
    assert_eq!((documents.rows, documents.used), (3, 2));
    assert_eq!(
        reasons(documents),
        [(
            3,
            "DocumentReference/d3: no dictionary term in the note text (2 negated mention(s) dropped)"
                .into()
        )]
    );
    assert_eq!(report(&load, "Patient.ndjson").used, 2);
    assert_eq!(report(&load, "dictionary.csv").used, 3);
}

#[test]
fn notes_without_a_dictionary_are_skipped_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    ndjson_folder(tmp.path());
    let load = load(tmp.path(), None).unwrap();
    let documents = report(&load, "DocumentReference.ndjson");
    assert_eq!(
        (documents.rows, documents.used, documents.skipped),
        (3, 0, 3)
    );
    assert_eq!(
        documents.examples[0].reason,
        "DocumentReference/d1: no dictionary configured to tag note text"
    );
    assert!(
        load.timelines
            .modalities
            .iter()
            .all(|m| *m == Modality::Code)
    );
}

/// A Synthea-style Bundle: `urn:uuid:` references, the Patient's fullUrl differing from
/// its id, entries in any order, a Medication referenced before it appears.
const BUNDLE: &str = r#"{
  "resourceType": "Bundle",
  "type": "transaction",
  "entry": [
    {
      "fullUrl": "urn:uuid:0b0e-enc",
      "resource": {
        "resourceType": "Encounter", "id": "0b0e-enc",
        "subject": {"reference": "urn:uuid:9f1c-pat"},
        "period": {"start": "2019-05-06T08:00:00-04:00", "end": "2019-05-06T09:00:00-04:00"},
        "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "185349003"}]}]
      },
      "request": {"method": "POST", "url": "Encounter"}
    },
    {
      "fullUrl": "urn:uuid:c0nd",
      "resource": {
        "resourceType": "Condition", "id": "c0nd",
        "subject": {"reference": "urn:uuid:9f1c-pat"},
        "encounter": {"reference": "urn:uuid:0b0e-enc"},
        "onsetDateTime": "2019-05-06T08:30:00-04:00",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "195662009", "display": "Acute viral pharyngitis"}]}
      }
    },
    {
      "fullUrl": "urn:uuid:mreq",
      "resource": {
        "resourceType": "MedicationRequest", "id": "mreq",
        "subject": {"reference": "urn:uuid:9f1c-pat"},
        "encounter": {"reference": "urn:uuid:0b0e-enc"},
        "medicationReference": {"reference": "urn:uuid:med-1"}
      }
    },
    {
      "fullUrl": "urn:uuid:9f1c-pat",
      "resource": {
        "resourceType": "Patient", "id": "patient-42",
        "text": {"status": "generated", "div": "<div>...</div>"},
        "name": [{"given": ["Ann"], "family": "Lee"}],
        "extension": [{"url": "x", "valueString": 3}]
      }
    },
    {
      "fullUrl": "urn:uuid:obs",
      "resource": {
        "resourceType": "Observation", "id": "obs",
        "subject": {"reference": "urn:uuid:9f1c-pat"},
        "encounter": {"reference": "urn:uuid:0b0e-enc"},
        "code": "not an object",
        "issued": 20190506
      }
    },
    {
      "fullUrl": "urn:uuid:med-1",
      "resource": {
        "resourceType": "Medication", "id": "med-1",
        "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "308182"}]}
      }
    },
    {
      "fullUrl": "urn:uuid:claim",
      "resource": {"resourceType": "Claim", "id": "claim", "patient": {"reference": "urn:uuid:9f1c-pat"}}
    },
    {"request": {"method": "DELETE", "url": "Patient/x"}}
  ]
}"#;

#[test]
fn loads_a_synthea_bundle_with_urn_uuid_references() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("Ann_Lee_9f1c.json");
    write(&file, BUNDLE);
    let load = load(&file, None).unwrap();
    use Modality::Code;
    let expected: BTreeSet<_> = [
        row(0, "2019-05-06", "SNOMED", "195662009", Code),
        row(0, "2019-05-06", "RXNORM", "308182", Code),
    ]
    .into_iter()
    .collect();
    assert_eq!(rows(&load.timelines), expected);
    assert_eq!(load.timelines.patients(), 1);
    let r = &load.files[0];
    assert_eq!((r.rows, r.used, r.skipped), (8, 3, 2));
    assert_eq!(
        reasons(r),
        [
            (
                5,
                "Observation/obs: no code.coding with a system and a code".into()
            ),
            (8, "Bundle entry without a resource".into()),
        ]
    );
}

#[test]
fn bundle_subjects_resolve_to_the_patient_id() {
    // Two bundles in one folder: the same patient id across them is one patient.
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("a.json"), BUNDLE);
    write(
        &tmp.path().join("b.json"),
        r#"{"resourceType":"Bundle","entry":[
            {"fullUrl":"urn:uuid:other","resource":{"resourceType":"Patient","id":"patient-42"}},
            {"resource":{"resourceType":"Procedure","id":"x","subject":{"reference":"urn:uuid:other"},
             "performedDateTime":"2020-01-01","code":{"coding":[{"system":"http://snomed.info/sct","code":"1"}]}}}]}"#,
    );
    let load = load(tmp.path(), None).unwrap();
    assert_eq!(load.timelines.patients(), 1);
    assert_eq!(load.timelines.events.len(), 3);
}

#[test]
fn refuses_files_that_are_not_json() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("Condition.ndjson");
    write(&p, "\npatient_id,code\n1,E11\n");
    let err = load(tmp.path(), None).unwrap_err();
    match &err {
        EhrError::Format {
            path,
            line,
            message,
        } => {
            assert_eq!(path, &p);
            assert_eq!(*line, Some(2));
            assert!(message.contains("not FHIR NDJSON"), "{message}");
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains(": line 2: "), "{err}");

    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("bundle.json");
    write(
        &p,
        "{\"resourceType\": \"Bundle\",\n \"entry\": [\n {\"resource\": ",
    );
    let err = load(&p, None).unwrap_err();
    assert!(
        matches!(&err, EhrError::Format { line: Some(3), .. }),
        "{err}"
    );
    write(&p, "[1, 2]");
    assert!(
        load(&p, None)
            .unwrap_err()
            .to_string()
            .contains("a JSON object")
    );
    write(&p, "  \n");
    assert!(
        load(&p, None)
            .unwrap_err()
            .to_string()
            .contains("empty file")
    );
}

#[test]
fn refuses_a_folder_without_fhir_files() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("person.csv"), "person_id\n1\n");
    write(&tmp.path().join("Patient.ndjson.gz"), "");
    write(&tmp.path().join(".hidden.ndjson"), "");
    let err = load(tmp.path(), None).unwrap_err();
    assert!(matches!(err, EhrError::Format { line: None, .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("no FHIR files"), "{text}");
    assert!(text.contains("*.ndjson"), "{text}");
    assert!(text.contains("1 compressed file(s)"), "{text}");
    let err = load(&tmp.path().join("nowhere"), None).unwrap_err();
    assert!(matches!(err, EhrError::Io { .. }), "{err}");
}

#[test]
fn partial_dates_fall_back_to_the_next_field_or_skip() {
    assert_eq!(
        first_day(&[("a", Some("2021")), ("b", Some("2021-02-03"))]),
        Ok(silo_common::ehr::parse_day("2021-02-03").unwrap())
    );
    assert_eq!(
        first_day(&[("a", Some("2021")), ("b", None)]),
        Err("a \"2021\" is a partial date (no day)".into())
    );
    assert_eq!(
        first_day(&[("a", Some("2021-02-30")), ("b", Some("2021-02"))]),
        Err("a \"2021-02-30\" is not a date".into())
    );
    assert_eq!(first_day(&[("a", None)]), Err("no a".into()));
    assert_eq!(
        first_day(&[("a", None), ("b", None), ("c", None)]),
        Err("no a, b or c".into())
    );
}

#[test]
fn system_labels() {
    for (uri, label) in [
        ("http://hl7.org/fhir/sid/icd-10-cm", "ICD10CM"),
        ("http://hl7.org/fhir/sid/icd-10", "ICD10"),
        ("http://www.nlm.nih.gov/research/umls/rxnorm", "RXNORM"),
        ("http://loinc.org", "LOINC"),
        ("http://snomed.info/sct", "SNOMED"),
        ("http://www.ama-assn.org/go/cpt", "CPT"),
        ("http://hl7.org/fhir/sid/ndc", "NDC"),
        ("http://www.nlm.nih.gov/research/umls", "CUI"),
        ("urn:oid:2.16.840.1.113883.6.96", "SNOMED"),
        ("RxNorm", "RXNORM"),
        ("http://example.org/local", "http://example.org/local"),
    ] {
        assert_eq!(resource::system_label(uri), label, "{uri}");
    }
    // The synthetic generator's URIs round-trip to its labels.
    for s in silo_common::synth::ehr::System::ALL {
        assert_eq!(
            resource::system_label(synth_fhir::system_uri(s)),
            s.as_str()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Round trip through the synthetic generator

#[test]
fn synthetic_fhir_round_trips_to_the_generator_events() {
    let generator = Generator::new(EhrConfig {
        seed: 11,
        clusters: 12,
        ..EhrConfig::default()
    });
    let vocab = generator.vocabulary();
    let site = generator.site(1, 200);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fhir");
    std::fs::create_dir(&dir).unwrap();
    let files = synth_fhir::ndjson(vocab, &site);
    for (name, text) in &files {
        write(&dir.join(name), text);
    }
    let dict = tmp.path().join("dictionary.csv");
    write(&dict, &vocab.dictionary_csv());
    let load = load(&dir, Some(&dict)).unwrap();

    // Nothing skipped; every structured resource and note used.
    for f in &load.files {
        assert_eq!(f.skipped, 0, "{:?}", f.skipped_summary());
    }
    assert_eq!(report(&load, "Patient.ndjson").used, 200);

    // The generator's events, by patient.
    let mut by_person: HashMap<u64, Vec<(i32, String, String)>> = HashMap::new();
    let mut truth: HashSet<(u64, i32, u32)> = HashSet::new();
    for e in &site.events {
        let c = &vocab.concepts[e.concept as usize];
        by_person.entry(e.person_id).or_default().push((
            e.day,
            c.system.as_str().to_string(),
            c.code.clone(),
        ));
        truth.insert((e.person_id, e.day, e.concept));
    }
    let mut expected: Vec<Vec<(i32, String, String)>> = by_person
        .into_values()
        .map(|mut v| {
            v.sort();
            v.dedup();
            v
        })
        .collect();
    expected.sort();
    assert_eq!(load.timelines.events.len(), truth.len());
    assert_eq!(load.timelines.named_events(), expected);
    for (i, (_, code)) in load.timelines.concepts.iter().enumerate() {
        let want = if code.starts_with('C') && load.timelines.concepts[i].0 == "CUI" {
            Modality::Note
        } else {
            Modality::Code
        };
        assert_eq!(load.timelines.modalities[i], want, "{code}");
    }

    // The notes do hold negated mentions, and each names a concept the visit lacks.
    let (dictionary, _) = Dictionary::read(&dict).unwrap();
    let notes = &files
        .iter()
        .find(|(n, _)| *n == "DocumentReference.ndjson")
        .unwrap()
        .1;
    let mut negated = 0;
    for line in notes.lines() {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        let person: u64 = doc["subject"]["reference"].as_str().unwrap()["Patient/".len()..]
            .parse()
            .unwrap();
        let day = silo_common::ehr::parse_day(doc["date"].as_str().unwrap()).unwrap();
        let data = doc["content"][0]["attachment"]["data"].as_str().unwrap();
        let text = String::from_utf8(decode_base64(data).unwrap()).unwrap();
        for m in dictionary.tag(&text) {
            let (system, code) = dictionary.concept(m.concepts[0]);
            let concept = vocab
                .find(silo_common::synth::ehr::System::Cui, code)
                .unwrap() as u32;
            assert_eq!(system, "CUI");
            let present = truth.contains(&(person, day, concept));
            assert_eq!(present, !m.negated, "{text}");
            negated += usize::from(m.negated);
        }
    }
    assert!(negated > 100, "only {negated} negated mentions");
}

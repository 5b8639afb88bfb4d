use std::collections::BTreeSet;

use silo_common::synth::ehr::{EhrConfig, Generator, omop::tables};

use super::*;

/// One patient's events as `(day, system, code)`, sorted.
type Timeline = BTreeSet<(i32, String, String)>;

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

/// Every patient's timeline, named by concept keys, in a canonical order.
fn timelines(t: &Timelines) -> Vec<Timeline> {
    t.named_events()
        .into_iter()
        .map(|events| events.into_iter().collect())
        .collect()
}

fn key(system: &str, code: &str) -> ConceptKey {
    (system.to_string(), code.to_string())
}

fn report<'a>(load: &'a EhrLoad, name: &str) -> &'a FileReport {
    load.files
        .iter()
        .find(|f| f.path.file_name().unwrap().to_string_lossy() == name)
        .unwrap_or_else(|| panic!("no report for {name}: {:?}", load.files))
}

fn day(iso: &str) -> i32 {
    parse_day(iso).unwrap()
}

/// A small export in the shapes real ones come in: upper-case names and headers, a
/// tab-separated Athena vocabulary, a date-time column instead of a date, notes joined
/// through `note`.
fn hand_written(dir: &Path) {
    write(
        dir,
        "CONDITION_OCCURRENCE.csv",
        "CONDITION_OCCURRENCE_ID,PERSON_ID,CONDITION_CONCEPT_ID,CONDITION_START_DATE,\
         CONDITION_START_DATETIME,CONDITION_SOURCE_VALUE,CONDITION_SOURCE_CONCEPT_ID\n\
         1,1,201826,2021-03-04,,E11.9,45576876\n\
         2,1,0,2021-03-05,,E11.0,0\n\
         3,2,0,2021-04-01,,,45576876\n\
         4,2,0,2021-04-02,,NULL,0\n\
         5,3,201826,2021-13-01,,E11.9,\n\
         6,,201826,2021-01-01,,E11.9,\n\
         7,3,abc,2021-01-01,,E11.9,\n\
         8,3,201826,2021-01-01\n\
         9,3,999,20210105,,X1,\n\
         10,4.0,201826,,2021-02-02T10:00:00,E11.9,\n\
         11,1,201826,2021-03-04,,E11.9,45576876\n",
    );
    write(
        dir,
        "drug_exposure.csv",
        "person_id,drug_concept_id,drug_exposure_start_datetime,drug_source_value\n\
         1,1545958,2021-03-04 09:30:00,860975\n",
    );
    write(
        dir,
        "NOTE.csv",
        "note_id,person_id,note_date,note_text\n\
         10,1,2021-03-06,\"Pt denies chest pain, has T2DM\"\n\
         11,2,2021-04-03,\"no fever\"\n",
    );
    write(
        dir,
        "note_nlp.csv",
        "note_nlp_id,note_id,note_nlp_concept_id,lexical_variant,term_exists,term_modifiers\n\
         1,10,4329847,T2DM,Y,\n\
         2,10,4329848,chest pain,N,\n\
         3,11,4329849,fever,,\"Negated = True, certainty=positive\"\n\
         4,99,4329847,T2DM,,\n\
         5,11,201826,diabetes,Y,\n",
    );
    write(
        dir,
        "person.csv",
        "person_id,year_of_birth\n1,1950\n2,1960\n3,1970\n4,1980\n5,1990\n",
    );
    write(
        dir,
        "CONCEPT.tsv",
        "concept_id\tconcept_name\tdomain_id\tvocabulary_id\tconcept_code\n\
         201826\tType 2 diabetes mellitus\tCondition\tSNOMED\t44054006\n\
         45576876\tType 2 diabetes \"unspecified\tCondition\tICD10CM\tE11.9\n\
         4329847\tDiabetes mellitus\tCondition\tSNOMED\t73211009\n\
         1545958\tatorvastatin 10 MG\tDrug\tRxNorm\t617310\n\
         7\tunused\tDrug\tRxNorm\t1\n",
    );
}

#[test]
fn a_hand_written_export_loads_with_every_fallback() {
    let dir = tempfile::tempdir().unwrap();
    hand_written(dir.path());
    let load = load(dir.path(), "PERSON_ID").unwrap();
    let t = &load.timelines;
    let set = |rows: &[(&str, &str, &str)]| -> Timeline {
        rows.iter()
            .map(|(d, s, c)| (day(d), s.to_string(), c.to_string()))
            .collect()
    };
    let mut expected = vec![
        // Person 1: a coded condition (twice: one event), an unmapped one named by its
        // source value, a drug from a date-time column, a note concept via note 10.
        set(&[
            ("2021-03-04", "SNOMED", "44054006"),
            ("2021-03-05", "CONDITION_SOURCE", "E11.0"),
            ("2021-03-04", "RxNorm", "617310"),
            ("2021-03-06", "SNOMED", "73211009"),
        ]),
        // Person 2: an unmapped condition named by its source concept; a note concept
        // that is also a condition concept (one key, the code's modality).
        set(&[
            ("2021-04-01", "ICD10CM", "E11.9"),
            ("2021-04-03", "SNOMED", "44054006"),
        ]),
        // Person 3: a compact date and a concept the vocabulary lacks.
        set(&[("2021-01-05", "OMOP", "999")]),
        // Person 4 (written 4.0): the date-time fallback.
        set(&[("2021-02-02", "SNOMED", "44054006")]),
    ];
    expected.sort();
    assert_eq!(timelines(t), expected);
    assert_eq!(t.patients(), 4);
    assert_eq!(t.events.len(), 8);
    let modality = |k: ConceptKey| {
        let i = t.concepts.iter().position(|c| *c == k).unwrap();
        t.modalities[i]
    };
    assert_eq!(modality(key("SNOMED", "44054006")), Modality::Code);
    assert_eq!(modality(key("SNOMED", "73211009")), Modality::Note);
    assert_eq!(t.concepts.len(), 6, "{:?}", t.concepts);

    let order: Vec<String> = load
        .files
        .iter()
        .map(|f| f.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        order,
        [
            "CONDITION_OCCURRENCE.csv",
            "drug_exposure.csv",
            "NOTE.csv",
            "note_nlp.csv",
            "person.csv",
            "CONCEPT.tsv"
        ]
    );
    let c = report(&load, "CONDITION_OCCURRENCE.csv");
    assert_eq!((c.rows, c.used, c.skipped), (11, 6, 5));
    let lines: Vec<u64> = c.examples.iter().map(|s| s.line).collect();
    assert_eq!(lines, [5, 6, 7, 8, 9]);
    let reasons: Vec<&str> = c.examples.iter().map(|s| s.reason.as_str()).collect();
    assert_eq!(
        reasons[0],
        "unmapped concept (concept_id 0, no source value)"
    );
    assert_eq!(reasons[1], "bad date \"2021-13-01\"");
    assert_eq!(reasons[2], "empty person_id");
    assert_eq!(
        reasons[3],
        "condition_concept_id is not an integer: \"abc\""
    );
    assert!(
        reasons[4].starts_with("ragged row: 4 field(s)"),
        "{reasons:?}"
    );
    let summary = c.skipped_summary().unwrap();
    assert!(
        summary.contains("5 of 11 row(s) skipped (line 5: unmapped"),
        "{summary}"
    );

    let n = report(&load, "note_nlp.csv");
    assert_eq!((n.rows, n.used, n.skipped), (5, 2, 3));
    assert!(n.examples[0].reason.contains("term_exists = \"N\""));
    assert!(n.examples[1].reason.starts_with("negated (term_modifiers"));
    assert_eq!(n.examples[2].reason, "note_id 99 is not in note.csv");
    assert_eq!(n.examples[2].line, 5);
    let p = report(&load, "person.csv");
    assert_eq!((p.rows, p.used), (5, 5));
    let v = report(&load, "CONCEPT.tsv");
    assert_eq!((v.rows, v.used, v.skipped), (5, 4, 0));
}

#[test]
fn the_synthetic_generator_round_trips() {
    let generator = Generator::new(EhrConfig::default());
    let vocab = generator.vocabulary();
    let site = generator.site(0, 200);
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in tables(vocab, &site) {
        write(dir.path(), name, &text);
    }
    let load = load(dir.path(), "person_id").unwrap();
    for f in &load.files {
        assert_eq!(f.skipped, 0, "{:?}", f.skipped_summary());
        if !f.path.ends_with("concept.csv") {
            assert_eq!(f.used, f.rows, "{}", f.path.display());
        }
    }

    let mut by_person: std::collections::BTreeMap<u64, Timeline> = Default::default();
    for e in &site.events {
        let c = &vocab.concepts[e.concept as usize];
        by_person.entry(e.person_id).or_default().insert((
            e.day,
            c.system.as_str().to_string(),
            c.code.clone(),
        ));
    }
    let mut expected: Vec<Timeline> = by_person.into_values().collect();
    expected.sort();
    let t = &load.timelines;
    assert_eq!(t.patients(), expected.len());
    let triples: usize = expected.iter().map(BTreeSet::len).sum();
    assert_eq!(t.events.len(), triples);
    assert_eq!(timelines(t), expected);
    for (k, m) in t.concepts.iter().zip(&t.modalities) {
        let note = k.0 == "CUI";
        assert_eq!(*m == Modality::Note, note, "{k:?}");
    }
    let persons = report(&load, "person.csv");
    assert_eq!(persons.used, 200);
}

#[test]
fn concepts_that_resolve_alike_are_merged() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "condition_occurrence.csv",
        "person_id,condition_concept_id,condition_start_date,condition_source_concept_id\n\
         1,5,2021-01-02,\n\
         1,6,2021-01-02,\n\
         1,6,2021-01-01,\n\
         1,0,2021-01-03,5\n\
         2,7,2021-01-01,\n",
    );
    write(
        dir.path(),
        "concept.csv",
        "concept_id,vocabulary_id,concept_code\n5,ICD10CM,E11.9\n6,ICD10CM,E11.9\n7,LOINC,4548-4\n",
    );
    let t = load(dir.path(), "person_id").unwrap().timelines;
    assert_eq!(
        t.concepts,
        vec![key("ICD10CM", "E11.9"), key("LOINC", "4548-4")]
    );
    assert_eq!(t.modalities.len(), 2);
    assert_eq!(t.offsets, vec![0, 3, 4]);
    let days: Vec<(i32, u32)> = t.patient(0).iter().map(|e| (e.day, e.concept)).collect();
    assert_eq!(
        days,
        vec![
            (day("2021-01-01"), 0),
            (day("2021-01-02"), 0),
            (day("2021-01-03"), 0)
        ]
    );
    assert_eq!(t.patient(1)[0].concept, 1);
}

#[test]
fn without_a_vocabulary_concepts_are_omop_ids() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "measurement.csv",
        "person_id,measurement_concept_id,measurement_date,measurement_source_value\n\
         1,3004410,2021-01-02,4548-4\n\
         1,0,2021-01-02,HBA1C\n",
    );
    let t = load(dir.path(), "person_id").unwrap().timelines;
    let mut keys = t.concepts.clone();
    keys.sort();
    assert_eq!(
        keys,
        vec![key("MEASUREMENT_SOURCE", "HBA1C"), key("OMOP", "3004410")]
    );
}

#[test]
fn a_missing_column_names_the_file_the_column_and_the_header() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "condition_occurrence.csv",
        "PERSON_ID,CONDITION_START_DATE\n1,2021-01-01\n",
    );
    let err = load(dir.path(), "person_id").unwrap_err();
    assert!(matches!(err, EhrError::Format { .. }), "{err:?}");
    let err = err.to_string();
    assert!(
        err.contains("condition_occurrence.csv")
            && err.contains("no column \"condition_concept_id\" (the concept id)")
            && err.contains("PERSON_ID, CONDITION_START_DATE"),
        "{err}"
    );

    write(
        dir.path(),
        "condition_occurrence.csv",
        "person_id,condition_concept_id,condition_end_date\n1,5,2021-01-01\n",
    );
    let err = load(dir.path(), "person_id").unwrap_err().to_string();
    assert!(
        err.contains("\"condition_start_date\" or \"condition_start_datetime\"")
            && err.contains("the event date"),
        "{err}"
    );

    write(
        dir.path(),
        "condition_occurrence.csv",
        "patient,condition_concept_id,condition_start_date\n1,5,2021-01-01\n",
    );
    let err = load(dir.path(), "person_id").unwrap_err().to_string();
    assert!(err.contains("\"person_id\" (the privacy unit)"), "{err}");

    std::fs::remove_file(dir.path().join("condition_occurrence.csv")).unwrap();
    write(
        dir.path(),
        "note_nlp.csv",
        "note_id,note_nlp_concept_id\n1,5\n",
    );
    let err = load(dir.path(), "person_id").unwrap_err().to_string();
    assert!(
        err.contains("note_nlp.csv") && err.contains("no note.csv to join on note_id"),
        "{err}"
    );
    write(dir.path(), "note.csv", "note_id,note_date\n1,2021-01-01\n");
    let err = load(dir.path(), "person_id").unwrap_err().to_string();
    assert!(err.contains("note.csv: no column \"person_id\""), "{err}");
}

#[test]
fn a_folder_without_event_tables_says_what_it_expected_and_found() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(dir.path(), "person_id").unwrap_err().to_string();
    assert!(
        err.contains("no OMOP event table")
            && err.contains("condition_occurrence, drug_exposure")
            && err.contains("the folder has: nothing"),
        "{err}"
    );
    write(dir.path(), "person.csv", "person_id\n1\n");
    write(dir.path(), "visits.parquet", "");
    let err = load(dir.path(), "person_id").unwrap_err().to_string();
    assert!(err.contains("person.csv, visits.parquet"), "{err}");
    let err = load(&dir.path().join("missing"), "person_id")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("cannot read"), "{err}");
}

#[test]
fn the_privacy_unit_must_be_person_id() {
    let dir = tempfile::tempdir().unwrap();
    hand_written(dir.path());
    let err = load(dir.path(), "patient").unwrap_err().to_string();
    assert!(
        err.contains("\"patient\"") && err.contains("identify individuals by person_id"),
        "{err}"
    );
}

#[test]
fn two_files_for_one_table_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = "person_id,drug_concept_id,drug_exposure_start_date\n1,5,2021-01-01\n";
    write(dir.path(), "drug_exposure.csv", text);
    write(dir.path(), "DRUG_EXPOSURE.tsv", &text.replace(',', "\t"));
    let err = load(dir.path(), "person_id").unwrap_err().to_string();
    assert!(err.contains("two files for table drug_exposure"), "{err}");
    std::fs::remove_file(dir.path().join("drug_exposure.csv")).unwrap();
    let t = load(dir.path(), "person_id").unwrap().timelines;
    assert_eq!(t.events.len(), 1, "the tab-separated file alone loads");
}

#[test]
fn an_empty_table_file_is_a_format_error() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "procedure_occurrence.csv", "");
    let err = load(dir.path(), "person_id").unwrap_err().to_string();
    assert!(
        err.contains("procedure_occurrence.csv") && err.contains("empty file"),
        "{err}"
    );
    // A header alone is an empty table, not an error.
    write(
        dir.path(),
        "procedure_occurrence.csv",
        "\u{feff}person_id,procedure_concept_id,procedure_date\n",
    );
    let load = load(dir.path(), "person_id").unwrap();
    assert_eq!(load.timelines.patients(), 0);
    assert_eq!(load.files[0].rows, 0);
}

#[test]
fn cells_read_like_database_exports_write_them() {
    assert_eq!(parse_id(b" 123 "), Ok(Some(123)));
    assert_eq!(parse_id(b"2000000001.0"), Ok(Some(2_000_000_001)));
    for empty in [&b""[..], b"0", b"0.0", b"NULL", b"\\N", b"NA"] {
        assert_eq!(parse_id(empty), Ok(None), "{empty:?}");
    }
    for bad in [&b"12a"[..], b"1.5", b"-", b"99999999999999999999", b"1e5"] {
        assert_eq!(parse_id(bad), Err(()), "{bad:?}");
    }
    assert_eq!(person_cell(b" 42.0 "), Some(&b"42"[..]));
    assert_eq!(person_cell(b"p-42"), Some(&b"p-42"[..]));
    assert_eq!(person_cell(b"null"), None);
    assert_eq!(parse_date(b"20210304"), parse_day("2021-03-04"));
    assert_eq!(parse_date(b"2021-03-04 10:00:00"), parse_day("2021-03-04"));
    assert_eq!(parse_date(b"20211304"), None);
    assert_eq!(parse_date(b"04/03/2021"), None);
}

#[test]
fn the_id_hasher_spreads_strided_ids() {
    // Ids sharing a large power-of-two stride must not share buckets.
    let mut buckets = HashSet::new();
    for i in 0..1024i64 {
        let mut h = IdHasher::default();
        h.write_i64(i << 20);
        buckets.insert(h.finish() & 1023);
    }
    assert!(buckets.len() > 500, "{}", buckets.len());
}

/// Load speed on a real-sized folder: `SILO_OMOP_BENCH=<folder> cargo test --release -p
/// silo-client --lib omop::tests::load_speed -- --ignored --nocapture` (e.g. a site of
/// `silo synth ehr --sites 1 --patients 100000`).
#[test]
#[ignore = "timing; needs SILO_OMOP_BENCH"]
fn load_speed() {
    let Some(dir) = std::env::var_os("SILO_OMOP_BENCH") else {
        return;
    };
    let start = std::time::Instant::now();
    let load = load(Path::new(&dir), "person_id").unwrap();
    let seconds = start.elapsed().as_secs_f64();
    let rows: u64 = load.files.iter().map(|f| f.rows).sum();
    println!(
        "{rows} rows, {} patients, {} events in {seconds:.2} s: {:.1} M rows/s",
        load.timelines.patients(),
        load.timelines.events.len(),
        rows as f64 / seconds / 1e6
    );
}

//! `silo-site check` on EHR datasets, run as a process: patients, events, concepts per
//! modality, the date span and every file read; skipped rows as warnings; unreadable
//! folders as errors with exit 2.

mod common;

use common::{check, text};
use std::collections::HashSet;
use std::path::Path;

use silo_common::synth::ehr::omop::{iso_date, tables};
use silo_common::synth::ehr::{EhrConfig, Generator};

/// `site.toml` in `dir` with one `omop` dataset per `(name, folder, privacy unit)`.
fn write_config(dir: &Path, datasets: &[(&str, &str, &str)]) -> std::path::PathBuf {
    let mut config = String::from(
        "name = \"hospital-a\"\ncoordinator = \"http://127.0.0.1:7443\"\ndata_dir = \"state\"\n\
         insecure = true\n\n[policy]\nallowed_kinds = [\"pmi_svd\"]\nmax_epsilon_per_job = 2.0\n",
    );
    for (name, folder, unit) in datasets {
        std::fs::create_dir_all(dir.join(folder)).unwrap();
        config.push_str(&format!(
            "\n[[datasets]]\nname = \"{name}\"\nkind = \"omop\"\npath = \"{folder}\"\n\
             privacy_unit = \"{unit}\"\nepsilon_budget = 4.0\ndelta = 1e-6\n"
        ));
    }
    let path = dir.join("site.toml");
    std::fs::write(&path, config).unwrap();
    path
}

#[test]
fn check_summarises_an_omop_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let generator = Generator::new(EhrConfig::default());
    let site = generator.site(0, 60);
    let cfg = write_config(dir.path(), &[("ehr", "omop", "person_id")]);
    for (name, csv) in tables(generator.vocabulary(), &site) {
        std::fs::write(dir.path().join("omop").join(name), csv).unwrap();
    }
    let triples: HashSet<(u64, i32, u32)> = site
        .events
        .iter()
        .map(|e| (e.person_id, e.day, e.concept))
        .collect();
    let patients: HashSet<u64> = site.events.iter().map(|e| e.person_id).collect();
    let first = site.events.iter().map(|e| e.day).min().unwrap();
    let last = site.events.iter().map(|e| e.day).max().unwrap();

    let out = check(&cfg, false);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let headline = format!(
        "ehr (omop): {} patients, {} events, {} to {}",
        patients.len(),
        triples.len(),
        iso_date(first),
        iso_date(last)
    );
    assert!(stdout.contains(&headline), "{headline}\n{stdout}");
    assert!(stdout.contains("  codes "), "{stdout}");
    assert!(stdout.contains("  note concepts "), "{stdout}");
    assert!(stdout.contains("note_nlp.csv"), "{stdout}");
    assert!(!stdout.contains("warning"), "{stdout}");
    assert!(
        !dir.path().join("state").exists(),
        "check must not create the data dir"
    );

    let out = check(&cfg, true);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let d = &json["datasets"][0];
    assert_eq!(d["kind"], "omop");
    assert_eq!(d["rows"].as_u64(), Some(triples.len() as u64));
    assert_eq!(d["units"].as_u64(), Some(patients.len() as u64));
    let ehr = &d["ehr"];
    assert_eq!(ehr["patients"].as_u64(), Some(patients.len() as u64));
    assert_eq!(ehr["first_date"].as_str(), Some(iso_date(first).as_str()));
    assert_eq!(ehr["last_date"].as_str(), Some(iso_date(last).as_str()));
    let (codes, notes) = (&ehr["modalities"]["code"], &ehr["modalities"]["note"]);
    assert_eq!(
        codes["events"].as_u64().unwrap() + notes["events"].as_u64().unwrap(),
        triples.len() as u64
    );
    let vocab = generator.vocabulary();
    let used: HashSet<u32> = site.events.iter().map(|e| e.concept).collect();
    let note_concepts = used
        .iter()
        .filter(|&&c| vocab.concepts[c as usize].system.as_str() == "CUI")
        .count() as u64;
    assert_eq!(notes["concepts"].as_u64(), Some(note_concepts));
    assert_eq!(
        codes["concepts"].as_u64(),
        Some(used.len() as u64 - note_concepts)
    );
    let files = ehr["files"].as_array().unwrap();
    // note.csv is not read: the synthetic note_nlp carries person_id and note_date.
    assert_eq!(files.len(), 6, "{files:?}");
    assert!(files.iter().all(|f| f["skipped"] == 0));
}

#[test]
fn check_warns_about_skipped_rows_and_refuses_unreadable_folders() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &[("ehr", "omop", "person_id")]);
    std::fs::write(
        dir.path().join("omop/CONDITION_OCCURRENCE.csv"),
        "PERSON_ID,CONDITION_CONCEPT_ID,CONDITION_START_DATE\n1,201826,2021-03-04\n\
         2,201826,2021-02-30\n",
    )
    .unwrap();
    let out = check(&cfg, false);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("ehr (omop): 1 patients, 1 events, 2021-03-04 to 2021-03-04"),
        "{stdout}"
    );
    let warning = stdout
        .lines()
        .find(|l| l.starts_with("warning: dataset ehr: "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        warning.contains(
            "CONDITION_OCCURRENCE.csv: 1 of 2 row(s) skipped (line 3: bad date \"2021-02-30\")"
        ),
        "{warning}"
    );

    // Every unreadable dataset is an error naming it: a missing column, an empty
    // folder, a privacy unit OMOP does not have.
    let cfg = write_config(
        dir.path(),
        &[
            ("ehr", "omop", "person_id"),
            ("broken", "broken", "person_id"),
            ("empty", "empty", "person_id"),
            ("patients", "omop", "patient_id"),
        ],
    );
    std::fs::write(
        dir.path().join("broken/drug_exposure.csv"),
        "person_id,drug_exposure_start_date\n1,2021-01-01\n",
    )
    .unwrap();
    let out = check(&cfg, false);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    let errors: Vec<&str> = stderr.lines().collect();
    assert_eq!(errors.len(), 3, "{stderr}");
    assert!(
        errors[0].starts_with("error: dataset broken: ")
            && errors[0].contains("drug_exposure.csv: no column \"drug_concept_id\""),
        "{stderr}"
    );
    assert!(
        errors[1].starts_with("error: dataset empty: ")
            && errors[1].contains("no OMOP event table"),
        "{stderr}"
    );
    assert!(
        errors[2].starts_with("error: dataset patients: ") && errors[2].contains("person_id"),
        "{stderr}"
    );
    assert!(text(&out.stdout).contains("not ready: 3 problem(s)"));

    let out = check(&cfg, true);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["datasets"][0]["ehr"]["events"], 1);
    assert!(json["datasets"][1]["ehr"].is_null());
    assert_eq!(json["errors"].as_array().unwrap().len(), 3);
    assert_eq!(json["warnings"].as_array().unwrap().len(), 1, "{json}");
}

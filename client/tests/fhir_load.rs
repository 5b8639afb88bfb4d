//! A `kind = "fhir"` dataset as a site holds it — the FHIR folder and the dictionary that
//! `silo synth ehr --format fhir` writes — read through the dataset entry point the
//! executors use, and summarised as `silo-site check` does.

use std::path::Path;

use silo_client::config::{DatasetConfig, DatasetKind};
use silo_client::data::ehr::{EhrError, load};
use silo_common::ehr::Modality;
use silo_common::synth::ehr::{EhrConfig, Generator, System, fhir};

fn dataset(path: &Path, dictionary: Option<&Path>) -> DatasetConfig {
    DatasetConfig {
        name: "notes".into(),
        kind: DatasetKind::Fhir,
        path: Some(path.to_path_buf()),
        privacy_unit: "Patient".into(),
        epsilon_budget: 1.0,
        delta: 1e-6,
        dictionary: dictionary.map(Path::to_path_buf),
        image: None,
        text: None,
        columns: None,
    }
}

#[test]
fn synthetic_fhir_site_loads_through_the_dataset_entry_point() {
    let generator = Generator::new(EhrConfig {
        seed: 2,
        ..EhrConfig::default()
    });
    let vocab = generator.vocabulary();
    let site = generator.site(0, 300);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("fhir");
    std::fs::create_dir(&dir).unwrap();
    for (name, text) in fhir::ndjson(vocab, &site) {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let dictionary = tmp.path().join("dictionary.csv");
    std::fs::write(&dictionary, vocab.dictionary_csv()).unwrap();

    let loaded = load(&dataset(&dir, Some(&dictionary))).unwrap();
    let summary = loaded.timelines.summary();
    assert_eq!(summary.patients, 300);
    assert_eq!(summary.events, site.events.len() as u64);
    let notes = site
        .events
        .iter()
        .filter(|e| vocab.concepts[e.concept as usize].system == System::Cui)
        .count() as u64;
    let by_modality = |m: Modality| {
        summary
            .modalities
            .iter()
            .find(|s| s.modality == m)
            .unwrap()
            .events
    };
    assert_eq!(by_modality(Modality::Note), notes);
    assert_eq!(
        by_modality(Modality::Code),
        site.events.len() as u64 - notes
    );
    assert!(loaded.files.iter().all(|f| f.skipped_summary().is_none()));
}

#[test]
fn fhir_dataset_errors_name_the_folder() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("visits.csv"), "person_id\n1\n").unwrap();
    let err = load(&dataset(tmp.path(), None)).unwrap_err();
    assert!(matches!(err, EhrError::Format { .. }));
    let text = err.to_string();
    assert!(
        text.starts_with(&tmp.path().display().to_string()),
        "{text}"
    );
    assert!(text.contains("no FHIR files"), "{text}");
}

#[test]
fn fhir_and_omop_renderings_of_a_site_load_to_the_same_timelines() {
    let generator = Generator::new(EhrConfig {
        seed: 8,
        clusters: 10,
        ..EhrConfig::default()
    });
    let vocab = generator.vocabulary();
    let site = generator.site(2, 150);
    let tmp = tempfile::tempdir().unwrap();
    let (fhir_dir, omop_dir) = (tmp.path().join("fhir"), tmp.path().join("omop"));
    std::fs::create_dir(&fhir_dir).unwrap();
    std::fs::create_dir(&omop_dir).unwrap();
    for (name, text) in fhir::ndjson(vocab, &site) {
        std::fs::write(fhir_dir.join(name), text).unwrap();
    }
    for (name, text) in silo_common::synth::ehr::omop::tables(vocab, &site) {
        std::fs::write(omop_dir.join(name), text).unwrap();
    }
    let dictionary = tmp.path().join("dictionary.csv");
    std::fs::write(&dictionary, vocab.dictionary_csv()).unwrap();

    let from_fhir = load(&dataset(&fhir_dir, Some(&dictionary))).unwrap();
    let mut omop = dataset(&omop_dir, None);
    omop.kind = DatasetKind::Omop;
    omop.privacy_unit = "person_id".into();
    let from_omop = load(&omop).unwrap();
    assert_eq!(
        from_fhir.timelines.named_events(),
        from_omop.timelines.named_events()
    );
}

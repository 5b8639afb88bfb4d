//! `pmi_svd` end to end: three hospitals (OMOP and FHIR) select a vocabulary privately,
//! release noisy co-occurrence counts, and the coordinator turns them into concept
//! embeddings evaluated against the generator's true related pairs.

use serde_json::Value;
use silo_tests::jobs;
use silo_tests::{Deployment, EHR_DATASET, EhrFormat, SiteSetup, ehr_generator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hospitals_learn_concept_embeddings_that_beat_each_alone() {
    let deployment = Deployment::start().await;
    let files: Vec<_> = [
        ("hospital-a", EhrFormat::Omop),
        ("hospital-b", EhrFormat::Fhir),
        ("hospital-c", EhrFormat::Omop),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (name, format))| {
        deployment.add_site(SiteSetup::new(name, i).budget(8.0).ehr(1500, format))
    })
    .collect();
    let mut running = Vec::new();
    for f in &files {
        running.push(deployment.start_site(f).await);
    }
    let mut admin = deployment.admin().await;
    let pairs = deployment.path().join("pairs.csv");
    std::fs::write(&pairs, ehr_generator().vocabulary().pairs_csv()).unwrap();

    let spec = format!(
        "kind = \"pmi_svd\"\nname = \"ehr-embeddings\"\ndataset = \"{EHR_DATASET}\"\n\
         min_sites = 3\nround_timeout_seconds = 120\n\
         [privacy]\nepsilon = 2.0\ndelta = 1e-6\n\
         [params]\nvocabulary = \"top:150\"\ndim = 10\nmax_pairs_per_patient = 100\n\
         max_concepts_per_patient = 30\npairs = {:?}\n",
        pairs.display().to_string()
    );
    let id = jobs::submit_toml(&mut admin, spec).await;
    let done = jobs::wait_for_end(&mut admin, &id).await;
    assert_eq!(done.state, "succeeded", "{} {:?}", done.reason, done.sites);

    let files_out = jobs::result_files(&mut admin, &id).await.unwrap();
    let names: Vec<&str> = files_out.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["embeddings.csv", "embeddings.npy", "report.json"]);
    let report: Value = serde_json::from_slice(&files_out[2].1).unwrap();
    assert_eq!(report["kind"], "pmi_svd");
    let size = report["vocabulary"]["size"].as_u64().unwrap();
    assert!((100..=150).contains(&size), "vocabulary of {size}");
    let csv = std::str::from_utf8(&files_out[0].1).unwrap();
    assert_eq!(csv.lines().count() as u64, size + 1);
    let auc = report["evaluation"]["federated"]["overall"]["auc"]
        .as_f64()
        .unwrap();
    let best = report["evaluation"]["best_single_site"]["auc"]
        .as_f64()
        .unwrap();
    assert!(auc > 0.75, "federated AUC {auc}");
    assert!(auc > best, "federated {auc} vs best single site {best}");

    // The report composes each site's two releases (not their plain sum).
    for (site, e) in report["epsilon_spent"].as_object().unwrap() {
        let e = e.as_f64().unwrap();
        assert!(
            e <= 2.0 + 1e-6 && e > 1.5,
            "{site}: the job's composed ε is {e}"
        );
    }

    // Two charges per site (vocabulary, counts), composing to at most the job's ε.
    for f in &files {
        let entries: Vec<_> = f
            .ledger_entries()
            .into_iter()
            .filter(|e| e.dataset == EHR_DATASET)
            .collect();
        assert_eq!(entries.len(), 2, "{}: {entries:?}", f.name);
        let spent = entries.last().unwrap().epsilon_spent;
        assert!(spent <= 2.0 + 1e-6, "{}: spent {spent}", f.name);
        assert!(spent > 1.5, "{}: spent {spent}", f.name);
    }
    for site in running {
        site.stop().await;
    }
}

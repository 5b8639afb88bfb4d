use serde_json::Value;
use silo_common::ehr::cooccur::{self, CooccurrenceParams};
use silo_common::ehr::plan::{CountsRelease, PmiPlan};
use silo_common::ehr::simulate::synthetic_timelines;
use silo_common::ehr::vocab::vocabulary_index;
use silo_common::ehr::{ConceptKey, Timelines};
use silo_common::privacy::noise::SimulationRng;
use silo_common::spec::JobSpec;
use silo_common::synth::ehr::{EhrConfig, Generator};

use super::PmiSvd;
use crate::jobs::{FinalizeContext, JobKind};

struct Federation {
    sites: Vec<Timelines>,
    dir: tempfile::TempDir,
}

fn federation(patients: usize) -> Federation {
    let g = Generator::new(EhrConfig::default());
    let sites = (0..3)
        .map(|s| synthetic_timelines(g.vocabulary(), &g.site(s, patients)))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pairs.csv"), g.vocabulary().pairs_csv()).unwrap();
    Federation { sites, dir }
}

fn spec(f: &Federation, params: &str) -> JobSpec {
    let pairs = f.dir.path().join("pairs.csv");
    JobSpec::parse_toml(
        &format!(
            "kind = \"pmi_svd\"\nname = \"e\"\ndataset = \"ehr\"\n[privacy]\nepsilon = 4.0\ndelta = 1e-6\n\
             [params]\ndim = 10\nmax_pairs_per_patient = 100\nmax_concepts_per_patient = 30\n\
             pairs = {:?}\n{params}",
            pairs.display().to_string()
        ),
        "test",
    )
    .unwrap()
}

/// What a site daemon sends for the counts round, given the vocabulary payload.
fn counts_release(
    plan: &PmiPlan,
    t: &Timelines,
    payload: &[u8],
    rng: &mut SimulationRng,
) -> Vec<u8> {
    let vocabulary: Vec<ConceptKey> = serde_json::from_slice(payload).unwrap();
    let p = plan.params();
    let map = vocabulary_index(&t.concepts, &vocabulary);
    let exact = cooccur::count(
        t,
        &map,
        vocabulary.len(),
        CooccurrenceParams {
            window_days: p.window_days,
            max_pairs_per_patient: p.max_pairs_per_patient as usize,
        },
        1,
        &mut |_| {},
    );
    plan.release_counts(exact, rng).unwrap().to_bytes()
}

#[test]
fn two_rounds_from_vocabulary_selection_to_evaluated_embeddings() {
    let f = federation(1500);
    let spec = spec(&f, "vocabulary = \"top:150\"\n");
    let plan = PmiPlan::new(&spec).unwrap();
    let mut job = PmiSvd::new(&spec).unwrap();
    assert_eq!(job.rounds(), 2);
    let mut rng = SimulationRng::seeded_insecure(11);

    let round1 = job.plan_round(1).unwrap();
    let params: Value = serde_json::from_slice(&round1.params_json).unwrap();
    assert_eq!(params["stage"], "vocabulary");
    for (s, t) in f.sites.iter().enumerate() {
        let counts = cooccur::concept_patients(t, 30, 1);
        let release = plan
            .release_vocabulary(&t.concepts, &counts, &mut rng)
            .unwrap();
        job.on_result(1, &format!("site-{s}"), &release.to_json())
            .unwrap();
    }
    job.end_round(1).unwrap();
    assert!(job.plan_round(3).is_err());

    let round2 = job.plan_round(2).unwrap();
    let vocabulary: Vec<ConceptKey> = serde_json::from_slice(&round2.payload).unwrap();
    assert!(
        vocabulary.len() > 100 && vocabulary.len() <= 150,
        "{}",
        vocabulary.len()
    );
    for (s, t) in f.sites.iter().enumerate() {
        let bytes = counts_release(&plan, t, &round2.payload, &mut rng);
        job.on_result(2, &format!("site-{s}"), &bytes).unwrap();
    }
    job.end_round(2).unwrap();
    let out = job
        .finalize(&FinalizeContext {
            job_id: "job-1",
            spec: &spec,
            charges: &[],
        })
        .unwrap();
    let names: Vec<&str> = out.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["embeddings.csv", "embeddings.npy", "report.json"]);
    let csv = String::from_utf8(out.files[0].1.clone()).unwrap();
    assert_eq!(csv.lines().count(), vocabulary.len() + 1);
    assert!(csv.starts_with("system,code,v1,"));
    let npy = &out.files[1].1;
    assert_eq!(&npy[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    assert_eq!((10 + header_len) % 64, 0);
    let dim = out.summary["dim"].as_u64().unwrap() as usize;
    assert_eq!(npy.len(), 10 + header_len + 4 * vocabulary.len() * dim);
    let report: Value = serde_json::from_slice(&out.files[2].1).unwrap();
    let auc = report["evaluation"]["federated"]["overall"]["auc"]
        .as_f64()
        .unwrap();
    let best = report["evaluation"]["best_single_site"]["auc"]
        .as_f64()
        .unwrap();
    assert!(auc > 0.7, "federated AUC {auc}");
    assert!(
        auc > best,
        "federated {auc} must beat the best single site {best}"
    );
    assert_eq!(report["vocabulary"]["size"], vocabulary.len());
    assert!((out.summary["auc"].as_f64().unwrap() - auc).abs() < 1e-12);
}

#[test]
fn a_vocabulary_file_means_one_round_and_releases_must_match_the_plan() {
    let f = federation(300);
    let list = f.dir.path().join("concepts.csv");
    let concepts: Vec<&ConceptKey> = f.sites[0].concepts.iter().take(40).collect();
    let mut text = String::from("system,code\n");
    for (s, c) in &concepts {
        text.push_str(&format!("{s},{c}\n"));
    }
    std::fs::write(&list, text).unwrap();
    let spec = spec(
        &f,
        &format!("vocabulary = {:?}\n", list.display().to_string()),
    );
    let plan = PmiPlan::new(&spec).unwrap();
    let mut job = PmiSvd::new(&spec).unwrap();
    assert_eq!(job.rounds(), 1);
    let round = job.plan_round(1).unwrap();
    let mut rng = SimulationRng::seeded_insecure(1);
    let good = counts_release(&plan, &f.sites[0], &round.payload, &mut rng);

    // Less noise than planned: refused.
    let mut weak = CountsRelease::from_bytes(&good).unwrap();
    weak.header.noise_std *= 0.5;
    let err = job.on_result(1, "a", &weak.to_bytes()).unwrap_err();
    assert!(err.to_string().contains("below the planned"), "{err}");
    // Another vocabulary size: refused.
    let mut other = CountsRelease::from_bytes(&good).unwrap();
    other.header.n = 3;
    other.counts.truncate(3);
    assert!(job.on_result(1, "a", &other.to_bytes()).is_err());
    assert!(job.on_result(1, "a", b"garbage").is_err());
    job.on_result(1, "a", &good).unwrap();
    job.abort_round(1);
    assert!(
        job.end_round(1).is_err(),
        "the aborted attempt is forgotten"
    );
    job.on_result(1, "a", &good).unwrap();
    job.end_round(1).unwrap();
}

#[test]
fn unreadable_spec_files_are_named() {
    let f = federation(10);
    let spec = spec(&f, "vocabulary = \"/nonexistent/concepts.csv\"\n");
    let err = PmiSvd::new(&spec).unwrap_err().to_string();
    assert!(
        err.contains("params.vocabulary") && err.contains("/nonexistent/concepts.csv"),
        "{err}"
    );
}

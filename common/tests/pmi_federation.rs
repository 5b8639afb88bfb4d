//! The `pmi_svd` acceptance criterion, on the synthetic generator's data: three sites of
//! 100,000 patients each, ε = 1 per site (δ = 1e-6), vocabulary selected privately. The
//! federated embedding's AUC on the true related pairs must be within 0.03 of the
//! centralised non-private pipeline on the same pooled data, and above every site alone.
//!
//! Every step is the one the site daemons and the coordinator run (`PmiPlan` releases,
//! `select_top_k`, `PooledCounts`, `embed_pooled`); only the transport is skipped (the
//! gRPC path is covered by `tests/tests/pmi.rs`). Noise is seeded here for a reproducible
//! test, which only `SimulationRng::seeded_insecure` allows.

use silo_common::ehr::simulate::{simulate, synthetic_timelines};
use silo_common::eval::KnownPair;
use silo_common::privacy::noise::SimulationRng;
use silo_common::spec::JobSpec;
use silo_common::synth::ehr::{EhrConfig, Generator};

#[test]
fn federated_embeddings_at_epsilon_one_are_close_to_the_central_ceiling() {
    let spec = JobSpec::parse_toml(
        "kind = \"pmi_svd\"\nname = \"accept\"\ndataset = \"ehr\"\n\
         [privacy]\nepsilon = 1.0\ndelta = 1e-6\n\
         [params]\nvocabulary = \"top:300\"\ndim = 20\nmax_pairs_per_patient = 100\n\
         max_concepts_per_patient = 30\n",
        "acceptance spec",
    )
    .unwrap();
    let generator = Generator::new(EhrConfig::default());
    let vocab = generator.vocabulary();
    let sites: Vec<_> = (0..3)
        .map(|s| synthetic_timelines(vocab, &generator.site(s, 100_000)))
        .collect();
    let pairs: Vec<KnownPair> = vocab.known_pairs();
    let mut rng = SimulationRng::seeded_insecure(2026);
    let sim = simulate(&spec, &sites, &pairs, &mut rng).unwrap();
    let federated = sim.federated.overall.auc.unwrap();
    let central = sim.central.overall.auc.unwrap();
    let singles: Vec<f64> = sim
        .single_sites
        .iter()
        .map(|r| r.overall.auc.unwrap())
        .collect();
    eprintln!("federated {federated:.4}, central {central:.4}, single sites {singles:?}");
    assert!(
        federated >= central - 0.03,
        "federated AUC {federated:.4} is more than 0.03 below the central {central:.4}"
    );
    for s in &singles {
        assert!(
            federated > *s,
            "federated {federated:.4} vs a single site {s:.4}"
        );
    }
    assert!(
        sim.federated.overall.pairs_used * 10 >= pairs.len() * 9,
        "the private vocabulary lost too many pairs: {} of {}",
        sim.federated.overall.pairs_used,
        pairs.len()
    );
}

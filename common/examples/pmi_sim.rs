//! Simulated pmi_svd federation: `cargo run --release -p silo-common --example pmi_sim -- PATIENTS EPS [params toml lines]`.
use silo_common::ehr::simulate::{simulate, synthetic_timelines};
use silo_common::eval::KnownPair;
use silo_common::privacy::noise::SimulationRng;
use silo_common::spec::JobSpec;
use silo_common::synth::ehr::{EhrConfig, Generator};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let patients: usize = args.get(1).map_or(10_000, |a| a.parse().unwrap());
    let eps: f64 = args.get(2).map_or(1.0, |a| a.parse().unwrap());
    let extra = args.get(3).cloned().unwrap_or_default().replace(';', "\n");
    let spec = JobSpec::parse_toml(&format!("kind = \"pmi_svd\"\nname = \"s\"\ndataset = \"ehr\"\n[privacy]\nepsilon = {eps}\ndelta = 1e-6\n[params]\n{extra}\n"), "sim").unwrap();
    let t0 = std::time::Instant::now();
    let g = Generator::new(EhrConfig::default());
    let vocab = g.vocabulary();
    let sites: Vec<_> = (0..3)
        .map(|s| synthetic_timelines(vocab, &g.site(s, patients)))
        .collect();
    let pairs: Vec<KnownPair> = vocab.known_pairs();
    println!(
        "vocab {} concepts, {} pairs, data {:?}",
        vocab.concepts.len(),
        pairs.len(),
        t0.elapsed()
    );
    let mut rng = SimulationRng::seeded_insecure(5);
    let sim = simulate(&spec, &sites, &pairs, &mut rng).unwrap();
    println!("vocabulary {}", sim.vocabulary.len());
    println!(
        "federated {:.4} central {:.4} sites {:?} ({:?})",
        sim.federated.overall.auc.unwrap(),
        sim.central.overall.auc.unwrap(),
        sim.single_sites
            .iter()
            .map(|s| (s.overall.auc.unwrap() * 1e4).round() / 1e4)
            .collect::<Vec<_>>(),
        t0.elapsed()
    );
    for r in &sim.federated.relations {
        println!("  {} {:?}", r.relation, r.auc);
    }
}

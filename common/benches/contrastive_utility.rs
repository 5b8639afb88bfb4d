//! Utility of `contrastive_svd` against ε on the synthetic linear model: sin θ of the
//! learned image and text encoders to the true U1, U2, for 1 and 3 sites, non-private and
//! at ε = 1, 3, 8 per site (δ = 1e-5). Every step is the one sites and the coordinator run
//! (`ContrastivePlan::sums`, `release`, `encoders`); the noise is seeded (simulation only).
//!
//! `cargo bench -p silo-common --bench contrastive_utility`

use silo_common::contrastive::{ContrastivePlan, ContrastiveRelease, Features, encoders};
use silo_common::privacy::noise::SimulationRng;
use silo_common::spec::JobSpec;
use silo_common::synth::pairs::{Generator, PairsConfig, SitePairs, sin_theta};

const PAIRS_PER_SITE: usize = 10_000;
const REPEATS: u64 = 5;

fn features(site: &SitePairs) -> (Vec<f32>, Vec<f32>) {
    let (mut image, mut text) = (Vec::new(), Vec::new());
    for i in (0..site.pairs()).filter(|&i| site.split[i] == 0) {
        image.extend_from_slice(&site.image[i * site.d1..(i + 1) * site.d1]);
        text.extend_from_slice(&site.text[i * site.d2..(i + 1) * site.d2]);
    }
    (image, text)
}

fn main() {
    let generator = Generator::new(PairsConfig::default()).expect("default config");
    let sites: Vec<SitePairs> = (0..3)
        .map(|s| generator.site(s, PAIRS_PER_SITE, PAIRS_PER_SITE / 2))
        .collect();
    let truth = generator.truth();
    println!(
        "contrastive_svd utility: {} pairs per site (80 % train), d1 = {}, d2 = {}, rank {}, clip 1.5, mean of {REPEATS} noise draws",
        PAIRS_PER_SITE,
        generator.config().dim_image,
        generator.config().dim_text,
        generator.config().rank
    );
    println!(
        "{:>12} {:>6} {:>14} {:>14}",
        "epsilon", "sites", "sin θ image", "sin θ text"
    );
    for epsilon in [None, Some(1.0), Some(3.0), Some(8.0)] {
        // Non-private: the same sums with (effectively) no noise: ε = 1e6.
        let eps = epsilon.unwrap_or(1e6);
        let spec = JobSpec::parse_toml(
            &format!(
                "kind = \"contrastive_svd\"\nname = \"u\"\ndataset = \"pairs\"\n[privacy]\nepsilon = {eps}\ndelta = 1e-5\n[params]\nrank = {}\nclip_norm = 1.5\n",
                generator.config().rank
            ),
            "bench",
        )
        .expect("spec");
        let plan = ContrastivePlan::new(&spec).expect("plan");
        for n_sites in [1, 3] {
            let (mut sx, mut sy) = (0.0, 0.0);
            for rep in 0..REPEATS {
                let mut rng = SimulationRng::seeded_insecure(rep);
                let releases: Vec<ContrastiveRelease> = sites[..n_sites]
                    .iter()
                    .map(|s| {
                        let (image, text) = features(s);
                        let exact = plan
                            .sums(&Features {
                                image: &image,
                                text: &text,
                                d1: s.d1,
                                d2: s.d2,
                                image_only: &s.image_only,
                                text_only: &s.text_only,
                            })
                            .expect("sums");
                        plan.release(exact, &mut rng).expect("release")
                    })
                    .collect();
                let refs: Vec<&ContrastiveRelease> = releases.iter().collect();
                let enc = encoders(&refs, 1.0, generator.config().rank, 0).expect("svd");
                sx += sin_theta(truth.u1.as_ref(), enc.image.as_ref()).expect("angle");
                sy += sin_theta(truth.u2.as_ref(), enc.text.as_ref()).expect("angle");
            }
            let label = epsilon.map_or("non-private".to_string(), |e| format!("{e}"));
            println!(
                "{label:>12} {n_sites:>6} {:>14.3} {:>14.3}",
                sx / REPEATS as f64,
                sy / REPEATS as f64
            );
        }
    }
}

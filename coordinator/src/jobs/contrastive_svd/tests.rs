use silo_common::contrastive::{ContrastivePlan, ContrastiveRelease, Features};
use silo_common::privacy::noise::SimulationRng;
use silo_common::spec::JobSpec;
use silo_common::tensorfile::read_safetensors;

use super::ContrastiveSvd;
use crate::jobs::{FinalizeContext, JobKind};

fn spec() -> JobSpec {
    JobSpec::parse_toml(
        "kind = \"contrastive_svd\"\nname = \"c\"\ndataset = \"pairs\"\n[privacy]\nepsilon = 2.0\ndelta = 1e-5\n[params]\nrank = 2\n",
        "t",
    )
    .unwrap()
}

/// A site's release over deterministic features of dimension 4 (image) and 3 (text).
fn release(plan: &ContrastivePlan, n: usize, rng: &mut SimulationRng) -> Vec<u8> {
    let image: Vec<f32> = (0..n * 4)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0)
        .collect();
    let text: Vec<f32> = (0..n * 3)
        .map(|i| ((i * 5 % 7) as f32 - 3.0) / 10.0)
        .collect();
    let exact = plan
        .sums(&Features {
            image: &image,
            text: &text,
            d1: 4,
            d2: 3,
            image_only: &[],
            text_only: &[],
        })
        .unwrap();
    plan.release(exact, rng).unwrap().to_json()
}

#[test]
fn one_round_gives_linear_encoders_in_a_safetensors_file() {
    let spec = spec();
    let plan = ContrastivePlan::new(&spec).unwrap();
    let mut job = ContrastiveSvd::new(&spec).unwrap();
    let mut rng = SimulationRng::seeded_insecure(4);
    job.plan_round(1).unwrap();
    assert!(job.plan_round(2).is_err());
    job.on_result(1, "a", &release(&plan, 50, &mut rng))
        .unwrap();
    job.on_result(1, "b", &release(&plan, 80, &mut rng))
        .unwrap();
    job.end_round(1).unwrap();
    let out = job
        .finalize(&FinalizeContext {
            job_id: "job-1",
            spec: &spec,
            charges: &[],
        })
        .unwrap();
    assert_eq!(out.files[0].0, "model.safetensors");
    let tensors = read_safetensors(&out.files[0].1).unwrap();
    let shape = |name: &str| {
        tensors
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no {name}"))
            .shape
            .clone()
    };
    assert_eq!(shape("image_encoder"), [4, 2]);
    assert_eq!(shape("text_encoder"), [3, 2]);
    assert_eq!(shape("singular_values"), [2]);
    assert_eq!(out.summary["rank"], 2);
}

#[test]
fn releases_with_less_noise_or_other_shapes_are_refused() {
    let spec = spec();
    let plan = ContrastivePlan::new(&spec).unwrap();
    let mut job = ContrastiveSvd::new(&spec).unwrap();
    let mut rng = SimulationRng::seeded_insecure(4);
    let good = release(&plan, 10, &mut rng);
    let mut weak = ContrastiveRelease::from_json(&good).unwrap();
    weak.noise_std /= 2.0;
    let err = job.on_result(1, "a", &weak.to_json()).unwrap_err();
    assert!(err.to_string().contains("below the planned"), "{err}");
    job.on_result(1, "a", &good).unwrap();
    let mut other = ContrastiveRelease::from_json(&good).unwrap();
    other.d2 = 2;
    other.values.truncate(other.values.len() - 5);
    assert!(job.on_result(1, "b", &other.to_json()).is_err());
}

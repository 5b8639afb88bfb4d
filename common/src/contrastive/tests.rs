use faer::Mat;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::privacy::AccountantKind;
use crate::privacy::noise::SimulationRng;
use crate::synth::pairs::sin_theta as angle_to;

fn spec(epsilon: f64, params: &str) -> JobSpec {
    JobSpec::parse_toml(
        &format!(
            "kind = \"contrastive_svd\"\nname = \"c\"\ndataset = \"pairs\"\n[privacy]\nepsilon = {epsilon}\ndelta = 1e-5\n[params]\n{params}"
        ),
        "t",
    )
    .unwrap()
}

fn gaussian(rng: &mut ChaCha20Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn orthonormal(d: usize, r: usize, rng: &mut ChaCha20Rng) -> Mat<f64> {
    let m = Mat::from_fn(d, r, |_, _| gaussian(rng));
    m.as_ref().qr().compute_thin_Q()
}

/// x = U1 z + noise, y = U2 z + noise, feature norms around 1.
struct Model {
    u1: Mat<f64>,
    u2: Mat<f64>,
}

impl Model {
    fn new(d1: usize, d2: usize, r: usize) -> Model {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        Model {
            u1: orthonormal(d1, r, &mut rng),
            u2: orthonormal(d2, r, &mut rng),
        }
    }

    fn site(&self, n: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (d1, d2, r) = (self.u1.nrows(), self.u2.nrows(), self.u1.ncols());
        let (mut image, mut text) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let z: Vec<f64> = (0..r)
                .map(|k| gaussian(&mut rng) * (1.0 + k as f64 * 0.3) / 3.0)
                .collect();
            for a in 0..d1 {
                let v: f64 = (0..r).map(|k| self.u1[(a, k)] * z[k]).sum::<f64>();
                image.push((v + 0.05 * gaussian(&mut rng)) as f32);
            }
            for b in 0..d2 {
                let v: f64 = (0..r).map(|k| self.u2[(b, k)] * z[k]).sum::<f64>();
                text.push((v + 0.05 * gaussian(&mut rng)) as f32);
            }
        }
        (image, text)
    }
}

fn features<'a>(image: &'a [f32], text: &'a [f32], d1: usize, d2: usize) -> Features<'a> {
    Features {
        image,
        text,
        d1,
        d2,
        image_only: &[],
        text_only: &[],
    }
}

#[test]
fn the_release_meets_the_target_and_states_sensitivity_two() {
    let plan = ContrastivePlan::new(&spec(1.0, "")).unwrap();
    let eps = AccountantKind::Pld
        .build()
        .epsilon(&plan.events(), 1e-5)
        .unwrap();
    assert!(eps <= 1.0 + 1e-6 && eps > 0.97, "{eps}");
    assert_eq!(plan.mechanism().l2_sensitivity(), 2.0);
}

#[test]
fn one_row_moves_the_normalised_sums_by_at_most_the_sensitivity() {
    let plan = ContrastivePlan::new(&spec(1.0, "clip_norm = 0.5\n")).unwrap();
    let model = Model::new(6, 5, 2);
    let (image, text) = model.site(20, 3);
    let (d1, d2) = (6, 5);
    let all = plan.sums(&features(&image, &text, d1, d2)).unwrap();
    let less = plan
        .sums(&features(&image[d1..], &text[d2..], d1, d2))
        .unwrap();
    let diff: f64 = all
        .values
        .iter()
        .zip(&less.values)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    assert!(diff <= SENSITIVITY + 1e-12, "{diff}");
    assert!(diff > 1.0, "the pair counted: {diff}");
    // A huge feature is clipped: still within the bound.
    let mut big = image.clone();
    big[..d1].iter_mut().for_each(|v| *v *= 1e6);
    let clipped = plan.sums(&features(&big, &text, d1, d2)).unwrap();
    let diff: f64 = clipped
        .values
        .iter()
        .zip(&less.values)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        .sqrt();
    assert!(diff <= SENSITIVITY + 1e-12, "{diff}");
    let mut nan = image.clone();
    nan[3] = f32::NAN;
    assert!(plan.sums(&features(&nan, &text, d1, d2)).is_err());
    assert!(plan.sums(&features(&image[1..], &text, d1, d2)).is_err());
}

#[test]
fn encoders_recover_the_subspaces_and_improve_with_more_sites() {
    let (d1, d2, r) = (16, 12, 3);
    let model = Model::new(d1, d2, r);
    let plan = ContrastivePlan::new(&spec(2.0, "rank = 3\nclip_norm = 1.0\n")).unwrap();
    let mut rng = SimulationRng::seeded_insecure(9);
    let releases: Vec<ContrastiveRelease> = (0..6)
        .map(|s| {
            let (image, text) = model.site(4000, 100 + s);
            let exact = plan.sums(&features(&image, &text, d1, d2)).unwrap();
            plan.release(exact, &mut rng).unwrap()
        })
        .collect();
    let bytes = releases[0].to_json();
    let back = ContrastiveRelease::from_json(&bytes).unwrap();
    assert_eq!(back.values.len(), releases[0].values.len());
    let worst = back
        .values
        .iter()
        .zip(&releases[0].values)
        .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
        .fold(0.0, f64::max);
    assert!(worst < 1e-12, "JSON round trip off by {worst}");
    let refs: Vec<&ContrastiveRelease> = releases.iter().collect();
    let angle = |k: usize| {
        let e = encoders(&refs[..k], 1.0, r, 0).unwrap();
        (
            angle_to(model.u1.as_ref(), e.image.as_ref()).unwrap(),
            angle_to(model.u2.as_ref(), e.text.as_ref()).unwrap(),
        )
    };
    let (one_x, one_y) = angle(1);
    let (six_x, six_y) = angle(6);
    assert!(
        six_x < one_x && six_y < one_y,
        "one site {one_x},{one_y}; six {six_x},{six_y}"
    );
    assert!(six_x < 0.3 && six_y < 0.3, "{six_x} {six_y}");
    // A random subspace is far.
    let mut g = ChaCha20Rng::seed_from_u64(5);
    assert!(angle_to(model.u1.as_ref(), orthonormal(d1, r, &mut g).as_ref()).unwrap() > 0.5);
}

#[test]
fn malformed_releases_are_refused() {
    assert!(ContrastiveRelease::from_json(b"{}").is_err());
    let bad = ContrastiveRelease {
        d1: 2,
        d2: 2,
        clip_norm: 1.0,
        noise_std: 1.0,
        values: vec![0.0; 3],
    };
    assert!(ContrastiveRelease::from_json(&bad.to_json()).is_err());
}

//! Synthetic image–text feature pairs for `contrastive_svd` and `dp_clip`: the linear
//! representation model of multimodal contrastive learning (Nakada et al. 2023,
//! arXiv 2302.06232), with class structure for zero-shot labels and the ground truth
//! recorded so tests can measure how well the learned encoders recover it.
//!
//! The model, shared by every site:
//! - U1 (d1×r) and U2 (d2×r) with orthonormal columns: the true linear image and text
//!   "decoders" from a shared latent space R^r;
//! - K class means μ_k ~ N(0, I_r), rescaled so that their average squared norm is r;
//! - a sample of class c has latent z = s·(μ_c + w·ξ), ξ ~ N(0, I_r), with w =
//!   [`WITHIN_CLASS`] and s = 1/√(r(1 + w²)) so that E‖z‖² = 1 under a uniform class mix;
//! - its image features x = U1 z + ε1 and text features y = U2 z + ε2, ε ~ N(0, ν²/d · I):
//!   E‖U z‖² = 1 and E‖ε‖² = ν², so ν is the site's noise-to-signal ratio;
//! - a fraction of the pairs are mismatched (the caption belongs to another sample: y is
//!   drawn from that sample's z), as web-scraped pairs are;
//! - unpaired extras: image-only and text-only rows of fresh samples.
//!
//! Sites differ in their class mix (weights ∝ exp(0.8·g_k), g ~ N(0, 1) per site) and in
//! their noise ν (0.3, 0.4, 0.5, 0.6, repeating). Each pair carries its label (the image's
//! class) and a split (0 = train, 1 = held-out test).
//!
//! Everything is a deterministic function of the seed (ChaCha20). The module is pure: it
//! returns structs and safetensors bytes; the CLI (`silo synth pairs`) writes the files.
//! [`sin_theta`] measures how far a learned encoder's subspace is from U1 or U2.

use faer::{Mat, MatRef};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::ehr::gaussian;
use crate::tensorfile::{TensorRef, write_safetensors, write_safetensors_with_metadata};

mod subspace;

pub use subspace::{SubspaceError, matrix_from_rows, sin_theta};

/// Spread of a sample's latent around its class mean, relative to the spread of the means.
pub const WITHIN_CLASS: f64 = 0.6;
/// Spread of the per-site log class weights.
const CLASS_MIX_SPREAD: f64 = 0.8;

/// Parameters of the generator (the defaults are those of `silo synth pairs`).
#[derive(Clone, Debug, PartialEq)]
pub struct PairsConfig {
    /// Image feature dimension d1.
    pub dim_image: usize,
    /// Text feature dimension d2.
    pub dim_text: usize,
    /// Latent dimension r (the rank the encoders should recover).
    pub rank: usize,
    /// Number of classes K.
    pub classes: usize,
    /// Fraction of mismatched pairs, in [0, 1).
    pub mismatch: f64,
    /// Fraction of pairs in the held-out test split, in [0, 1).
    pub test_fraction: f64,
    /// The seed: the ground truth and every site are deterministic functions of it.
    pub seed: u64,
}

impl Default for PairsConfig {
    fn default() -> Self {
        PairsConfig {
            dim_image: 64,
            dim_text: 48,
            rank: 8,
            classes: 10,
            mismatch: 0.1,
            test_fraction: 0.2,
            seed: 1,
        }
    }
}

/// A parameter of [`PairsConfig`] out of its range.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{field} = {value}: expected {expected}")]
pub struct PairsConfigError {
    /// The field (the CLI flag without `--`, with `_` for `-`).
    pub field: &'static str,
    /// The value given.
    pub value: String,
    /// The valid range.
    pub expected: String,
}

impl PairsConfig {
    /// Checks every field; the first problem is returned.
    pub fn validate(&self) -> Result<(), PairsConfigError> {
        let bad = |field, value: String, expected: String| {
            Err(PairsConfigError {
                field,
                value,
                expected,
            })
        };
        if self.dim_image == 0 {
            return bad("dim_image", "0".into(), "at least 1".into());
        }
        if self.dim_text == 0 {
            return bad("dim_text", "0".into(), "at least 1".into());
        }
        let max_rank = self.dim_image.min(self.dim_text);
        if self.rank == 0 || self.rank > max_rank {
            return bad(
                "rank",
                self.rank.to_string(),
                format!("1 to min(dim_image, dim_text) = {max_rank}"),
            );
        }
        if self.classes == 0 {
            return bad("classes", "0".into(), "at least 1".into());
        }
        if !(0.0..1.0).contains(&self.mismatch) {
            return bad(
                "mismatch",
                self.mismatch.to_string(),
                "a fraction in [0, 1)".into(),
            );
        }
        if !(0.0..1.0).contains(&self.test_fraction) {
            return bad(
                "test_fraction",
                self.test_fraction.to_string(),
                "a fraction in [0, 1)".into(),
            );
        }
        Ok(())
    }
}

/// The ground truth shared by all sites.
#[derive(Clone, Debug)]
pub struct Truth {
    /// U1, d1×r, orthonormal columns.
    pub u1: Mat<f64>,
    /// U2, d2×r, orthonormal columns.
    pub u2: Mat<f64>,
    /// The latent class means s·μ_k, K×r (the mean of z within each class).
    pub class_means: Mat<f64>,
}

/// The data of one site. Matrices are row-major `f32`, as written to the files.
#[derive(Clone, Debug, PartialEq)]
pub struct SitePairs {
    /// Site number (0-based).
    pub site: usize,
    /// Image dimension d1.
    pub d1: usize,
    /// Text dimension d2.
    pub d2: usize,
    /// Image features of the pairs, n×d1.
    pub image: Vec<f32>,
    /// Text features of the pairs, n×d2.
    pub text: Vec<f32>,
    /// The class of each pair's image, n.
    pub label: Vec<i64>,
    /// 0 = train, 1 = held-out test, n.
    pub split: Vec<i64>,
    /// Ground truth, not written to the site's file: whether the pair is mismatched.
    pub mismatched: Vec<bool>,
    /// Image-only rows, m1×d1.
    pub image_only: Vec<f32>,
    /// Text-only rows, m2×d2.
    pub text_only: Vec<f32>,
    /// The site's noise-to-signal ratio ν.
    pub noise: f64,
    /// The site's class weights (sum to 1).
    pub class_weights: Vec<f64>,
}

impl SitePairs {
    /// Number of pairs n.
    pub fn pairs(&self) -> usize {
        self.label.len()
    }

    /// Pairs in the held-out test split.
    pub fn test_pairs(&self) -> usize {
        self.split.iter().filter(|&&s| s == 1).count()
    }

    /// Mismatched pairs.
    pub fn mismatched_pairs(&self) -> usize {
        self.mismatched.iter().filter(|&&m| m).count()
    }

    /// Image-only rows.
    pub fn image_only_rows(&self) -> usize {
        self.image_only.len() / self.d1
    }

    /// Text-only rows.
    pub fn text_only_rows(&self) -> usize {
        self.text_only.len() / self.d2
    }
}

/// Site-independent state: the configuration and the ground truth.
#[derive(Clone, Debug)]
pub struct Generator {
    config: PairsConfig,
    truth: Truth,
    /// s = 1/√(r(1 + w²)), the latent scale.
    scale: f64,
}

impl Generator {
    /// Draws the ground truth for a validated `config`.
    pub fn new(config: PairsConfig) -> Result<Generator, PairsConfigError> {
        config.validate()?;
        let (d1, d2, r, k) = (
            config.dim_image,
            config.dim_text,
            config.rank,
            config.classes,
        );
        let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
        let u1 = orthonormal(d1, r, &mut rng);
        let u2 = orthonormal(d2, r, &mut rng);
        let scale = 1.0 / (r as f64 * (1.0 + WITHIN_CLASS * WITHIN_CLASS)).sqrt();
        let mut means = gaussian_values(k * r, &mut rng);
        // Normalise the draw so that the means' average squared norm is exactly r: then
        // E‖z‖² = 1 exactly under a uniform class mix.
        let norm = (means.iter().map(|m| m * m).sum::<f64>() / (k * r) as f64).sqrt();
        means.iter_mut().for_each(|m| *m /= norm);
        let class_means = Mat::from_fn(k, r, |i, j| scale * means[i * r + j]);
        Ok(Generator {
            config,
            truth: Truth {
                u1,
                u2,
                class_means,
            },
            scale,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PairsConfig {
        &self.config
    }

    /// The ground truth.
    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    /// The noise-to-signal ratio ν of site number `site`.
    pub fn site_noise(site: usize) -> f64 {
        0.3 + 0.1 * (site % 4) as f64
    }

    /// Generates site number `site` (0-based) with `pairs` pairs and `unpaired` image-only
    /// and `unpaired` text-only rows. Sites are independent of each other. With fewer than
    /// two pairs nothing can be mismatched (a caption needs another sample to come from).
    pub fn site(&self, site: usize, pairs: usize, unpaired: usize) -> SitePairs {
        let cfg = &self.config;
        let (d1, d2, r) = (cfg.dim_image, cfg.dim_text, cfg.rank);
        let mut rng = ChaCha20Rng::seed_from_u64(
            cfg.seed ^ ((site as u64) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let noise = Self::site_noise(site);
        let mut class_weights: Vec<f64> = (0..cfg.classes)
            .map(|_| (CLASS_MIX_SPREAD * gaussian(&mut rng)).exp())
            .collect();
        let total: f64 = class_weights.iter().sum();
        class_weights.iter_mut().for_each(|w| *w /= total);

        let (labels, z) = self.latents(pairs, &class_weights, &mut rng);
        let image = self.observe(&self.truth.u1, &z, noise, &mut rng);
        // Mismatched pairs take their caption from another sample's latent.
        let n_mismatched = if pairs < 2 {
            0
        } else {
            (cfg.mismatch * pairs as f64).round() as usize
        };
        let mut mismatched = vec![false; pairs];
        let mut text_z = z.clone();
        for i in choose(pairs, n_mismatched, &mut rng) {
            let j = (i + 1 + rng.random_range(0..pairs - 1)) % pairs;
            text_z[i * r..(i + 1) * r].copy_from_slice(&z[j * r..(j + 1) * r]);
            mismatched[i] = true;
        }
        let text = self.observe(&self.truth.u2, &text_z, noise, &mut rng);
        let mut split = vec![0i64; pairs];
        let n_test = (cfg.test_fraction * pairs as f64).round() as usize;
        for i in choose(pairs, n_test, &mut rng) {
            split[i] = 1;
        }

        let (_, z_image) = self.latents(unpaired, &class_weights, &mut rng);
        let image_only = self.observe(&self.truth.u1, &z_image, noise, &mut rng);
        let (_, z_text) = self.latents(unpaired, &class_weights, &mut rng);
        let text_only = self.observe(&self.truth.u2, &z_text, noise, &mut rng);
        debug_assert_eq!((image.len(), text.len()), (pairs * d1, pairs * d2));
        SitePairs {
            site,
            d1,
            d2,
            image,
            text,
            label: labels,
            split,
            mismatched,
            image_only,
            text_only,
            noise,
            class_weights,
        }
    }

    /// `count` labels drawn from `weights` and their latents z (row-major count×r).
    fn latents(
        &self,
        count: usize,
        weights: &[f64],
        rng: &mut ChaCha20Rng,
    ) -> (Vec<i64>, Vec<f64>) {
        let r = self.config.rank;
        let mut labels = Vec::with_capacity(count);
        let mut z = Vec::with_capacity(count * r);
        for _ in 0..count {
            let mut u = rng.random::<f64>();
            let mut class = weights.len() - 1;
            for (k, w) in weights.iter().enumerate() {
                if u < *w {
                    class = k;
                    break;
                }
                u -= w;
            }
            labels.push(class as i64);
            for j in 0..r {
                let mean = self.truth.class_means[(class, j)];
                z.push(mean + self.scale * WITHIN_CLASS * gaussian(rng));
            }
        }
        (labels, z)
    }

    /// Rows U z + ε, ε ~ N(0, ν²/d · I), as row-major `f32`.
    fn observe(&self, u: &Mat<f64>, z: &[f64], noise: f64, rng: &mut ChaCha20Rng) -> Vec<f32> {
        let (d, r) = (u.nrows(), u.ncols());
        let sd = noise / (d as f64).sqrt();
        let mut out = Vec::with_capacity(z.len() / r * d);
        for zi in z.chunks_exact(r) {
            for a in 0..d {
                let signal: f64 = (0..r).map(|k| u[(a, k)] * zi[k]).sum();
                out.push((signal + sd * gaussian(rng)) as f32);
            }
        }
        out
    }

    /// Text-side class prototypes U2 s·μ_k, row-major K×d2: the "prompts" whose text
    /// features zero-shot classification compares images against.
    pub fn class_prompts(&self) -> Vec<f32> {
        let (u2, means) = (&self.truth.u2, &self.truth.class_means);
        let mut out = Vec::with_capacity(means.nrows() * u2.nrows());
        for k in 0..means.nrows() {
            for a in 0..u2.nrows() {
                let v: f64 = (0..u2.ncols()).map(|j| u2[(a, j)] * means[(k, j)]).sum();
                out.push(v as f32);
            }
        }
        out
    }
}

/// `count` distinct indices of 0..n in random order (partial Fisher–Yates).
fn choose(n: usize, count: usize, rng: &mut ChaCha20Rng) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let count = count.min(n);
    for i in 0..count {
        let j = rng.random_range(i..n);
        idx.swap(i, j);
    }
    idx.truncate(count);
    idx
}

fn gaussian_values(count: usize, rng: &mut ChaCha20Rng) -> Vec<f64> {
    (0..count).map(|_| gaussian(rng)).collect()
}

/// A d×r matrix with orthonormal columns: the Q factor of a Gaussian matrix, which is
/// uniformly distributed on the Stiefel manifold.
fn orthonormal(d: usize, r: usize, rng: &mut ChaCha20Rng) -> Mat<f64> {
    let g = gaussian_values(d * r, rng);
    Mat::from_fn(d, r, |i, j| g[i * r + j])
        .qr()
        .compute_thin_Q()
}

/// Row-major `f32` of a matrix, as tensors are stored.
fn row_major(m: MatRef<'_, f64>) -> Vec<f32> {
    let mut out = Vec::with_capacity(m.nrows() * m.ncols());
    for i in 0..m.nrows() {
        for j in 0..m.ncols() {
            out.push(m[(i, j)] as f32);
        }
    }
    out
}

/// A site's file: `image` `[n, d1]` f32, `text` `[n, d2]` f32, `label` `[n]` i64, `split` `[n]`
/// i64 and, when there are any, `image_only` `[m1, d1]` and `text_only` `[m2, d2]` f32.
pub fn to_safetensors(site: &SitePairs) -> Vec<u8> {
    let n = site.pairs();
    let shapes = [
        [n, site.d1],
        [n, site.d2],
        [site.image_only_rows(), site.d1],
        [site.text_only_rows(), site.d2],
    ];
    let mut tensors = vec![
        (
            "image",
            TensorRef::F32 {
                shape: &shapes[0],
                data: &site.image,
            },
        ),
        (
            "text",
            TensorRef::F32 {
                shape: &shapes[1],
                data: &site.text,
            },
        ),
        (
            "label",
            TensorRef::I64 {
                shape: &shapes[0][..1],
                data: &site.label,
            },
        ),
        (
            "split",
            TensorRef::I64 {
                shape: &shapes[0][..1],
                data: &site.split,
            },
        ),
    ];
    if !site.image_only.is_empty() {
        tensors.push((
            "image_only",
            TensorRef::F32 {
                shape: &shapes[2],
                data: &site.image_only,
            },
        ));
    }
    if !site.text_only.is_empty() {
        tensors.push((
            "text_only",
            TensorRef::F32 {
                shape: &shapes[3],
                data: &site.text_only,
            },
        ));
    }
    write_safetensors(&tensors)
}

/// The class prompts file: `text` `[K, d2]` f32 (see [`Generator::class_prompts`]) and
/// `label` `[K]` i64 = 0..K, the names DESIGN section 7 gives the `class_prompts` file.
pub fn class_prompts_safetensors(generator: &Generator) -> Vec<u8> {
    let prompts = generator.class_prompts();
    let k = generator.config.classes;
    let labels: Vec<i64> = (0..k as i64).collect();
    let shape = [k, generator.config.dim_text];
    write_safetensors(&[
        (
            "text",
            TensorRef::F32 {
                shape: &shape,
                data: &prompts,
            },
        ),
        (
            "label",
            TensorRef::I64 {
                shape: &shape[..1],
                data: &labels,
            },
        ),
    ])
}

/// The ground truth file: `U1` `[d1, r]`, `U2` `[d2, r]` and `class_means` `[K, r]` (f32), with
/// the generator's parameters as metadata.
pub fn truth_safetensors(generator: &Generator) -> Vec<u8> {
    let t = &generator.truth;
    let c = &generator.config;
    let (u1, u2, means) = (
        row_major(t.u1.as_ref()),
        row_major(t.u2.as_ref()),
        row_major(t.class_means.as_ref()),
    );
    let shapes = [
        [c.dim_image, c.rank],
        [c.dim_text, c.rank],
        [c.classes, c.rank],
    ];
    let meta = [
        ("generator", "silo synth pairs".to_string()),
        ("seed", c.seed.to_string()),
        ("rank", c.rank.to_string()),
        ("classes", c.classes.to_string()),
        ("mismatch", c.mismatch.to_string()),
        ("within_class", WITHIN_CLASS.to_string()),
    ];
    let meta: Vec<(&str, &str)> = meta.iter().map(|(k, v)| (*k, v.as_str())).collect();
    write_safetensors_with_metadata(
        &[
            (
                "U1",
                TensorRef::F32 {
                    shape: &shapes[0],
                    data: &u1,
                },
            ),
            (
                "U2",
                TensorRef::F32 {
                    shape: &shapes[1],
                    data: &u2,
                },
            ),
            (
                "class_means",
                TensorRef::F32 {
                    shape: &shapes[2],
                    data: &means,
                },
            ),
        ],
        &meta,
    )
}

#[cfg(test)]
mod tests;

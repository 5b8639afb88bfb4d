//! `silo synth pairs`: synthetic image–text feature pairs for `contrastive_svd` and
//! `dp_clip`, from the linear representation model of `silo_common::synth::pairs`.
//!
//! Layout of `--out DIR`:
//! - `DIR/<site>/pairs.safetensors` for sites hospital-a, hospital-b, ...: `image`
//!   `[n, d1]` and `text` `[n, d2]` f32, `label` and `split` `[n]` i64 (0 = train, 1 = test),
//!   `image_only` `[m, d1]` and `text_only` `[m, d2]` f32 (omitted when m = 0), ready for a
//!   `kind = "pairs"` dataset;
//! - `DIR/eval.safetensors`: a public labelled evaluation set (`image`, `text`, `label`) for
//!   a job spec's `eval`;
//! - `DIR/class_prompts.safetensors`: `text` `[K, d2]` f32 and `label` `[K]` i64, the text
//!   features of each class for zero-shot evaluation (a job spec's `class_prompts`);
//! - `DIR/truth.safetensors`: the ground-truth `U1` `[d1, r]`, `U2` `[d2, r]` and
//!   `class_means` `[K, r]`, for measuring the learned encoders' sin-θ distance.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use silo_common::synth::pairs::{
    Generator, PairsConfig, class_prompts_safetensors, to_safetensors, truth_safetensors,
};

use super::site_name;
use crate::cli::usage;

/// Arguments of `silo synth pairs`.
#[derive(Debug, Args)]
pub struct PairsArgs {
    /// Number of sites (hospital-a, hospital-b, ...).
    #[arg(long, default_value_t = 3)]
    pub sites: usize,
    /// Image–text pairs per site.
    #[arg(long, default_value_t = 2000)]
    pub pairs: usize,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed (the data are a deterministic function of it).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Image feature dimension d1.
    #[arg(long, default_value_t = 64)]
    pub dim_image: usize,
    /// Text feature dimension d2.
    #[arg(long, default_value_t = 48)]
    pub dim_text: usize,
    /// Dimension r of the shared latent space (the rank the encoders should recover).
    #[arg(long, default_value_t = 8)]
    pub rank: usize,
    /// Number of classes (labels for zero-shot evaluation).
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Fraction of mismatched pairs (a caption from another sample), in [0, 1).
    #[arg(long, default_value_t = 0.1)]
    pub mismatch: f64,
    /// Fraction of pairs in the held-out test split, in [0, 1).
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Image-only and text-only rows per site [default: half of --pairs].
    #[arg(long)]
    pub unpaired: Option<usize>,
}

/// Site number of the public evaluation set (no real site is numbered this high).
const EVAL_SITE: usize = 1000;
/// Pairs in the public evaluation set (fewer when `--pairs` is smaller).
const EVAL_PAIRS: usize = 2000;

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Runs `silo synth pairs`.
pub fn run(args: PairsArgs, out: &mut impl Write) -> Result<()> {
    if args.sites == 0 || args.pairs == 0 {
        return Err(usage("--sites and --pairs must be at least 1"));
    }
    let config = PairsConfig {
        dim_image: args.dim_image,
        dim_text: args.dim_text,
        rank: args.rank,
        classes: args.classes,
        mismatch: args.mismatch,
        test_fraction: args.test_fraction,
        seed: args.seed,
    };
    let generator = Generator::new(config).map_err(|e| {
        usage(format!(
            "--{} {}: expected {}",
            e.field.replace('_', "-"),
            e.value,
            e.expected
                .replace("dim_image", "--dim-image")
                .replace("dim_text", "--dim-text")
        ))
    })?;
    let unpaired = args.unpaired.unwrap_or(args.pairs / 2);
    for i in 0..args.sites {
        let dir = args.out.join(site_name(i));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let site = generator.site(i, args.pairs, unpaired);
        let path = dir.join("pairs.safetensors");
        write(&path, &to_safetensors(&site))?;
        let test = site.test_pairs();
        writeln!(
            out,
            "{}: {} pairs ({} train, {} test, {} mismatched), {} image-only, {} text-only, \
             image {}-d, text {}-d, noise {:.2} in {}",
            site_name(i),
            site.pairs(),
            site.pairs() - test,
            test,
            site.mismatched_pairs(),
            site.image_only_rows(),
            site.text_only_rows(),
            site.d1,
            site.d2,
            site.noise,
            path.display()
        )?;
    }
    let path = args.out.join("class_prompts.safetensors");
    write(&path, &class_prompts_safetensors(&generator))?;
    writeln!(
        out,
        "{}: {} class prompts (text {}-d)",
        path.display(),
        args.classes,
        args.dim_text
    )?;
    // A public evaluation set from its own population (site number EVAL_SITE): what a
    // spec's `eval` names.
    let eval = generator.site(EVAL_SITE, EVAL_PAIRS.min(args.pairs.max(100)), 0);
    let path = args.out.join("eval.safetensors");
    write(&path, &to_safetensors(&eval))?;
    writeln!(
        out,
        "{}: {} public evaluation pairs with labels",
        path.display(),
        eval.pairs()
    )?;
    let path = args.out.join("truth.safetensors");
    write(&path, &truth_safetensors(&generator))?;
    writeln!(
        out,
        "{}: ground truth U1 [{}, {r}], U2 [{}, {r}]",
        path.display(),
        args.dim_image,
        args.dim_text,
        r = args.rank
    )?;
    Ok(())
}

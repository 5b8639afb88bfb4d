//! `silo synth …`: seeded synthetic site data for tours, demos and tests.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use silo_common::synth::visits;

use super::usage;

pub mod ehr;
pub mod pairs;

/// `silo synth …` subcommands.
#[derive(Debug, Subcommand)]
pub enum SynthCommand {
    /// Hospital visit tables for dp_stats: OUT/hospital-<x>/visits.csv per site.
    Visits(VisitsArgs),
    /// Multimodal EHR for pmi_svd: OUT/hospital-<x>/omop/*.csv, OUT/pairs.csv,
    /// OUT/dictionary.csv.
    Ehr(ehr::EhrArgs),
    /// Image–text feature pairs for contrastive_svd and dp_clip:
    /// OUT/hospital-<x>/pairs.safetensors, OUT/class_prompts.safetensors,
    /// OUT/truth.safetensors.
    Pairs(pairs::PairsArgs),
}

/// Arguments of `silo synth visits`.
#[derive(Debug, Args)]
pub struct VisitsArgs {
    /// Number of sites (hospital-a, hospital-b, ...).
    #[arg(long, default_value_t = 3)]
    pub sites: usize,
    /// Patients per site.
    #[arg(long, default_value_t = 2000)]
    pub patients: usize,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed (the data are a deterministic function of it).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// The name of synthetic site number `i`: hospital-a, hospital-b, ...
pub fn site_name(i: usize) -> String {
    let letter = (b'a' + (i % 26) as u8) as char;
    if i < 26 {
        format!("hospital-{letter}")
    } else {
        format!("hospital-{letter}{}", i / 26)
    }
}

/// Runs a `silo synth` subcommand.
pub fn run(cmd: SynthCommand, out: &mut impl Write) -> Result<()> {
    let args = match cmd {
        SynthCommand::Visits(args) => args,
        SynthCommand::Ehr(args) => return ehr::run(args, out),
        SynthCommand::Pairs(args) => return pairs::run(args, out),
    };
    if args.sites == 0 || args.patients == 0 {
        return Err(usage("--sites and --patients must be at least 1"));
    }
    for i in 0..args.sites {
        let site = site_name(i);
        let dir = args.out.join(&site);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let rows = visits::site_visits(i, args.patients, args.seed);
        let path = dir.join("visits.csv");
        std::fs::write(&path, visits::to_csv(&rows))
            .with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(
            out,
            "{}: {} patients, {} visits",
            path.display(),
            args.patients,
            rows.len()
        )?;
    }
    Ok(())
}

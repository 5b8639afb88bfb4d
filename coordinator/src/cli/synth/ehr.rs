//! `silo synth ehr`: multimodal synthetic EHR (structured codes and note concepts) as
//! OMOP-shaped CSV per site, with the ground truth for evaluating embeddings.
//!
//! Layout of `--out DIR`:
//! - `DIR/<site>/omop/{person,condition_occurrence,drug_exposure,measurement,note,
//!   note_nlp,concept}.csv` for sites hospital-a, hospital-b, ...
//!   (columns in `silo_common::synth::ehr::omop`);
//! - `DIR/pairs.csv`: known related concept pairs, `system_a,code_a,system_b,code_b,relation`;
//! - `DIR/dictionary.csv`: the note-concept dictionary, `term,concept_system,concept_code`.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use silo_common::synth::ehr::{EhrConfig, Generator, Modality, omop};

use super::site_name;
use crate::cli::usage;

/// Output format of `silo synth ehr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EhrFormat {
    /// OMOP-CDM-shaped CSV tables.
    Omop,
}

/// Arguments of `silo synth ehr`.
#[derive(Debug, Args)]
pub struct EhrArgs {
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
    /// Table format.
    #[arg(long, value_enum, default_value_t = EhrFormat::Omop)]
    pub format: EhrFormat,
    /// Dimension of the latent concept vectors.
    #[arg(long, default_value_t = 10)]
    pub dim: usize,
    /// Number of latent clusters (a disease with its drugs, labs and note concepts).
    #[arg(long, default_value_t = 30)]
    pub clusters: usize,
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Runs `silo synth ehr`.
pub fn run(args: EhrArgs, out: &mut impl Write) -> Result<()> {
    if args.sites == 0 || args.patients == 0 {
        return Err(usage("--sites and --patients must be at least 1"));
    }
    if args.dim == 0 || args.clusters == 0 {
        return Err(usage("--dim and --clusters must be at least 1"));
    }
    let EhrFormat::Omop = args.format;
    let generator = Generator::new(EhrConfig {
        dim: args.dim,
        clusters: args.clusters,
        seed: args.seed,
        ..EhrConfig::default()
    });
    let vocab = generator.vocabulary();
    for i in 0..args.sites {
        let dir = args.out.join(site_name(i)).join("omop");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let site = generator.site(i, args.patients);
        for (name, text) in omop::tables(vocab, &site) {
            write(&dir.join(name), &text)?;
        }
        let mut events = [0usize; 2];
        let mut concepts = [HashSet::new(), HashSet::new()];
        for e in &site.events {
            let m = match vocab.concepts[e.concept as usize].system.modality() {
                Modality::Code => 0,
                Modality::Note => 1,
            };
            events[m] += 1;
            concepts[m].insert(e.concept);
        }
        writeln!(
            out,
            "{}: {} patients, {} events (code: {} events, {} concepts; note: {} events, {} concepts) in {}",
            site_name(i),
            site.persons.len(),
            site.events.len(),
            events[0],
            concepts[0].len(),
            events[1],
            concepts[1].len(),
            dir.display()
        )?;
    }
    let pairs = vocab.pairs_csv();
    let path = args.out.join("pairs.csv");
    write(&path, &pairs)?;
    writeln!(
        out,
        "{}: {} related pairs",
        path.display(),
        pairs.lines().count() - 1
    )?;
    let dictionary = vocab.dictionary_csv();
    let path = args.out.join("dictionary.csv");
    write(&path, &dictionary)?;
    writeln!(
        out,
        "{}: {} terms",
        path.display(),
        dictionary.lines().count() - 1
    )?;
    Ok(())
}

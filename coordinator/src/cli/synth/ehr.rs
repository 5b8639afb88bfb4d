//! `silo synth ehr`: multimodal synthetic EHR (structured codes and note concepts) as
//! OMOP-shaped CSV or FHIR R4 NDJSON per site, with the ground truth for evaluating
//! embeddings.
//!
//! Layout of `--out DIR`:
//! - `--format omop` (default): `DIR/<site>/omop/{person,condition_occurrence,
//!   drug_exposure,measurement,note,note_nlp,concept}.csv` for sites hospital-a,
//!   hospital-b, ... (columns in `silo_common::synth::ehr::omop`);
//! - `--format fhir`: `DIR/<site>/fhir/{Patient,Encounter,Condition,MedicationRequest,
//!   Observation,DocumentReference}.ndjson` (bulk-export NDJSON; notes carry their text,
//!   see `silo_common::synth::ehr::fhir`) and `DIR/<site>/dictionary.csv`, a copy of the
//!   dictionary, so each site folder is complete for a `kind = "fhir"` dataset;
//! - `DIR/pairs.csv`: known related concept pairs, `system_a,code_a,system_b,code_b,relation`;
//! - `DIR/dictionary.csv`: the note-concept dictionary, `term,concept_system,concept_code`.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use silo_common::synth::ehr::{EhrConfig, Generator, Modality, fhir, omop};

use super::site_name;
use crate::cli::usage;

/// Output format of `silo synth ehr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EhrFormat {
    /// OMOP-CDM-shaped CSV tables.
    Omop,
    /// FHIR R4 bulk-export NDJSON, with note text to tag with the dictionary.
    Fhir,
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
    /// Output format: OMOP-shaped CSV or FHIR R4 NDJSON.
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
    let generator = Generator::new(EhrConfig {
        dim: args.dim,
        clusters: args.clusters,
        seed: args.seed,
        ..EhrConfig::default()
    });
    let vocab = generator.vocabulary();
    let dictionary = vocab.dictionary_csv();
    for i in 0..args.sites {
        let folder = match args.format {
            EhrFormat::Omop => "omop",
            EhrFormat::Fhir => "fhir",
        };
        let site_dir = args.out.join(site_name(i));
        let dir = site_dir.join(folder);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let site = generator.site(i, args.patients);
        let files = match args.format {
            EhrFormat::Omop => omop::tables(vocab, &site),
            EhrFormat::Fhir => {
                write(&site_dir.join("dictionary.csv"), &dictionary)?;
                fhir::ndjson(vocab, &site)
            }
        };
        for (name, text) in files {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(out: &Path, format: EhrFormat) -> EhrArgs {
        EhrArgs {
            sites: 2,
            patients: 30,
            out: out.to_path_buf(),
            seed: 3,
            format,
            dim: 4,
            clusters: 5,
        }
    }

    #[test]
    fn fhir_format_writes_ndjson_and_a_dictionary_per_site() {
        let tmp = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        run(args(tmp.path(), EhrFormat::Fhir), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("hospital-b: 30 patients"), "{out}");
        for site in ["hospital-a", "hospital-b"] {
            for resource in [
                "Patient",
                "Encounter",
                "Condition",
                "MedicationRequest",
                "Observation",
                "DocumentReference",
            ] {
                let p = tmp
                    .path()
                    .join(site)
                    .join("fhir")
                    .join(format!("{resource}.ndjson"));
                assert!(p.is_file(), "missing {}", p.display());
            }
            let dictionary = std::fs::read_to_string(tmp.path().join(site).join("dictionary.csv"));
            assert!(
                dictionary
                    .unwrap()
                    .starts_with("term,concept_system,concept_code\n")
            );
        }
        assert!(tmp.path().join("pairs.csv").is_file());
        assert!(tmp.path().join("dictionary.csv").is_file());
        assert!(!tmp.path().join("hospital-a").join("omop").exists());

        // Same seed, same bytes.
        let again = tempfile::tempdir().unwrap();
        run(args(again.path(), EhrFormat::Fhir), &mut Vec::new()).unwrap();
        let read = |root: &Path| {
            std::fs::read(root.join("hospital-b/fhir/DocumentReference.ndjson")).unwrap()
        };
        assert_eq!(read(tmp.path()), read(again.path()));
    }
}

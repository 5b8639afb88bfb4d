//! `silo eval …`: offline evaluation of released artefacts against ground truth.
//!
//! `silo eval embeddings --embeddings F --pairs P [--json] [--seed S]` scores concept
//! embeddings with `silo_common::eval` (DESIGN 4.2): AUC of the cosine similarity of
//! known related pairs against as many random pairs, and TPR at FPR 1 %, 5 % and 10 %,
//! per relation and overall.
//!
//! File formats (comma-separated, no quoting: fields must not contain commas; blank lines
//! and lines starting with `#` are ignored):
//! - embeddings `F`: one concept per line, `system,code,v1,...,vd`, every line with the
//!   same d. An optional header is recognised as a first line whose third field is not a
//!   number (e.g. `system,code,v1,v2`).
//! - pairs `P`: `system_a,code_a,system_b,code_b,relation`, as written by `silo synth ehr`;
//!   an optional header is a first line whose first field is `system_a`.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};
use silo_common::eval::{ConceptKey, EmbeddingReport, KnownPair, RelationReport};

use super::usage;

/// `silo eval …` subcommands.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Score concept embeddings on known related pairs (AUC, TPR at fixed FPR).
    Embeddings(EmbeddingsArgs),
}

/// Arguments of `silo eval embeddings`.
#[derive(Debug, Args)]
pub struct EmbeddingsArgs {
    /// Embeddings CSV: `system,code,v1,...,vd` (header optional).
    #[arg(long)]
    pub embeddings: PathBuf,
    /// Related pairs CSV: `system_a,code_a,system_b,code_b,relation` (header optional).
    #[arg(long)]
    pub pairs: PathBuf,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Seed of the random (negative) pairs.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs a `silo eval` subcommand.
pub fn run(cmd: EvalCommand, out: &mut impl Write) -> Result<()> {
    let EvalCommand::Embeddings(args) = cmd;
    let embeddings = parse_embeddings(&args.embeddings, &read(&args.embeddings)?)?;
    let pairs = parse_pairs(&args.pairs, &read(&args.pairs)?)?;
    let report = silo_common::eval::evaluate_embeddings(&embeddings, &pairs, args.seed)
        .map_err(|e| usage(format!("{}: {e}", args.embeddings.display())))?;
    if args.json {
        let mut doc = serde_json::to_value(&report)?;
        doc["embeddings"] = args.embeddings.display().to_string().into();
        doc["pairs"] = args.pairs.display().to_string().into();
        doc["seed"] = args.seed.into();
        writeln!(out, "{doc}")?;
    } else {
        print_table(&args, &report, out)?;
    }
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| usage(format!("cannot read {}: {e}", path.display())))
}

/// Non-blank, non-comment lines with their 1-based line numbers, split on commas.
fn rows(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let line = line.trim();
        (!line.is_empty() && !line.starts_with('#'))
            .then(|| (i + 1, line.split(',').map(str::trim).collect()))
    })
}

/// Parses an embeddings file (format in the module docs); errors name the file and line.
pub fn parse_embeddings(path: &Path, text: &str) -> Result<HashMap<ConceptKey, Vec<f64>>> {
    let at = |line: usize, what: String| usage(format!("{}:{line}: {what}", path.display()));
    let mut map = HashMap::new();
    let mut dim = None;
    for (n, (line, fields)) in rows(text).enumerate() {
        if fields.len() < 3 {
            return Err(at(
                line,
                format!(
                    "expected system,code,v1,...,vd; found {} field(s)",
                    fields.len()
                ),
            ));
        }
        if n == 0 && fields[2].parse::<f64>().is_err() {
            continue; // header
        }
        if fields[0].is_empty() || fields[1].is_empty() {
            return Err(at(line, "empty system or code".into()));
        }
        let mut v = Vec::with_capacity(fields.len() - 2);
        for (j, f) in fields[2..].iter().enumerate() {
            match f.parse::<f64>() {
                Ok(x) if x.is_finite() => v.push(x),
                _ => {
                    return Err(at(
                        line,
                        format!("value {} is not a finite number: {f:?}", j + 1),
                    ));
                }
            }
        }
        match dim {
            None => dim = Some(v.len()),
            Some(d) if d != v.len() => {
                return Err(at(
                    line,
                    format!("{} values, expected {d} as on the lines before", v.len()),
                ));
            }
            Some(_) => {}
        }
        let key = (fields[0].to_string(), fields[1].to_string());
        if map.insert(key, v).is_some() {
            return Err(at(
                line,
                format!("duplicate concept {},{}", fields[0], fields[1]),
            ));
        }
    }
    if map.is_empty() {
        return Err(usage(format!("{}: no embeddings", path.display())));
    }
    Ok(map)
}

/// Parses a pairs file (format in the module docs); errors name the file and line.
pub fn parse_pairs(path: &Path, text: &str) -> Result<Vec<KnownPair>> {
    let mut pairs = Vec::new();
    for (n, (line, f)) in rows(text).enumerate() {
        if n == 0 && f.first() == Some(&"system_a") {
            continue; // header
        }
        if f.len() != 5 || f.iter().any(|x| x.is_empty()) {
            return Err(usage(format!(
                "{}:{line}: expected system_a,code_a,system_b,code_b,relation (5 non-empty fields)",
                path.display()
            )));
        }
        pairs.push(KnownPair {
            a: (f[0].to_string(), f[1].to_string()),
            b: (f[2].to_string(), f[3].to_string()),
            relation: f[4].to_string(),
        });
    }
    if pairs.is_empty() {
        return Err(usage(format!("{}: no pairs", path.display())));
    }
    Ok(pairs)
}

fn print_table(args: &EmbeddingsArgs, r: &EmbeddingReport, out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "embeddings {} ({} concepts, dim {}); pairs {}; seed {}",
        args.embeddings.display(),
        r.concepts,
        r.dim,
        args.pairs.display(),
        args.seed
    )?;
    writeln!(
        out,
        "{:<26} {:>7} {:>7} {:>7} {:>6} {:>7} {:>7} {:>7}",
        "relation", "pairs", "skipped", "random", "AUC", "TPR@1%", "TPR@5%", "TPR@10%"
    )?;
    let cell = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.3}"));
    for row in r.relations.iter().chain([&r.overall]) {
        let RelationReport {
            relation,
            pairs_used,
            pairs_skipped,
            random_pairs,
            ..
        } = row;
        writeln!(
            out,
            "{relation:<26} {pairs_used:>7} {pairs_skipped:>7} {random_pairs:>7} {:>6} {:>7} {:>7} {:>7}",
            cell(row.auc),
            cell(row.tpr_at_fpr_01),
            cell(row.tpr_at_fpr_05),
            cell(row.tpr_at_fpr_10)
        )?;
    }
    Ok(())
}

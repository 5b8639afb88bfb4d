//! Finalizing a `pmi_svd` job: the pipeline on the pooled releases, the result files and
//! the report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::json;
use silo_common::ehr::ConceptKey;
use silo_common::ehr::plan::{CountsRelease, PmiPlan};
use silo_common::ehr::simulate::embedding_map;
use silo_common::eval::{KnownPair, evaluate_embeddings};
use silo_common::pmi::Embedding;
use silo_common::pmi::pipeline::{PooledCounts, embed_pooled};

use crate::jobs::{FinalizeContext, JobError, JobOutput};

/// Seed of the random pairs the evaluation draws (fixed: reports are reproducible).
const EVAL_SEED: u64 = 7;

pub(super) struct Inputs<'a> {
    pub ctx: &'a FinalizeContext<'a>,
    pub plan: &'a PmiPlan,
    pub requested: usize,
    pub vocabulary: &'a [ConceptKey],
    pub vocab_sites: &'a [String],
    pub counts: &'a BTreeMap<String, CountsRelease>,
    pub pairs: Option<&'a (String, Vec<KnownPair>)>,
}

pub(super) fn finalize(inp: Inputs<'_>) -> Result<JobOutput, JobError> {
    let params = inp.plan.params();
    let releases: Vec<&CountsRelease> = inp.counts.values().collect();
    let pooled = PooledCounts::from_releases(&releases)
        .map_err(|e| JobError::Aggregate(format!("cannot pool the counts: {e}")))?;
    let (embedding, stats) = embed_pooled(&pooled, params)
        .map_err(|e| JobError::Aggregate(format!("PMI / SVD: {e}")))?;
    let sites: Vec<&String> = inp.counts.keys().collect();
    let epsilon_spent = inp.ctx.epsilon_spent();

    let mut evaluation = serde_json::Value::Null;
    let mut summary_auc = serde_json::Value::Null;
    let mut best_single = serde_json::Value::Null;
    if let Some((path, pairs)) = inp.pairs {
        let evaluate = |e: &Embedding| {
            evaluate_embeddings(&embedding_map(inp.vocabulary, e), pairs, EVAL_SEED)
                .map_err(|e| JobError::Aggregate(format!("evaluation: {e}")))
        };
        let federated = evaluate(&embedding)?;
        let mut single = BTreeMap::new();
        for (site, release) in inp.counts {
            let alone = PooledCounts::from_releases(&[release])
                .and_then(|p| embed_pooled(&p, params))
                .map(|(e, _)| e);
            let auc = match alone {
                Ok(e) => evaluate(&e)?.overall.auc,
                // A site whose counts alone leave nothing above the cut has no embedding.
                Err(_) => None,
            };
            single.insert(site.clone(), auc);
        }
        let best = single
            .iter()
            .filter_map(|(s, a)| a.map(|a| (s.clone(), a)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        best_single = match &best {
            Some((site, auc)) => json!({"site": site, "auc": auc}),
            None => serde_json::Value::Null,
        };
        summary_auc = json!(federated.overall.auc);
        evaluation = json!({
            "pairs": path,
            "federated": federated,
            "single_sites": single,
            "best_single_site": best_single,
            "centralized_ceiling": null,
            "note": "the centralized non-private ceiling needs the pooled raw data; only simulations (`silo demo`, tests) compute it",
        });
    }

    let report = json!({
        "kind": "pmi_svd",
        "job_id": inp.ctx.job_id,
        "name": inp.ctx.spec.name,
        "dataset": inp.ctx.spec.dataset,
        "sites": sites,
        "epsilon_spent": epsilon_spent,
        "privacy": {
            "epsilon_per_site": inp.ctx.spec.privacy.epsilon,
            "delta": inp.ctx.spec.privacy.delta,
            "counts_noise_std_per_site": inp.plan.counts_mechanism().sigma(),
            "counts_l2_sensitivity": f64::from(params.max_pairs_per_patient).sqrt(),
            "vocabulary_noise_std_per_site": inp.plan.selection().map(|s| s.mechanism.sigma()),
            "vocabulary_threshold": inp.plan.selection().map(|s| s.threshold),
        },
        "vocabulary": {
            "source": params.vocabulary,
            "requested": inp.requested,
            "size": inp.vocabulary.len(),
            "selected_from_sites": inp.vocab_sites,
        },
        "params": params,
        "pipeline": stats,
        "evaluation": evaluation,
    });
    let summary = json!({
        "kind": "pmi_svd",
        "sites": sites,
        "vocabulary_size": inp.vocabulary.len(),
        "dim": stats.dim,
        "auc": summary_auc,
        "best_single_site": best_single,
        "epsilon_spent": epsilon_spent,
    });
    let mut report_text = serde_json::to_vec_pretty(&report)
        .map_err(|e| JobError::Aggregate(format!("cannot render report.json: {e}")))?;
    report_text.push(b'\n');
    Ok(JobOutput {
        files: vec![
            (
                "embeddings.csv".into(),
                embeddings_csv(inp.vocabulary, &embedding),
            ),
            ("embeddings.npy".into(), npy_f32(&embedding)),
            ("report.json".into(), report_text),
        ],
        summary,
    })
}

/// `system,code,v1,...,vd`, one concept per line in vocabulary order (the order of the
/// rows of `embeddings.npy`); a concept without PMI mass has a zero vector.
pub(super) fn embeddings_csv(vocabulary: &[ConceptKey], e: &Embedding) -> Vec<u8> {
    let mut out = String::from("system,code");
    for c in 1..=e.dim() {
        let _ = write!(out, ",v{c}");
    }
    out.push('\n');
    for (i, (system, code)) in vocabulary.iter().enumerate() {
        out.push_str(&csv_field(system));
        out.push(',');
        out.push_str(&csv_field(code));
        for c in 0..e.dim() {
            let _ = write!(out, ",{:.6}", e.vectors[(i, c)]);
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// Quotes a field that holds a comma or a quote.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The vectors as a NumPy `.npy` file: little-endian float32, C order, shape (n, d).
pub(super) fn npy_f32(e: &Embedding) -> Vec<u8> {
    let (n, d) = (e.vectors.nrows(), e.vectors.ncols());
    let data: Vec<f32> = (0..n)
        .flat_map(|i| (0..d).map(move |c| e.vectors[(i, c)] as f32))
        .collect();
    silo_common::tensorfile::write_npy_f32(&[n, d], &data)
}

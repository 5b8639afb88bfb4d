//! In-process simulation of a `pmi_svd` federation on synthetic data: every site's
//! releases made exactly as a site daemon makes them, pooled as the coordinator pools
//! them, next to the centralised non-private pipeline (the ceiling) and each site alone
//! (the floor). Used by tests, benchmarks and `silo demo`; never by a real deployment
//! (it needs every site's raw data in one process).

use std::collections::HashMap;

use super::cooccur::{self, CooccurrenceParams};
use super::plan::{CountsRelease, PlanError, PmiPlan};
use super::vocab::{VocabularyRelease, select_top_k, vocabulary_index};
use super::{ConceptKey, Timelines};
use crate::eval::{EmbeddingReport, KnownPair, evaluate_embeddings};
use crate::pmi::pipeline::{PooledCounts, embed_pooled};
use crate::pmi::{Embedding, PmiError};
use crate::privacy::noise::NoiseSource;
use crate::spec::{JobSpec, VocabularySource};

/// Embedding vectors keyed by concept.
pub fn embedding_map(
    vocabulary: &[ConceptKey],
    embedding: &Embedding,
) -> HashMap<ConceptKey, Vec<f64>> {
    vocabulary
        .iter()
        .enumerate()
        .map(|(i, k)| {
            (
                k.clone(),
                (0..embedding.dim())
                    .map(|c| embedding.vectors[(i, c)])
                    .collect(),
            )
        })
        .collect()
}

/// Why a simulation failed.
#[derive(Debug, thiserror::Error)]
pub enum SimulationError {
    /// Planning or releasing failed.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The pipeline failed.
    #[error(transparent)]
    Pmi(#[from] PmiError),
    /// Evaluation failed.
    #[error("evaluation: {0}")]
    Eval(String),
}

/// The results of one simulated job.
#[derive(Debug)]
pub struct Simulation {
    /// The job's vocabulary.
    pub vocabulary: Vec<ConceptKey>,
    /// AUC report of the federated, private embedding.
    pub federated: EmbeddingReport,
    /// The centralised non-private pipeline on the pooled data (vocabulary: exact top-K).
    pub central: EmbeddingReport,
    /// Each site alone, from its own private release.
    pub single_sites: Vec<EmbeddingReport>,
}

/// Runs the job `spec` over `sites` with noise from `rng` and evaluates on `pairs`.
pub fn simulate<R: NoiseSource + ?Sized>(
    spec: &JobSpec,
    sites: &[Timelines],
    pairs: &[KnownPair],
    rng: &mut R,
) -> Result<Simulation, SimulationError> {
    let plan = PmiPlan::new(spec)?;
    let params = plan.params().clone();
    let k = match params.vocabulary_source() {
        Ok(VocabularySource::Top(k)) => k,
        _ => return Err(PlanError::Spec("simulate needs vocabulary = top:K".into()).into()),
    };
    // Round 1: vocabulary.
    let releases: Vec<VocabularyRelease> = sites
        .iter()
        .enumerate()
        .map(|(s, t)| {
            let counts =
                cooccur::concept_patients(t, params.max_concepts_per_patient as usize, s as u64);
            plan.release_vocabulary(&t.concepts, &counts, rng)
        })
        .collect::<Result<_, _>>()?;
    let refs: Vec<&VocabularyRelease> = releases.iter().collect();
    let vocabulary: Vec<ConceptKey> = select_top_k(&refs, k).into_iter().map(|(c, _)| c).collect();
    let cparams = CooccurrenceParams {
        window_days: params.window_days,
        max_pairs_per_patient: params.max_pairs_per_patient as usize,
    };
    // Round 2: counts.
    let mut counts: Vec<CountsRelease> = Vec::new();
    for (s, t) in sites.iter().enumerate() {
        let map = vocabulary_index(&t.concepts, &vocabulary);
        let exact = cooccur::count(t, &map, vocabulary.len(), cparams, s as u64, &mut |_| {});
        counts.push(plan.release_counts(exact, rng)?);
    }
    let evaluate =
        |vocab: &[ConceptKey], pooled: &PooledCounts| -> Result<EmbeddingReport, SimulationError> {
            let (embedding, _) = embed_pooled(pooled, &params)?;
            evaluate_embeddings(&embedding_map(vocab, &embedding), pairs, 7)
                .map_err(|e| SimulationError::Eval(e.to_string()))
        };
    let all: Vec<&CountsRelease> = counts.iter().collect();
    let federated = evaluate(&vocabulary, &PooledCounts::from_releases(&all)?)?;
    let single_sites = counts
        .iter()
        .map(|c| evaluate(&vocabulary, &PooledCounts::from_releases(&[c])?))
        .collect::<Result<Vec<_>, _>>()?;
    let central = central_reference(spec, sites, pairs)?;
    Ok(Simulation {
        vocabulary,
        federated,
        central,
        single_sites,
    })
}

/// The centralised, non-private pipeline on the pooled data (the ceiling a federation is
/// compared with): exact top-K concepts over all patients (or the spec's list), exact
/// bounded co-occurrence counts, the same SPPMI and SVD. Needs every site's raw data, so
/// only simulations can run it.
pub fn central_reference(
    spec: &JobSpec,
    sites: &[Timelines],
    pairs: &[KnownPair],
) -> Result<EmbeddingReport, SimulationError> {
    let plan = PmiPlan::new(spec)?;
    let params = plan.params();
    let k = match params.vocabulary_source() {
        Ok(VocabularySource::Top(k)) => k,
        _ => return Err(PlanError::Spec("the reference needs vocabulary = top:K".into()).into()),
    };
    let mut totals: HashMap<&ConceptKey, u64> = HashMap::new();
    for (s, t) in sites.iter().enumerate() {
        let c = cooccur::concept_patients(t, params.max_concepts_per_patient as usize, s as u64);
        for (key, n) in t.concepts.iter().zip(c) {
            *totals.entry(key).or_default() += u64::from(n);
        }
    }
    let mut ranked: Vec<(&ConceptKey, u64)> = totals.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let vocabulary: Vec<ConceptKey> = ranked.into_iter().take(k).map(|(c, _)| c.clone()).collect();
    let cparams = CooccurrenceParams {
        window_days: params.window_days,
        max_pairs_per_patient: params.max_pairs_per_patient as usize,
    };
    let mut pooled = vec![0u32; cooccur::packed_len(vocabulary.len())];
    for (s, t) in sites.iter().enumerate() {
        let map = vocabulary_index(&t.concepts, &vocabulary);
        let exact = cooccur::count(t, &map, vocabulary.len(), cparams, s as u64, &mut |_| {});
        for (p, c) in pooled.iter_mut().zip(exact.counts) {
            *p += c;
        }
    }
    let (embedding, _) = embed_pooled(&PooledCounts::exact(vocabulary.len(), &pooled), params)?;
    evaluate_embeddings(&embedding_map(&vocabulary, &embedding), pairs, 7)
        .map_err(|e| SimulationError::Eval(e.to_string()))
}

/// Timelines of a synthetic site, exactly as an adapter would load its files.
pub fn synthetic_timelines(
    vocabulary: &crate::synth::ehr::Vocabulary,
    site: &crate::synth::ehr::SiteData,
) -> Timelines {
    let mut b = super::TimelineBuilder::new();
    for e in &site.events {
        let c = &vocabulary.concepts[e.concept as usize];
        let modality = c.system.modality();
        let p = b.patient(&e.person_id.to_string());
        let k = b.concept(c.system.as_str(), &c.code, modality);
        b.push(p, e.day, k);
    }
    b.finish()
}

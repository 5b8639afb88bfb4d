//! Concept-embedding evaluation (DESIGN 4.2): cosine similarity of known related pairs
//! against as many random pairs, summarised per relation and overall by the AUC and the
//! TPR at FPR 0.01, 0.05 and 0.10.
//!
//! Random pairs follow the pairs' types: for a relation, a random pair takes its first
//! concept from the first concepts of that relation's usable pairs and its second from
//! the second concepts (so `code_note` is judged against random code–note pairs, not
//! against easy pairs of unrelated types), and is redrawn when it is itself a known
//! related pair or a concept paired with itself.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;

use super::roc::{auc, tpr_at_fpr};

/// A concept: `(system, code)`, e.g. `("ICD10CM", "E11.0")`.
pub type ConceptKey = (String, String);

/// The false-positive rates at which the TPR is reported.
pub const FPRS: [f64; 3] = [0.01, 0.05, 0.10];

/// Draws per random pair before giving up (only when the sides are tiny).
const MAX_ATTEMPTS: usize = 100;

/// A known related pair (one row of a pairs file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownPair {
    /// First concept.
    pub a: ConceptKey,
    /// Second concept.
    pub b: ConceptKey,
    /// Relation label, e.g. `same_cluster_code_code` or `code_note`.
    pub relation: String,
}

/// Scores of one relation (or of all pairs, for the overall row).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RelationReport {
    /// The relation label, or `overall`.
    pub relation: String,
    /// Related pairs with both concepts embedded.
    pub pairs_used: usize,
    /// Related pairs skipped because a concept has no embedding.
    pub pairs_skipped: usize,
    /// Random pairs drawn (equal to `pairs_used` unless the sides are tiny).
    pub random_pairs: usize,
    /// Mean cosine of the related pairs (`None` without any).
    pub mean_related_cosine: Option<f64>,
    /// Mean cosine of the random pairs.
    pub mean_random_cosine: Option<f64>,
    /// AUC of related vs random cosines (`None` when either side is empty).
    pub auc: Option<f64>,
    /// TPR at FPR 0.01.
    pub tpr_at_fpr_01: Option<f64>,
    /// TPR at FPR 0.05.
    pub tpr_at_fpr_05: Option<f64>,
    /// TPR at FPR 0.10.
    pub tpr_at_fpr_10: Option<f64>,
}

/// The whole evaluation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EmbeddingReport {
    /// Embedding dimension.
    pub dim: usize,
    /// Concepts with an embedding.
    pub concepts: usize,
    /// One row per relation, sorted by name.
    pub relations: Vec<RelationReport>,
    /// All relations pooled.
    pub overall: RelationReport,
}

/// Why embeddings cannot be evaluated.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EvalError {
    /// No embeddings at all.
    #[error("no embeddings to evaluate")]
    Empty,
    /// Embeddings of different lengths.
    #[error("embedding of {system},{code} has dimension {found}, expected {expected}")]
    Dimension {
        /// System of the offending concept.
        system: String,
        /// Code of the offending concept.
        code: String,
        /// Its length.
        found: usize,
        /// The length of the others.
        expected: usize,
    },
    /// A NaN or infinite coordinate.
    #[error("embedding of {system},{code} has a non-finite value")]
    NonFinite {
        /// System of the offending concept.
        system: String,
        /// Code of the offending concept.
        code: String,
    },
}

/// Evaluates `embeddings` on `pairs`; random pairs are drawn with ChaCha20 from `seed`, so
/// the report is a deterministic function of its inputs. A zero vector has cosine 0 with
/// everything (a concept the method learned nothing about is related to nothing).
pub fn evaluate_embeddings(
    embeddings: &HashMap<ConceptKey, Vec<f64>>,
    pairs: &[KnownPair],
    seed: u64,
) -> Result<EmbeddingReport, EvalError> {
    let mut keys: Vec<&ConceptKey> = embeddings.keys().collect();
    keys.sort();
    let dim = embeddings[*keys.first().ok_or(EvalError::Empty)?].len();
    // Unit vectors (zero stays zero), checked once.
    let mut unit: HashMap<&ConceptKey, Vec<f64>> = HashMap::with_capacity(keys.len());
    for key in keys {
        let v = &embeddings[key];
        if v.len() != dim {
            return Err(EvalError::Dimension {
                system: key.0.clone(),
                code: key.1.clone(),
                found: v.len(),
                expected: dim,
            });
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(EvalError::NonFinite {
                system: key.0.clone(),
                code: key.1.clone(),
            });
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let scale = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        unit.insert(key, v.iter().map(|x| x * scale).collect());
    }
    let cosine = |a: &ConceptKey, b: &ConceptKey| -> f64 {
        unit[a].iter().zip(&unit[b]).map(|(x, y)| x * y).sum()
    };
    let related: HashSet<(&ConceptKey, &ConceptKey)> = pairs
        .iter()
        .flat_map(|p| [(&p.a, &p.b), (&p.b, &p.a)])
        .collect();

    let mut by_relation: BTreeMap<&str, Vec<&KnownPair>> = BTreeMap::new();
    for p in pairs {
        by_relation.entry(&p.relation).or_default().push(p);
    }
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut rows = Vec::new();
    let (mut all_pos, mut all_neg, mut all_skipped) = (Vec::new(), Vec::new(), 0);
    for (relation, list) in by_relation {
        let usable: Vec<&KnownPair> = list
            .iter()
            .copied()
            .filter(|p| unit.contains_key(&p.a) && unit.contains_key(&p.b))
            .collect();
        let skipped = list.len() - usable.len();
        let pos: Vec<f64> = usable.iter().map(|p| cosine(&p.a, &p.b)).collect();
        let side_a: Vec<&ConceptKey> = usable
            .iter()
            .map(|p| &p.a)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let side_b: Vec<&ConceptKey> = usable
            .iter()
            .map(|p| &p.b)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut neg = Vec::with_capacity(pos.len());
        for _ in 0..usable.len() {
            for _ in 0..MAX_ATTEMPTS {
                let a = side_a[rng.random_range(0..side_a.len())];
                let b = side_b[rng.random_range(0..side_b.len())];
                if a != b && !related.contains(&(a, b)) {
                    neg.push(cosine(a, b));
                    break;
                }
            }
        }
        rows.push(report(relation, &pos, &neg, skipped));
        all_pos.extend(pos);
        all_neg.extend(neg);
        all_skipped += skipped;
    }
    Ok(EmbeddingReport {
        dim,
        concepts: unit.len(),
        relations: rows,
        overall: report("overall", &all_pos, &all_neg, all_skipped),
    })
}

fn report(relation: &str, pos: &[f64], neg: &[f64], skipped: usize) -> RelationReport {
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    RelationReport {
        relation: relation.to_string(),
        pairs_used: pos.len(),
        pairs_skipped: skipped,
        random_pairs: neg.len(),
        mean_related_cosine: mean(pos),
        mean_random_cosine: mean(neg),
        auc: auc(pos, neg),
        tpr_at_fpr_01: tpr_at_fpr(pos, neg, FPRS[0]),
        tpr_at_fpr_05: tpr_at_fpr(pos, neg, FPRS[1]),
        tpr_at_fpr_10: tpr_at_fpr(pos, neg, FPRS[2]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str, c: usize) -> ConceptKey {
        (s.to_string(), c.to_string())
    }

    /// 20 clusters of an A concept and a B concept; each cluster is its own axis, so
    /// related pairs have cosine 1 and random pairs cosine 0.
    fn clustered(identical: bool) -> (HashMap<ConceptKey, Vec<f64>>, Vec<KnownPair>) {
        let n = 20;
        let mut emb = HashMap::new();
        let mut pairs = Vec::new();
        for k in 0..n {
            let mut v = vec![0.0; n];
            if identical {
                v[0] = 1.0;
            } else {
                v[k] = 1.0 + k as f64;
            }
            emb.insert(key("A", k), v.clone());
            emb.insert(key("B", k), v);
            pairs.push(KnownPair {
                a: key("A", k),
                b: key("B", k),
                relation: if k % 2 == 0 { "even" } else { "odd" }.to_string(),
            });
        }
        (emb, pairs)
    }

    #[test]
    fn perfect_embeddings_score_one() {
        let (emb, pairs) = clustered(false);
        let r = evaluate_embeddings(&emb, &pairs, 1).unwrap();
        assert_eq!(r.dim, 20);
        assert_eq!(r.concepts, 40);
        assert_eq!(r.relations.len(), 2);
        for row in r.relations.iter().chain([&r.overall]) {
            assert_eq!(row.auc, Some(1.0), "{row:?}");
            assert_eq!(row.tpr_at_fpr_01, Some(1.0));
            assert_eq!(row.random_pairs, row.pairs_used);
        }
        assert_eq!(r.overall.pairs_used, 20);
        assert_eq!(r, evaluate_embeddings(&emb, &pairs, 1).unwrap(), "seeded");
    }

    #[test]
    fn identical_embeddings_score_one_half() {
        let (emb, pairs) = clustered(true);
        let r = evaluate_embeddings(&emb, &pairs, 1).unwrap();
        assert_eq!(r.overall.auc, Some(0.5));
        assert_eq!(r.overall.tpr_at_fpr_10, Some(0.0));
    }

    #[test]
    fn missing_concepts_are_skipped_and_counted() {
        let (mut emb, mut pairs) = clustered(false);
        emb.remove(&key("B", 0));
        pairs.push(KnownPair {
            a: key("X", 1),
            b: key("A", 1),
            relation: "odd".into(),
        });
        let r = evaluate_embeddings(&emb, &pairs, 2).unwrap();
        let even = &r.relations[0];
        assert_eq!(
            (even.relation.as_str(), even.pairs_used, even.pairs_skipped),
            ("even", 9, 1)
        );
        assert_eq!(r.relations[1].pairs_skipped, 1);
        assert_eq!(r.overall.pairs_skipped, 2);
        assert_eq!(r.overall.auc, Some(1.0));
    }

    #[test]
    fn bad_embeddings_are_rejected() {
        let (mut emb, pairs) = clustered(false);
        emb.insert(key("C", 0), vec![1.0]);
        assert!(matches!(
            evaluate_embeddings(&emb, &pairs, 1),
            Err(EvalError::Dimension {
                found: 1,
                expected: 20,
                ..
            })
        ));
        let (mut emb, pairs) = clustered(false);
        emb.get_mut(&key("A", 3)).unwrap()[0] = f64::NAN;
        assert!(matches!(
            evaluate_embeddings(&emb, &pairs, 1),
            Err(EvalError::NonFinite { .. })
        ));
        assert_eq!(
            evaluate_embeddings(&HashMap::new(), &pairs, 1),
            Err(EvalError::Empty)
        );
    }
}

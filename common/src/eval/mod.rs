//! Evaluation of released artefacts against ground truth: concept embeddings
//! ([`embeddings`]) scored with ROC statistics ([`roc`]).

pub mod embeddings;
pub mod roc;

pub use embeddings::{
    ConceptKey, EmbeddingReport, EvalError, KnownPair, RelationReport, evaluate_embeddings,
};
pub use roc::{auc, tpr_at_fpr};

//! The concept vocabulary of the synthetic EHR model: structured codes and note concepts,
//! their latent vectors and clusters, and the ground truth derived from them (related
//! pairs, the note-concept dictionary).
//!
//! A *cluster* is one clinical idea — a disease with its drugs, its labs and the note
//! concepts that mention it. Every concept of a cluster has a latent vector close to the
//! cluster's direction, so concepts of one cluster co-occur and a good embedding puts them
//! close together; that is what the related pairs record.

use rand::RngExt;
use rand_chacha::ChaCha20Rng;

use super::gaussian;

/// First synthetic concept id: OMOP reserves ids from 2 000 000 000 for local concepts.
pub const FIRST_CONCEPT_ID: u64 = 2_000_000_000;

/// The two modalities of the paper (coded data and note concepts): the same type as the
/// site timelines use.
pub use crate::ehr::Modality;

/// The coding system of a concept; each maps to one OMOP table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum System {
    /// Conditions (condition_occurrence).
    Icd10cm,
    /// Drugs (drug_exposure).
    Rxnorm,
    /// Laboratory measurements (measurement).
    Loinc,
    /// Note concepts (note_nlp).
    Cui,
}

impl System {
    /// All systems, in table order.
    pub const ALL: [System; 4] = [System::Icd10cm, System::Rxnorm, System::Loinc, System::Cui];

    /// The OMOP `vocabulary_id` spelling (`ICD10CM`, `RXNORM`, `LOINC`, `CUI`).
    pub fn as_str(self) -> &'static str {
        match self {
            System::Icd10cm => "ICD10CM",
            System::Rxnorm => "RXNORM",
            System::Loinc => "LOINC",
            System::Cui => "CUI",
        }
    }

    /// The modality a system belongs to.
    pub fn modality(self) -> Modality {
        match self {
            System::Cui => Modality::Note,
            _ => Modality::Code,
        }
    }

    /// The OMOP `domain_id` of the system's concepts.
    pub fn domain(self) -> &'static str {
        match self {
            System::Icd10cm => "Condition",
            System::Rxnorm => "Drug",
            System::Loinc => "Measurement",
            System::Cui => "Observation",
        }
    }
}

/// One concept of the vocabulary.
#[derive(Clone, Debug, PartialEq)]
pub struct Concept {
    /// Synthetic OMOP concept id (unique, from [`FIRST_CONCEPT_ID`]).
    pub concept_id: u64,
    /// The coding system.
    pub system: System,
    /// The code within the system (e.g. `E11.0`, `C0000012`).
    pub code: String,
    /// A readable name; for note concepts also their dictionary term.
    pub name: String,
    /// The latent cluster, or `None` for background concepts (common, unrelated to any
    /// cluster, and absent from the related pairs).
    pub cluster: Option<usize>,
    /// The first concept of its system in its cluster: the cluster's main condition, or
    /// the note concept that mentions it (the `code_note` relation pairs the two).
    pub primary: bool,
    /// Latent vector in R^d: the log-linear model draws the concept with probability
    /// proportional to exp(⟨vector, state⟩ + bias).
    pub vector: Vec<f64>,
    /// Log base frequency.
    pub bias: f64,
}

/// The shared vocabulary: the same at every site (sites differ in how they use it).
#[derive(Clone, Debug, PartialEq)]
pub struct Vocabulary {
    /// Latent dimension d.
    pub dim: usize,
    /// Cluster directions (unit vectors in R^d).
    pub clusters: Vec<Vec<f64>>,
    /// All concepts, ordered by concept id.
    pub concepts: Vec<Concept>,
}

/// A ground-truth related pair, as written to `pairs.csv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelatedPair {
    /// Index of the first concept in [`Vocabulary::concepts`].
    pub a: usize,
    /// Index of the second concept.
    pub b: usize,
    /// `same_cluster_code_code`, `code_note` (a condition and the note concept that
    /// mentions it), `same_cluster_code_note` or `same_cluster_note_note`.
    pub relation: &'static str,
}

/// How concepts are built: per cluster, how many of each system.
const PER_CLUSTER: [(System, usize); 4] = [
    (System::Icd10cm, 2),
    (System::Rxnorm, 2),
    (System::Loinc, 2),
    (System::Cui, 3),
];

/// Background concepts per system (frequent, not tied to a cluster).
const BACKGROUND_PER_SYSTEM: usize = 6;

impl Vocabulary {
    /// Builds a vocabulary of `clusters` clusters in R^`dim`.
    pub(super) fn build(dim: usize, clusters: usize, rng: &mut ChaCha20Rng) -> Vocabulary {
        let directions: Vec<Vec<f64>> = (0..clusters)
            .map(|_| {
                let v: Vec<f64> = (0..dim).map(|_| gaussian(rng)).collect();
                let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
                v.into_iter().map(|x| x / norm).collect()
            })
            .collect();
        let mut concepts = Vec::new();
        let mut push = |system: System,
                        cluster: Option<usize>,
                        j: usize,
                        primary: bool,
                        vector: Vec<f64>,
                        bias: f64| {
            let n = concepts.len();
            let (code, name) = code_and_name(system, cluster, j, n);
            concepts.push(Concept {
                concept_id: FIRST_CONCEPT_ID + n as u64,
                system,
                code,
                name,
                cluster,
                primary,
                vector,
                bias,
            });
        };
        for (k, dir) in directions.iter().enumerate() {
            for &(system, count) in &PER_CLUSTER {
                for j in 0..count {
                    // Close to the cluster direction, with a concept-specific part.
                    let scale = 2.2 + 0.4 * rng.random::<f64>();
                    let vector: Vec<f64> = dir
                        .iter()
                        .map(|&x| scale * x + 0.35 * gaussian(rng))
                        .collect();
                    let bias = -0.5 * rng.random::<f64>();
                    push(system, Some(k), j, j == 0, vector, bias);
                }
            }
        }
        for system in System::ALL {
            for j in 0..BACKGROUND_PER_SYSTEM {
                let vector: Vec<f64> = (0..dim).map(|_| 0.3 * gaussian(rng)).collect();
                push(system, None, j, false, vector, 1.5 + rng.random::<f64>());
            }
        }
        Vocabulary {
            dim,
            clusters: directions,
            concepts,
        }
    }

    /// Index of the concept with this system and code.
    pub fn find(&self, system: System, code: &str) -> Option<usize> {
        self.concepts
            .iter()
            .position(|c| c.system == system && c.code == code)
    }

    /// The ground-truth related pairs: every pair of concepts in one cluster, labelled by
    /// the modalities involved (`code_note` for a condition and its note mention).
    pub fn related_pairs(&self) -> Vec<RelatedPair> {
        let mut pairs = Vec::new();
        for a in 0..self.concepts.len() {
            for b in a + 1..self.concepts.len() {
                let (ca, cb) = (&self.concepts[a], &self.concepts[b]);
                if ca.cluster.is_none() || ca.cluster != cb.cluster {
                    continue;
                }
                let relation = match (ca.system.modality(), cb.system.modality()) {
                    (Modality::Code, Modality::Code) => "same_cluster_code_code",
                    (Modality::Note, Modality::Note) => "same_cluster_note_note",
                    _ => {
                        let (code, note) = if ca.system == System::Cui {
                            (cb, ca)
                        } else {
                            (ca, cb)
                        };
                        if note.primary && code.primary && code.system == System::Icd10cm {
                            "code_note"
                        } else {
                            "same_cluster_code_note"
                        }
                    }
                };
                pairs.push(RelatedPair { a, b, relation });
            }
        }
        pairs
    }

    /// The related pairs as the evaluation reads them (`(system, code)` keys).
    pub fn known_pairs(&self) -> Vec<crate::eval::KnownPair> {
        self.related_pairs()
            .iter()
            .map(|p| {
                let (a, b) = (&self.concepts[p.a], &self.concepts[p.b]);
                crate::eval::KnownPair {
                    a: (a.system.as_str().to_string(), a.code.clone()),
                    b: (b.system.as_str().to_string(), b.code.clone()),
                    relation: p.relation.to_string(),
                }
            })
            .collect()
    }

    /// `pairs.csv`: `system_a,code_a,system_b,code_b,relation`.
    pub fn pairs_csv(&self) -> String {
        let mut out = String::from("system_a,code_a,system_b,code_b,relation\n");
        for p in self.related_pairs() {
            let (a, b) = (&self.concepts[p.a], &self.concepts[p.b]);
            out.push_str(&format!(
                "{},{},{},{},{}\n",
                a.system.as_str(),
                a.code,
                b.system.as_str(),
                b.code,
                p.relation
            ));
        }
        out
    }

    /// `dictionary.csv`: `term,concept_system,concept_code`, two terms per note concept
    /// (its name and an abbreviation), as an NLP extractor's dictionary would hold.
    pub fn dictionary_csv(&self) -> String {
        let mut out = String::from("term,concept_system,concept_code\n");
        for c in self.concepts.iter().filter(|c| c.system == System::Cui) {
            let abbreviation: String = c
                .name
                .split(' ')
                .map(|w| {
                    if w.chars().all(|ch| ch.is_ascii_digit()) {
                        w.to_string()
                    } else {
                        w[..1].to_string()
                    }
                })
                .collect();
            for term in [c.name.as_str(), abbreviation.as_str()] {
                out.push_str(&format!("{term},{},{}\n", c.system.as_str(), c.code));
            }
        }
        out
    }

    /// `concept.csv`: `concept_id,concept_name,domain_id,vocabulary_id,concept_code`.
    pub fn concept_csv(&self) -> String {
        let mut out =
            String::from("concept_id,concept_name,domain_id,vocabulary_id,concept_code\n");
        for c in &self.concepts {
            out.push_str(&format!(
                "{},{},{},{},{}\n",
                c.concept_id,
                c.name,
                c.system.domain(),
                c.system.as_str(),
                c.code
            ));
        }
        out
    }
}

/// Synthetic but well-formed codes: ICD-10-CM-like `Xnn.j`, RxNorm-like integers,
/// LOINC-like `nnnnn-c`, CUI-like `Cnnnnnnn`. Names say the cluster (`cluster 7 drug 1`)
/// so a reader can check an embedding by eye.
fn code_and_name(system: System, cluster: Option<usize>, j: usize, n: usize) -> (String, String) {
    let group = match cluster {
        Some(k) => format!("cluster {k}"),
        None => "common".to_string(),
    };
    match system {
        System::Icd10cm => {
            let letter = (b'A' + (n / 100 % 26) as u8) as char;
            (
                format!("{letter}{:02}.{j}", n % 100),
                format!("{group} condition {j}"),
            )
        }
        System::Rxnorm => (format!("{}", 900_000 + n), format!("{group} drug {j}")),
        System::Loinc => (
            format!("{}-{}", 10_000 + n, n % 10),
            format!("{group} lab {j}"),
        ),
        System::Cui => (format!("C{:07}", n), format!("{group} finding {j}")),
    }
}

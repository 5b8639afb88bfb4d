//! Synthetic multimodal EHR data for `pmi_svd`: a seeded generative model of structured
//! codes and note concepts at several hospitals, with known related concept pairs.
//!
//! The model follows the multimodal EHR embedding papers' latent-variable view:
//! - every concept (ICD10CM condition, RXNORM drug, LOINC lab, note CUI) has a latent
//!   vector in R^d; concepts of one *cluster* (a disease with its drugs, labs and note
//!   mentions) point the same way, which makes them co-occur (see [`vocab`]);
//! - every patient has a latent clinical state in R^d that drifts across encounters
//!   (a mean-reverting random walk around the site's case mix);
//! - at an encounter each modality sees the state plus its own noise and draws tokens from
//!   a log-linear model: P(concept c of system s) ∝ exp(⟨v_c, state⟩ + b_c + site bias);
//!   notes also pick up spurious concepts (NLP extraction errors);
//! - sites differ in case mix (the mean of the state prior) and in coding habits (a
//!   per-site bias on each structured code).
//!
//! Everything is a deterministic function of the seed (ChaCha20). The module is pure:
//! it returns structs and CSV text; the CLI writes the files.

pub mod fhir;
pub mod omop;
pub mod vocab;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;

pub use vocab::{Concept, Modality, RelatedPair, System, Vocabulary};

/// Parameters of the generator.
#[derive(Clone, Debug, PartialEq)]
pub struct EhrConfig {
    /// Latent dimension d.
    pub dim: usize,
    /// Number of latent clusters (diseases).
    pub clusters: usize,
    /// Mean number of encounters per patient (at least one each).
    pub mean_visits: f64,
    /// The seed: vocabulary and every site are deterministic functions of it.
    pub seed: u64,
}

impl Default for EhrConfig {
    fn default() -> Self {
        EhrConfig {
            dim: 10,
            clusters: 30,
            mean_visits: 5.0,
            seed: 1,
        }
    }
}

/// One patient (OMOP `person`).
#[derive(Clone, Debug, PartialEq)]
pub struct Person {
    /// The privacy unit; unique across sites.
    pub person_id: u64,
    /// Year of birth.
    pub birth_year: i32,
    /// `M` or `F`.
    pub gender: char,
}

/// One recorded concept: a code in a structured table or a concept found in a note.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The patient.
    pub person_id: u64,
    /// Date, as days since 1970-01-01 (see [`omop::iso_date`]).
    pub day: i32,
    /// Index of the concept in [`Vocabulary::concepts`] (its system, code and modality).
    pub concept: u32,
}

/// The data of one site.
#[derive(Clone, Debug, PartialEq)]
pub struct SiteData {
    /// Site number (0-based).
    pub site: usize,
    /// Its patients.
    pub persons: Vec<Person>,
    /// Their events, grouped by patient and ordered by date.
    pub events: Vec<Event>,
}

/// The whole synthetic federation: a shared vocabulary and each site's data.
#[derive(Clone, Debug, PartialEq)]
pub struct EhrData {
    /// Concepts, clusters and ground truth.
    pub vocabulary: Vocabulary,
    /// One entry per site.
    pub sites: Vec<SiteData>,
}

/// Site-independent state of the generator; build it once, then generate each site.
#[derive(Clone, Debug)]
pub struct Generator {
    config: EhrConfig,
    vocabulary: Vocabulary,
}

/// Earliest first encounter: 2015-01-01.
const START_DAY: i32 = 16_436;
/// First encounters spread over this many days.
const START_SPAN: f64 = 6.0 * 365.0;
/// Persistence of the clinical state from one encounter to the next.
const STATE_PERSISTENCE: f64 = 0.85;
/// Spread of patient states around the site's case mix.
const STATE_SPREAD: f64 = 0.9;
/// Per-modality noise on the state seen at an encounter.
const MODALITY_NOISE: f64 = 0.35;
/// Probability that a note concept is an extraction error (uniform over note concepts).
const NOTE_ERROR_RATE: f64 = 0.08;
/// Spread of a site's per-code bias (coding habits).
const CODING_HABIT_SPREAD: f64 = 0.6;

impl Generator {
    /// Builds the vocabulary for `config`.
    ///
    /// # Panics
    /// If `config.dim` or `config.clusters` is zero or `mean_visits` is below one (the
    /// CLI validates its flags first).
    pub fn new(config: EhrConfig) -> Generator {
        assert!(
            config.dim > 0 && config.clusters > 0,
            "dim and clusters must be positive"
        );
        assert!(config.mean_visits >= 1.0, "mean_visits must be at least 1");
        let mut rng = ChaCha20Rng::seed_from_u64(config.seed);
        let vocabulary = Vocabulary::build(config.dim, config.clusters, &mut rng);
        Generator { config, vocabulary }
    }

    /// The shared vocabulary.
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    /// Generates site number `site` (0-based) with `patients` patients. Sites are
    /// independent: generating site 2 does not require sites 0 and 1.
    pub fn site(&self, site: usize, patients: usize) -> SiteData {
        let cfg = &self.config;
        let vocab = &self.vocabulary;
        let dim = cfg.dim;
        let mut rng = ChaCha20Rng::seed_from_u64(
            cfg.seed ^ ((site as u64) + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        // Case mix: the site's mean state leans towards a few clusters.
        let mut case_mix: Vec<f64> = (0..dim).map(|_| 0.5 * gaussian(&mut rng)).collect();
        for _ in 0..2 {
            let k = rng.random_range(0..vocab.clusters.len());
            for (m, d) in case_mix.iter_mut().zip(&vocab.clusters[k]) {
                *m += 0.8 * d;
            }
        }
        // Coding habits: a per-site bias on each structured code.
        let site_bias: Vec<f64> = vocab
            .concepts
            .iter()
            .map(|c| match c.system.modality() {
                Modality::Code => CODING_HABIT_SPREAD * gaussian(&mut rng),
                Modality::Note => 0.0,
            })
            .collect();
        let by_system: Vec<(System, Vec<usize>)> = System::ALL
            .iter()
            .map(|&s| {
                let idx = (0..vocab.concepts.len())
                    .filter(|&i| vocab.concepts[i].system == s)
                    .collect();
                (s, idx)
            })
            .collect();
        let notes: Vec<usize> = by_system[3].1.clone();
        let older = 5.0 * site as f64;

        let mut persons = Vec::with_capacity(patients);
        let mut events = Vec::with_capacity(patients * 60);
        let mut state = vec![0.0; dim];
        let mut seen = vec![0.0; dim];
        let mut logits = vec![0.0; vocab.concepts.len()];
        let mut visit: Vec<u32> = Vec::with_capacity(32);
        let innovation = STATE_SPREAD * (1.0 - STATE_PERSISTENCE * STATE_PERSISTENCE).sqrt();
        for p in 0..patients {
            let person_id = (site as u64) * 10_000_000 + p as u64 + 1;
            let age = (50.0 + older + 17.0 * gaussian(&mut rng)).clamp(0.0, 100.0);
            persons.push(Person {
                person_id,
                birth_year: 2020 - age.round() as i32,
                gender: if rng.random::<f64>() < 0.5 { 'F' } else { 'M' },
            });
            for (s, m) in state.iter_mut().zip(&case_mix) {
                *s = m + STATE_SPREAD * gaussian(&mut rng);
            }
            let visits = 1 + poisson(cfg.mean_visits - 1.0, &mut rng);
            let mut day = START_DAY + (rng.random::<f64>() * START_SPAN) as i32;
            for v in 0..visits {
                if v > 0 {
                    day += 1 + exponential(&mut rng, 60.0) as i32;
                    for (s, m) in state.iter_mut().zip(&case_mix) {
                        *s = m + STATE_PERSISTENCE * (*s - m) + innovation * gaussian(&mut rng);
                    }
                }
                visit.clear();
                for (system, idx) in &by_system {
                    let (draws, noisy_notes) = match system {
                        System::Icd10cm => (1 + rng.random_range(0..2), false),
                        System::Rxnorm => (rng.random_range(0..3), false),
                        System::Loinc => (1 + rng.random_range(0..3), false),
                        System::Cui => {
                            if rng.random::<f64>() < 0.3 {
                                (0, true)
                            } else {
                                (3 + rng.random_range(0..5), true)
                            }
                        }
                    };
                    if draws == 0 {
                        continue;
                    }
                    // What this modality sees of the state at this encounter.
                    for (x, s) in seen.iter_mut().zip(&state) {
                        *x = s + MODALITY_NOISE * gaussian(&mut rng);
                    }
                    let mut max = f64::NEG_INFINITY;
                    for &i in idx {
                        let c = &vocab.concepts[i];
                        let dot: f64 = c.vector.iter().zip(&seen).map(|(a, b)| a * b).sum();
                        logits[i] = dot + c.bias + site_bias[i];
                        max = max.max(logits[i]);
                    }
                    let mut total = 0.0;
                    for &i in idx {
                        logits[i] = (logits[i] - max).exp();
                        total += logits[i];
                    }
                    for _ in 0..draws {
                        let chosen = if noisy_notes && rng.random::<f64>() < NOTE_ERROR_RATE {
                            notes[rng.random_range(0..notes.len())]
                        } else {
                            let mut u = rng.random::<f64>() * total;
                            let mut pick = idx[idx.len() - 1];
                            for &i in idx {
                                u -= logits[i];
                                if u <= 0.0 {
                                    pick = i;
                                    break;
                                }
                            }
                            pick
                        };
                        visit.push(chosen as u32);
                    }
                }
                // A concept recorded twice at one encounter is one event.
                visit.sort_unstable();
                visit.dedup();
                events.extend(visit.iter().map(|&concept| Event {
                    person_id,
                    day,
                    concept,
                }));
            }
        }
        SiteData {
            site,
            persons,
            events,
        }
    }
}

/// Generates the vocabulary and `sites` sites of `patients` patients each.
pub fn generate(config: EhrConfig, sites: usize, patients: usize) -> EhrData {
    let generator = Generator::new(config);
    let sites = (0..sites).map(|s| generator.site(s, patients)).collect();
    EhrData {
        vocabulary: generator.vocabulary,
        sites,
    }
}

/// Standard normal by Box–Muller (adequate for synthetic data, never for DP noise).
pub(crate) fn gaussian(rng: &mut ChaCha20Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Exponential with the given mean.
fn exponential(rng: &mut ChaCha20Rng, mean: f64) -> f64 {
    -rng.random::<f64>().max(1e-12).ln() * mean
}

/// Poisson by inversion (small means only).
fn poisson(mean: f64, rng: &mut ChaCha20Rng) -> usize {
    let limit = (-mean).exp();
    let mut product = rng.random::<f64>();
    let mut k = 0;
    while product > limit && k < 1000 {
        product *= rng.random::<f64>();
        k += 1;
    }
    k
}

#[cfg(test)]
mod tests;

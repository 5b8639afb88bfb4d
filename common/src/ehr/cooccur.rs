//! Per-patient bounded co-occurrence counts over a job's vocabulary.
//!
//! Each patient's timeline is cut into windows of `window_days` days, counted from the
//! patient's first event; two vocabulary concepts co-occur when they fall in the same
//! window. A patient contributes the *set* of distinct pairs {i, j} (i ≠ j) that co-occur
//! in any of their windows, each pair once however often it recurs; when the set holds
//! more than `max_pairs_per_patient` pairs, a uniform sample of that many is kept.
//!
//! # Sensitivity
//!
//! Under add/remove one patient, the packed count vector changes by a 0/1 vector with at
//! most `m = max_pairs_per_patient` ones, so its L2 sensitivity is exactly √m (and its L1
//! sensitivity m). The bound holds whatever the sample: it is enforced by construction,
//! not assumed from the data. Marginals r_i = Σ_j C_ij are computed from the released
//! matrix by the coordinator, so they cost nothing more.

use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha20Rng;

use super::Timelines;

/// Marks a timeline concept outside the job's vocabulary.
pub const NOT_IN_VOCABULARY: u32 = u32::MAX;

/// Number of cells of the packed strict upper triangle of an n×n matrix: n(n−1)/2.
pub fn packed_len(n: usize) -> usize {
    n * n.saturating_sub(1) / 2
}

/// Index of cell (i, j), i < j < n, in the packed strict upper triangle (row-major).
#[inline]
pub fn packed_index(n: usize, i: usize, j: usize) -> usize {
    debug_assert!(i < j && j < n);
    i * (2 * n - i - 1) / 2 + (j - i - 1)
}

/// How counts are formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CooccurrenceParams {
    /// Window length in days (≥ 1).
    pub window_days: u32,
    /// Most distinct pairs per patient (≥ 1): the L2 sensitivity is its square root.
    pub max_pairs_per_patient: usize,
}

/// Exact bounded counts of one site (secret until noised).
#[derive(Clone, Debug, PartialEq)]
pub struct Cooccurrence {
    /// Vocabulary size n.
    pub n: usize,
    /// The packed strict upper triangle (length n(n−1)/2): patients whose bounded pair set
    /// holds {i, j}.
    pub counts: Vec<u32>,
    /// Patients with at least one vocabulary pair.
    pub patients_with_pairs: u64,
    /// Patients whose pair set was sampled down to the bound.
    pub patients_capped: u64,
}

/// Counts the bounded co-occurrences of `timelines` over a vocabulary of `n` concepts.
///
/// `to_vocabulary[c]` is the vocabulary index of timeline concept `c`, or
/// [`NOT_IN_VOCABULARY`]. Sampling (for patients over the bound) uses ChaCha20 seeded with
/// `seed`; the sensitivity does not depend on it. `progress` is called with the number of
/// patients done, every few thousand patients.
///
/// # Panics
/// If `to_vocabulary` is shorter than the timelines' concept table, an index is ≥ `n`, or
/// a parameter is zero (the job spec validates them first).
pub fn count(
    timelines: &Timelines,
    to_vocabulary: &[u32],
    n: usize,
    params: CooccurrenceParams,
    seed: u64,
    progress: &mut dyn FnMut(usize),
) -> Cooccurrence {
    assert!(params.window_days > 0 && params.max_pairs_per_patient > 0);
    assert!(to_vocabulary.len() >= timelines.concepts.len());
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut counts = vec![0u32; packed_len(n)];
    let (mut with_pairs, mut capped) = (0u64, 0u64);
    let mut window: Vec<u32> = Vec::new();
    let mut pairs: Vec<u32> = Vec::new();
    let window_days = i64::from(params.window_days);
    for (p, events) in timelines.iter().enumerate() {
        if p % 4096 == 0 {
            progress(p);
        }
        pairs.clear();
        let Some(first) = events.first() else {
            continue;
        };
        let first = i64::from(first.day);
        let mut current = None;
        for e in events {
            let w = (i64::from(e.day) - first).div_euclid(window_days);
            if current != Some(w) {
                window_pairs(&mut window, n, &mut pairs);
                current = Some(w);
            }
            let v = to_vocabulary[e.concept as usize];
            if v != NOT_IN_VOCABULARY {
                assert!((v as usize) < n, "vocabulary index {v} out of range {n}");
                window.push(v);
            }
        }
        window_pairs(&mut window, n, &mut pairs);
        if pairs.is_empty() {
            continue;
        }
        with_pairs += 1;
        pairs.sort_unstable();
        pairs.dedup();
        let m = params.max_pairs_per_patient;
        if pairs.len() > m {
            capped += 1;
            for k in sample(&mut rng, pairs.len(), m) {
                counts[pairs[k] as usize] += 1;
            }
        } else {
            for &cell in &pairs {
                counts[cell as usize] += 1;
            }
        }
    }
    progress(timelines.patients());
    Cooccurrence {
        n,
        counts,
        patients_with_pairs: with_pairs,
        patients_capped: capped,
    }
}

/// Appends the packed cells of every pair of distinct concepts in `window`, then empties it.
fn window_pairs(window: &mut Vec<u32>, n: usize, pairs: &mut Vec<u32>) {
    window.sort_unstable();
    window.dedup();
    for (a, &i) in window.iter().enumerate() {
        for &j in &window[a + 1..] {
            pairs.push(packed_index(n, i as usize, j as usize) as u32);
        }
    }
    window.clear();
}

/// Number of patients holding each timeline concept, each patient contributing at most
/// `max_concepts_per_patient` distinct concepts (a uniform sample when over). L2
/// sensitivity √max_concepts_per_patient under add/remove one patient.
pub fn concept_patients(
    timelines: &Timelines,
    max_concepts_per_patient: usize,
    seed: u64,
) -> Vec<u32> {
    assert!(max_concepts_per_patient > 0);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut counts = vec![0u32; timelines.concepts.len()];
    let mut seen: Vec<u32> = Vec::new();
    for events in timelines.iter() {
        seen.clear();
        seen.extend(events.iter().map(|e| e.concept));
        seen.sort_unstable();
        seen.dedup();
        if seen.len() > max_concepts_per_patient {
            for k in sample(&mut rng, seen.len(), max_concepts_per_patient) {
                counts[seen[k] as usize] += 1;
            }
        } else {
            for &c in &seen {
                counts[c as usize] += 1;
            }
        }
    }
    counts
}

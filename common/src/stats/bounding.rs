//! Contribution bounding: each privacy unit contributes at most `m` rows.
//!
//! # Privacy
//!
//! This is what makes the sensitivities of [`super::plan`] true. Under the add/remove-one-unit
//! relation, adding or removing one unit adds or removes only that unit's rows; after
//! bounding that is at most `m` rows, and no other unit's kept rows change in distribution
//! (each unit's rows are sampled independently of every other unit's). So a statistic
//! that sums a per-row quantity bounded by `c` changes by at most `m · c` (L1), and by at
//! most `m · c` in L2 too (worst case: all `m` rows land in the same coordinate).
//!
//! **Which rows are kept: a uniform sample, not the first rows in file order.** Both are
//! valid bounds (any rule that looks only at the unit's own rows is), but files are often
//! sorted (by visit date, by value), and keeping the first rows would bias every statistic
//! toward the start of the file. Each unit's `m` rows are a uniform random subset of its
//! rows (reservoir sampling, Vitter's Algorithm R), drawn from the same secure generator as
//! the noise. A unit with at most `m` rows keeps all of them.

use std::collections::HashMap;
use std::hash::Hash;

use crate::privacy::noise::NoiseSource;

/// Keeps at most `max_per_unit` rows per unit, sampled uniformly; returns the kept values
/// grouped by unit, units in order of first appearance.
///
/// `max_per_unit` = 0 keeps nothing (callers validate it is ≥ 1).
pub fn bound_contributions<K, V, R>(
    rows: impl IntoIterator<Item = (K, V)>,
    max_per_unit: usize,
    rng: &mut R,
) -> Vec<V>
where
    K: Hash + Eq,
    R: NoiseSource + ?Sized,
{
    // Per unit: (rows seen so far, reservoir).
    let mut order: Vec<(u64, Vec<V>)> = Vec::new();
    let mut index: HashMap<K, usize> = HashMap::new();
    for (unit, value) in rows {
        let slot = *index.entry(unit).or_insert_with(|| {
            order.push((0, Vec::new()));
            order.len() - 1
        });
        let (seen, reservoir) = &mut order[slot];
        *seen += 1;
        if reservoir.len() < max_per_unit {
            reservoir.push(value);
        } else if max_per_unit > 0 {
            // Algorithm R: the `seen`-th row replaces a random slot with probability m/seen.
            let j = uniform_below(rng, *seen);
            if (j as usize) < max_per_unit {
                reservoir[j as usize] = value;
            }
        }
    }
    order.into_iter().flat_map(|(_, r)| r).collect()
}

/// A uniform integer in [0, n), n ≥ 1, without modulo bias (rejection sampling).
pub(crate) fn uniform_below<R: NoiseSource + ?Sized>(rng: &mut R, n: u64) -> u64 {
    debug_assert!(n >= 1);
    // Reject the top partial block of the u64 range.
    let zone = u64::MAX - (u64::MAX % n + 1) % n;
    loop {
        let x = rng.next_u64();
        if x <= zone {
            return x % n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privacy::noise::SimulationRng;

    #[test]
    fn keeps_at_most_m_rows_per_unit_and_all_rows_of_small_units() {
        let mut rng = SimulationRng::seeded_insecure(1);
        let rows = vec![
            ("a", 1),
            ("b", 10),
            ("a", 2),
            ("a", 3),
            ("c", 20),
            ("a", 4),
            ("b", 11),
        ];
        let kept = bound_contributions(rows, 2, &mut rng);
        assert_eq!(kept.len(), 2 + 2 + 1);
        let a: Vec<i32> = kept.iter().copied().filter(|v| *v < 10).collect();
        assert_eq!(a.len(), 2);
        assert!(kept.contains(&10) && kept.contains(&11) && kept.contains(&20));
    }

    #[test]
    fn the_sample_is_uniform_over_a_units_rows() {
        // One unit with 5 rows, keep 1: each row kept ~1/5 of the time.
        let mut rng = SimulationRng::seeded_insecure(2);
        let mut hits = [0u32; 5];
        let n = 20_000;
        for _ in 0..n {
            let kept = bound_contributions((0..5).map(|v| ("u", v)), 1, &mut rng);
            hits[kept[0]] += 1;
        }
        for h in hits {
            let p = h as f64 / n as f64;
            assert!((p - 0.2).abs() < 0.02, "{hits:?}");
        }
    }

    #[test]
    fn uniform_below_covers_its_range() {
        let mut rng = SimulationRng::seeded_insecure(3);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            seen[uniform_below(&mut rng, 7) as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(uniform_below(&mut rng, 1), 0);
    }
}

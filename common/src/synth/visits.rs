//! Synthetic hospital visit tables for `dp_stats`: one CSV per site.
//!
//! Each patient (`person_id`) has one to four visits; each visit records the patient's
//! age and the length of stay. Sites differ in case mix: site `i` has an older population
//! than site `i - 1`, so per-site and pooled means differ visibly in the demo.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// One visit row.
#[derive(Clone, Debug, PartialEq)]
pub struct Visit {
    /// The privacy unit.
    pub person_id: u64,
    /// Age in years at the visit.
    pub age: f64,
    /// Length of stay in days.
    pub length_of_stay: f64,
}

/// The visits of site number `site` (0-based) with `patients` patients.
pub fn site_visits(site: usize, patients: usize, seed: u64) -> Vec<Visit> {
    let mut rng =
        ChaCha20Rng::seed_from_u64(seed ^ (site as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mean_age = 38.0 + 8.0 * site as f64;
    let mut rows = Vec::with_capacity(patients * 2);
    for p in 0..patients {
        let person_id = (site as u64) * 10_000_000 + p as u64 + 1;
        // Box–Muller from two uniforms: adequate for synthetic data.
        let (u1, u2): (f64, f64) = (rng.random::<f64>().max(f64::MIN_POSITIVE), rng.random());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        let age = (mean_age + 18.0 * z).clamp(0.0, 104.0).round();
        let visits = 1 + (rng.random::<f64>() * 4.0) as usize;
        for _ in 0..visits {
            let stay = (-(rng.random::<f64>().max(1e-12)).ln() * (2.0 + age / 30.0)).round() + 1.0;
            rows.push(Visit {
                person_id,
                age,
                length_of_stay: stay,
            });
        }
    }
    rows
}

/// The rows as CSV text with header `person_id,age,length_of_stay`.
pub fn to_csv(rows: &[Visit]) -> String {
    let mut out = String::from("person_id,age,length_of_stay\n");
    for r in rows {
        out.push_str(&format!("{},{},{}\n", r.person_id, r.age, r.length_of_stay));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_site_dependent() {
        let a = site_visits(0, 500, 7);
        assert_eq!(a, site_visits(0, 500, 7));
        let b = site_visits(2, 500, 7);
        let mean = |rows: &[Visit]| rows.iter().map(|r| r.age).sum::<f64>() / rows.len() as f64;
        assert!(
            mean(&b) > mean(&a) + 8.0,
            "site 2 should be older: {} vs {}",
            mean(&b),
            mean(&a)
        );
        assert!(a.len() >= 500 && a.len() <= 2000);
        assert!(to_csv(&a).starts_with("person_id,age,length_of_stay\n"));
    }
}

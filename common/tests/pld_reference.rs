//! Silo's PLD accountant against Google's dp-accounting on the same parameters.
//!
//! `reference/pld_dp_accounting.json` is written by `reference/generate.py` with
//! `dp_accounting.pld.PLDAccountant()` at its defaults (connect-the-dots, discretisation
//! 1e-4, pessimistic). Every ε must agree within 2 % relative, and never fall below the
//! exact ε where one is known (the analytic Gaussian of Balle & Wang 2018, arXiv 1805.06530;
//! the one-shot Laplace).
//!
//! Cases whose history is expensive to discretise (a loss spread over many nats) are
//! checked by `heavy_cases_match_dp_accounting`, which a debug build (Silo's crates at
//! opt-level 0) runs only with `--ignored`; a release build always runs it.

use std::collections::HashMap;

use serde_json::Value;
use silo_common::privacy::pld::{PldAccountant, PrivacyLossDistribution};
use silo_common::privacy::{Accountant, Composition, PrivacyEvent};

/// Relative tolerance on ε against dp-accounting.
const EPSILON_REL_TOL: f64 = 2e-2;
/// Relative tolerance on a single Gaussian release against the analytic ε.
const ANALYTIC_REL_TOL: f64 = 1e-2;

fn reference() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/pld_dp_accounting.json"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).expect("pld_dp_accounting.json is valid JSON")
}

fn num(value: &Value, key: &str) -> f64 {
    value[key]
        .as_f64()
        .unwrap_or_else(|| panic!("missing number {key:?} in {value}"))
}

fn count(value: &Value, key: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("missing count {key:?} in {value}"))
}

/// The generator writes a non-finite ε as `null` (+∞).
fn num_or_inf(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::INFINITY)
}

fn rel(got: f64, want: f64) -> f64 {
    if got == want {
        0.0
    } else {
        ((got - want) / want).abs()
    }
}

fn event_of(e: &Value) -> Composition {
    let event = match e["kind"].as_str().unwrap() {
        "poisson_gaussian" => {
            PrivacyEvent::subsampled_gaussian(num(e, "sample_rate"), num(e, "noise_multiplier"))
        }
        "gaussian" => PrivacyEvent::gaussian(num(e, "noise_multiplier")),
        "laplace" => PrivacyEvent::laplace(num(e, "scale")),
        other => panic!("unknown event kind {other:?} in pld_dp_accounting.json"),
    }
    .unwrap();
    Composition::new(event, count(e, "count"))
}

/// Rows whose composed loss spreads over many nats (reference ε > 20) or whose one-step
/// PLD is wide (σ ≤ 0.5: losses up to ~20 nats, 4·10⁵ grid points per direction) need
/// grids and FFTs of 10⁵–10⁷ points: fine optimised (≤ 1 s each), minutes in total
/// unoptimised. The rest (222 of 352 rows, the practical DP-SGD range) runs everywhere.
fn heavy(row: &Value) -> bool {
    row["epsilon"].as_f64().is_none_or(|e| e > 20.0)
        || row["noise_multiplier"].as_f64().is_some_and(|s| s <= 0.5)
}

/// Worst relative ε deviation seen, with a description of the case, for the test output.
#[derive(Default)]
struct Worst {
    rel: f64,
    what: String,
    checked: usize,
    deferred: usize,
}

impl Worst {
    fn see(&mut self, rel: f64, what: impl FnOnce() -> String) {
        self.checked += 1;
        if rel > self.rel {
            self.rel = rel;
            self.what = what();
        }
    }
}

/// Checks every row of `rows` (two δ per history, so each PLD is built once).
fn check_rows(
    rows: &[Value],
    history_of: impl Fn(&Value) -> Vec<Composition>,
    label: &str,
    include_heavy: bool,
) -> Worst {
    let acc = PldAccountant::default();
    let mut cache: HashMap<String, PrivacyLossDistribution> = HashMap::new();
    let mut worst = Worst::default();
    for row in rows {
        // Each test takes its own partition of the rows.
        if heavy(row) != include_heavy {
            worst.deferred += 1;
            continue;
        }
        let history = history_of(row);
        let key = format!("{history:?}");
        let pld = cache
            .entry(key)
            .or_insert_with(|| acc.distribution(&history).unwrap());
        let delta = num(row, "delta");
        let got = pld.epsilon_for_delta(delta).unwrap();
        let want = num_or_inf(&row["epsilon"]);
        let r = rel(got, want);
        assert!(
            r <= EPSILON_REL_TOL,
            "{label}: ε {got} vs dp-accounting {want} (rel {r:.2e}) for {row}"
        );
        if let Some(exact) = row["analytic_epsilon"].as_f64() {
            assert!(
                got >= exact,
                "{label}: ε {got} below the exact {exact} for {row}"
            );
        }
        worst.see(r, || row.to_string());
    }
    worst
}

fn rows<'a>(reference: &'a Value, key: &str) -> &'a [Value] {
    let rows = reference[key]
        .as_array()
        .unwrap_or_else(|| panic!("missing array {key:?}"));
    assert!(!rows.is_empty(), "no {key} rows");
    rows
}

fn report(label: &str, worst: &Worst) {
    println!(
        "{label}: {} rows, worst relative ε deviation {:.3e} on {}{}",
        worst.checked,
        worst.rel,
        worst.what,
        if worst.deferred > 0 {
            format!(" ({} rows left to the other partition)", worst.deferred)
        } else {
            String::new()
        }
    );
}

fn sgd_history(row: &Value) -> Vec<Composition> {
    let event =
        PrivacyEvent::subsampled_gaussian(num(row, "sample_rate"), num(row, "noise_multiplier"))
            .unwrap();
    vec![Composition::new(event, count(row, "steps"))]
}

fn gaussian_history(row: &Value) -> Vec<Composition> {
    let event = PrivacyEvent::gaussian(num(row, "noise_multiplier")).unwrap();
    vec![Composition::new(event, count(row, "count"))]
}

fn laplace_history(row: &Value) -> Vec<Composition> {
    let event = PrivacyEvent::laplace(num(row, "scale")).unwrap();
    vec![Composition::new(event, count(row, "count"))]
}

fn heterogeneous_history(row: &Value) -> Vec<Composition> {
    row["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(event_of)
        .collect()
}

#[test]
fn reference_was_made_at_our_discretisation() {
    let reference = reference();
    let interval = num(&reference["meta"], "value_discretization_interval");
    assert_eq!(
        interval,
        PldAccountant::default().value_discretization_interval()
    );
}

#[test]
fn subsampled_gaussian_matches_dp_accounting() {
    let reference = reference();
    let worst = check_rows(
        rows(&reference, "subsampled_gaussian"),
        sgd_history,
        "DP-SGD",
        false,
    );
    report("DP-SGD", &worst);
}

#[test]
fn gaussian_matches_dp_accounting_and_analytic() {
    let reference = reference();
    let worst = check_rows(
        rows(&reference, "gaussian"),
        gaussian_history,
        "Gaussian",
        false,
    );
    report("Gaussian", &worst);
}

#[test]
fn laplace_matches_dp_accounting() {
    let reference = reference();
    let worst = check_rows(
        rows(&reference, "laplace"),
        laplace_history,
        "Laplace",
        false,
    );
    report("Laplace", &worst);
}

#[test]
fn heterogeneous_histories_match_dp_accounting() {
    let reference = reference();
    let worst = check_rows(
        rows(&reference, "heterogeneous"),
        heterogeneous_history,
        "heterogeneous",
        false,
    );
    report("heterogeneous", &worst);
}

/// The cases whose PLD spans a wide loss range, and the ones dp-accounting gave up on
/// (Silo must still answer those, safely). In a debug build run them with
/// `cargo test -p silo-common --test pld_reference -- --ignored`.
#[test]
#[cfg_attr(debug_assertions, ignore = "heavy in debug; runs in release")]
fn heavy_cases_match_dp_accounting() {
    let reference = reference();
    for (key, history_of) in [
        (
            "subsampled_gaussian",
            sgd_history as fn(&Value) -> Vec<Composition>,
        ),
        ("gaussian", gaussian_history),
        ("laplace", laplace_history),
        ("heterogeneous", heterogeneous_history),
    ] {
        let worst = check_rows(rows(&reference, key), history_of, key, true);
        report(&format!("{key} (heavy)"), &worst);
    }
    let acc = PldAccountant::default();
    let skipped = reference["skipped"].as_array().cloned().unwrap_or_default();
    for case in &skipped {
        let history = match case["kind"].as_str() {
            Some("poisson_gaussian") => sgd_history(case),
            Some("gaussian") => gaussian_history(case),
            Some("laplace") => laplace_history(case),
            _ => heterogeneous_history(case),
        };
        let e = acc.epsilon(&history, 1e-5).unwrap();
        println!("dp-accounting skipped {case}; Silo: ε = {e} at δ = 1e-5");
        assert!(e > 0.0, "{case}");
    }
}

#[test]
fn single_gaussian_is_above_the_analytic_epsilon() {
    let reference = reference();
    let acc = PldAccountant::default();
    let mut worst = Worst::default();
    for row in rows(&reference, "analytic_gaussian") {
        let sigma = num(row, "noise_multiplier");
        let delta = num(row, "delta");
        let exact = num(row, "epsilon");
        let history = [Composition::new(PrivacyEvent::gaussian(sigma).unwrap(), 1)];
        let got = acc.epsilon(&history, delta).unwrap();
        assert!(
            got >= exact,
            "σ={sigma} δ={delta}: {got} below exact {exact}"
        );
        let r = rel(got, exact);
        assert!(
            r <= ANALYTIC_REL_TOL,
            "σ={sigma} δ={delta}: {got} vs exact {exact} (rel {r:.2e})"
        );
        worst.see(r, || format!("σ={sigma} δ={delta}"));
    }
    report("analytic Gaussian (excess over exact)", &worst);
}

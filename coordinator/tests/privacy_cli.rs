//! `silo privacy epsilon|sigma` against the reference libraries' numbers, through the real
//! binary: the planner prints what the accountants compute, for points across the grid.

use std::process::Command;

use serde_json::Value;

fn silo(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_silo"))
        .args(args)
        .output()
        .expect("silo runs");
    assert!(
        out.status.success(),
        "silo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document on stdout")
}

fn reference(file: &str) -> Value {
    let path = format!(
        "{}/../common/tests/reference/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every 25th case of the grid (10 cases spread over q, sigma, T and delta).
fn sample(cases: &Value) -> Vec<&Value> {
    cases.as_array().unwrap().iter().step_by(25).collect()
}

fn epsilon_json(case: &Value, accountant: &str) -> Value {
    let f = |k: &str| case[k].as_f64().unwrap().to_string();
    silo(&[
        "privacy",
        "epsilon",
        "--mechanism",
        "subsampled-gaussian",
        "--sample-rate",
        &f("sample_rate"),
        "--noise-multiplier",
        &f("noise_multiplier"),
        "--steps",
        &case["steps"].as_u64().unwrap().to_string(),
        "--delta",
        &f("delta"),
        "--accountant",
        accountant,
        "--json",
    ])
}

#[test]
fn rdp_epsilon_matches_opacus_across_the_grid() {
    let refs = reference("rdp_opacus.json");
    for case in sample(&refs["cases"]) {
        let doc = epsilon_json(case, "rdp");
        let (ours, theirs) = (
            doc["epsilon"].as_f64().unwrap(),
            case["epsilon"].as_f64().unwrap(),
        );
        assert!(
            ((ours - theirs) / theirs).abs() < 0.005,
            "{case}: silo {ours} vs opacus {theirs}"
        );
        assert_eq!(doc["accountant"], "rdp");
        assert_eq!(doc["delta"].as_f64(), case["delta"].as_f64());
    }
}

#[test]
fn pld_epsilon_matches_dp_accounting_across_the_grid() {
    let refs = reference("pld_dp_accounting.json");
    // Keep the debug-mode run short: the grid's moderate cases (the full grid is checked in
    // common/tests/pld_reference.rs).
    for case in sample(&refs["subsampled_gaussian"])
        .into_iter()
        .filter(|c| c["epsilon"].as_f64().unwrap() < 20.0)
    {
        let doc = epsilon_json(case, "pld");
        let (ours, theirs) = (
            doc["epsilon"].as_f64().unwrap(),
            case["epsilon"].as_f64().unwrap(),
        );
        assert!(
            ((ours - theirs) / theirs).abs() < 0.02,
            "{case}: silo {ours} vs dp-accounting {theirs}"
        );
    }
}

#[test]
fn sigma_inverts_epsilon() {
    for accountant in ["rdp", "pld"] {
        let doc = silo(&[
            "privacy",
            "sigma",
            "--epsilon",
            "2",
            "--delta",
            "1e-5",
            "--sample-rate",
            "0.02",
            "--steps",
            "500",
            "--accountant",
            accountant,
            "--json",
        ]);
        let sigma = doc["noise_multiplier"].as_f64().unwrap();
        assert!(doc["epsilon"].as_f64().unwrap() <= 2.0);
        let check = silo(&[
            "privacy",
            "epsilon",
            "--mechanism",
            "subsampled-gaussian",
            "--sample-rate",
            "0.02",
            "--noise-multiplier",
            &sigma.to_string(),
            "--steps",
            "500",
            "--delta",
            "1e-5",
            "--accountant",
            accountant,
            "--json",
        ]);
        let eps = check["epsilon"].as_f64().unwrap();
        assert!(
            eps <= 2.0 && eps > 1.99,
            "{accountant}: sigma {sigma} gives epsilon {eps}"
        );
    }
}

#[test]
fn laplace_and_gaussian_releases() {
    // One Laplace release of scale 2 is (0.5, 0)-DP; at delta > 0 the PLD may report a
    // hair less, never more.
    let doc = silo(&[
        "privacy",
        "epsilon",
        "--mechanism",
        "laplace",
        "--scale",
        "2",
        "--delta",
        "1e-6",
        "--json",
    ]);
    let eps = doc["epsilon"].as_f64().unwrap();
    assert!(eps <= 0.5 + 1e-9 && eps > 0.49, "{eps}");
    // Five releases compose to at most 2.5.
    let doc = silo(&[
        "privacy",
        "epsilon",
        "--mechanism",
        "laplace",
        "--scale",
        "2",
        "--compositions",
        "5",
        "--delta",
        "1e-6",
        "--json",
    ]);
    assert!(doc["epsilon"].as_f64().unwrap() <= 2.5 + 1e-9);
    // Gaussian sigma = 1: the analytic Gaussian mechanism gives epsilon 4.4 at delta 1e-5
    // (Balle & Wang 2018); the PLD must not report less.
    let refs = reference("pld_dp_accounting.json");
    let exact = refs["analytic_gaussian"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["noise_multiplier"].as_f64() == Some(1.0) && c["delta"].as_f64() == Some(1e-5))
        .unwrap()["epsilon"]
        .as_f64()
        .unwrap();
    let doc = silo(&[
        "privacy",
        "epsilon",
        "--mechanism",
        "gaussian",
        "--noise-multiplier",
        "1",
        "--delta",
        "1e-5",
        "--json",
    ]);
    let eps = doc["epsilon"].as_f64().unwrap();
    assert!(
        eps >= exact && eps < exact * 1.01,
        "pld {eps} vs analytic {exact}"
    );
}

//! Accountant benchmark: ε for 10,000 DP-SGD steps under Silo's RDP and PLD accountants,
//! next to the Python references (dp-accounting's RDP and PLD, Opacus's RDP) in one run.
//!
//! Run: `bash bench/setup-python.sh` once (creates ./.venv), then
//! `cargo bench -p silo-common --bench accountants`. Without the venv the Rust side still
//! runs and the reference columns say how to enable them. `SILO_BENCH_PYTHON` chooses
//! another interpreter. Flags after `--`: `--sample-rate Q --noise-multiplier S --steps T
//! --delta D`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use silo_common::privacy::pld::PldAccountant;
use silo_common::privacy::rdp::RdpAccountant;
use silo_common::privacy::{Accountant, Composition, PrivacyEvent};

struct Case {
    sample_rate: f64,
    noise_multiplier: f64,
    steps: u64,
    delta: f64,
}

fn parse_args() -> Case {
    let mut case = Case {
        sample_rate: 0.01,
        noise_multiplier: 1.0,
        steps: 10_000,
        delta: 1e-5,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--sample-rate" => case.sample_rate = value.parse().expect("--sample-rate Q"),
            "--noise-multiplier" => {
                case.noise_multiplier = value.parse().expect("--noise-multiplier S")
            }
            "--steps" => case.steps = value.parse().expect("--steps T"),
            "--delta" => case.delta = value.parse().expect("--delta D"),
            _ => {
                i += 1; // `--bench` and other harness flags
                continue;
            }
        }
        i += 2;
    }
    case
}

/// Best wall time of `reps` runs of `f`, and its last value.
fn best_of(reps: usize, mut f: impl FnMut() -> f64) -> (f64, f64) {
    let mut best = f64::INFINITY;
    let mut value = f64::NAN;
    for _ in 0..reps {
        let start = Instant::now();
        value = std::hint::black_box(f());
        best = best.min(start.elapsed().as_secs_f64());
    }
    (value, best)
}

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SILO_BENCH_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    venv.exists().then_some(venv)
}

fn main() {
    let case = parse_args();
    let history = [Composition::new(
        PrivacyEvent::subsampled_gaussian(case.sample_rate, case.noise_multiplier)
            .expect("valid case"),
        case.steps,
    )];
    println!(
        "epsilon for {} DP-SGD steps, q = {}, sigma = {}, delta = {} (best of 5 runs; references best of 3)",
        case.steps, case.sample_rate, case.noise_multiplier, case.delta
    );
    // A fresh accountant per run, as the Python side does.
    let (rdp_eps, rdp_s) = best_of(5, || {
        RdpAccountant::default()
            .epsilon(&history, case.delta)
            .expect("rdp")
    });
    let (pld_eps, pld_s) = best_of(5, || {
        PldAccountant::default()
            .epsilon(&history, case.delta)
            .expect("pld")
    });

    let reference = python().and_then(|py| {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench/accountant_reference.py");
        let out = Command::new(&py)
            .arg(script)
            .args(["--sample-rate", &case.sample_rate.to_string()])
            .args(["--noise-multiplier", &case.noise_multiplier.to_string()])
            .args(["--steps", &case.steps.to_string()])
            .args(["--delta", &case.delta.to_string()])
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "reference script failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        serde_json::from_slice::<serde_json::Value>(&out.stdout).ok()
    });

    println!(
        "{:<22} {:>12} {:>12} {:>16} {:>10}",
        "accountant", "epsilon", "seconds", "reference", "speed-up"
    );
    let row = |name: &str, eps: f64, secs: f64, reference_key: &str| match reference
        .as_ref()
        .and_then(|r| r.get(reference_key))
    {
        Some(r) => {
            let r_eps = r["epsilon"].as_f64().unwrap_or(f64::NAN);
            let r_s = r["seconds"].as_f64().unwrap_or(f64::NAN);
            println!(
                "{name:<22} {eps:>12.6} {secs:>12.6} {:>16} {:>9.1}x   (reference epsilon {r_eps:.6}, {r_s:.4} s, rel. diff {:+.3}%)",
                reference_key,
                r_s / secs,
                100.0 * (eps - r_eps) / r_eps
            );
        }
        None => println!("{name:<22} {eps:>12.6} {secs:>12.6} {:>16}", "n/a"),
    };
    row("silo rdp", rdp_eps, rdp_s, "dp_accounting_rdp");
    row("silo rdp", rdp_eps, rdp_s, "opacus_rdp");
    row("silo pld", pld_eps, pld_s, "dp_accounting_pld");
    if reference.is_none() {
        println!("(reference columns need the Python venv: bash bench/setup-python.sh)");
    } else if let Some(v) = reference.as_ref().and_then(|r| r.get("versions")) {
        println!("reference versions: {v}");
    }
}

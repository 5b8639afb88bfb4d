//! Truncated SVD benchmark (DESIGN §8): rank-100 randomized SVD of a 5,000 × 5,000 dense
//! symmetric PSD matrix with a decaying spectrum, Silo (faer) next to scikit-learn's
//! `randomized_svd` on the same matrix in the same run, same oversamples and power
//! iterations, with the error of the top singular values against the exact ones.
//!
//! The matrix is A = Q diag(s) Qᵀ with Q a seeded random orthonormal n × 1000 basis and
//! s_j = 1/(1 + j): its singular values are known exactly by construction (rounding aside,
//! ~1e-16·s_0), which is the exact reference; `--check-exact` also compares them with faer's
//! dense symmetric eigensolver (slow: a full O(n³) decomposition). The slow 1/j decay is
//! like a PMI matrix's and makes the accuracy column meaningful.
//!
//! Threads: faer runs with `Par::rayon(T)` and scikit-learn's BLAS is capped at T threads
//! with threadpoolctl (T = `--threads`, default 2; T = 1 runs faer sequentially). Rayon's
//! pool itself has `RAYON_NUM_THREADS` threads (default: one per core).
//!
//! Run: `bash bench/setup-python.sh` once (creates ./.venv with scikit-learn), then
//! `cargo bench -p silo-common --bench svd`. Without the venv the Rust side still runs.
//! `SILO_BENCH_PYTHON` chooses another interpreter. Flags after `--`: `--n N --rank K
//! --reps R --threads T --check-exact`.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use faer::{Mat, Par, Side};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use silo_common::linalg::{PowerIterations, RandomizedSvd};

struct Case {
    n: usize,
    rank: usize,
    reps: usize,
    threads: usize,
    check_exact: bool,
}

const OVERSAMPLES: usize = 10;
const SUPPORT: usize = 1000;

fn parse_args() -> Case {
    let mut case = Case {
        n: 5000,
        rank: 100,
        reps: 3,
        threads: 2,
        check_exact: false,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--n" => case.n = value.parse().expect("--n N"),
            "--rank" => case.rank = value.parse().expect("--rank K"),
            "--reps" => case.reps = value.parse().expect("--reps R"),
            "--threads" => case.threads = value.parse().expect("--threads T"),
            "--check-exact" => {
                case.check_exact = true;
                i += 1;
                continue;
            }
            _ => {
                i += 1; // `--bench` and other harness flags
                continue;
            }
        }
        i += 2;
    }
    case
}

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SILO_BENCH_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    venv.exists().then_some(venv)
}

/// The benchmark matrix and its exact singular values (non-increasing).
fn test_matrix(n: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
    let support = SUPPORT.min(n);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut normal = move || {
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    };
    let mut g = Mat::<f64>::zeros(n, support);
    for j in 0..support {
        for i in 0..n {
            g[(i, j)] = normal();
        }
    }
    let q = g.qr().compute_thin_Q();
    let spectrum: Vec<f64> = (0..support).map(|j| 1.0 / (1.0 + j as f64)).collect();
    let scaled = Mat::from_fn(n, support, |i, j| q[(i, j)] * spectrum[j]);
    let mut a = &scaled * q.transpose();
    // Exactly symmetric, not merely up to rounding.
    for j in 0..n {
        for i in 0..j {
            let mean = 0.5 * (a[(i, j)] + a[(j, i)]);
            a[(i, j)] = mean;
            a[(j, i)] = mean;
        }
    }
    (a, spectrum)
}

/// Largest and mean relative error of `got` against `exact` over the first `k` values.
fn errors(got: &[f64], exact: &[f64], k: usize) -> (f64, f64) {
    let rel: Vec<f64> = (0..k)
        .map(|j| (got[j] - exact[j]).abs() / exact[j])
        .collect();
    let max = rel.iter().cloned().fold(0.0, f64::max);
    (max, rel.iter().sum::<f64>() / k as f64)
}

fn main() {
    let case = parse_args();
    let par = if case.threads <= 1 {
        Par::Seq
    } else {
        Par::rayon(case.threads)
    };
    faer::set_global_parallelism(par);

    let start = Instant::now();
    let (a, exact) = test_matrix(case.n, 2026);
    println!(
        "matrix: {n}×{n} symmetric PSD, s_j = 1/(1+j) for j < {support} (built in {:.1} s)",
        start.elapsed().as_secs_f64(),
        n = case.n,
        support = SUPPORT.min(case.n),
    );
    if case.check_exact {
        let start = Instant::now();
        let mut eig = a
            .self_adjoint_eigenvalues(Side::Lower)
            .expect("eigensolver");
        eig.sort_by(|x, y| y.total_cmp(x));
        let (max, _) = errors(&eig, &exact, case.rank);
        println!(
            "exact check: faer dense eigenvalues vs construction, max rel err {max:.1e} over top {} ({:.1} s)",
            case.rank,
            start.elapsed().as_secs_f64()
        );
    }

    let iterations = PowerIterations::Auto.resolve(case.rank, case.n, case.n);
    let svd = RandomizedSvd {
        rank: case.rank,
        oversamples: OVERSAMPLES,
        power_iterations: PowerIterations::Fixed(iterations),
        seed: 0,
    };
    println!(
        "rank {}, oversamples {OVERSAMPLES}, power iterations {iterations} (QR), best of {}, {} thread(s)",
        case.rank, case.reps, case.threads
    );

    let mut best = f64::INFINITY;
    let mut values = Vec::new();
    for _ in 0..case.reps {
        let start = Instant::now();
        let out = std::hint::black_box(svd.compute(a.as_ref()).expect("svd"));
        best = best.min(start.elapsed().as_secs_f64());
        values = out.s;
    }
    let k10 = case.rank.min(10);
    let (max, mean) = errors(&values, &exact, case.rank);
    let (max10, _) = errors(&values, &exact, k10);
    println!(
        "{:<32} {:>9} {:>14} {:>14} {:>14}",
        "implementation", "best (s)", "max rel err", "mean rel err", "max rel top10"
    );
    println!(
        "{:<32} {best:>9.3} {max:>14.2e} {mean:>14.2e} {max10:>14.2e}",
        "silo (faer, QR)"
    );

    let Some(python) = python() else {
        println!("scikit-learn: skipped (run `bash bench/setup-python.sh` to create ./.venv)");
        return;
    };
    let path = std::env::temp_dir().join(format!("silo-svd-bench-{}.f64", std::process::id()));
    {
        let file = std::fs::File::create(&path).expect("temp file");
        let mut out = std::io::BufWriter::new(file);
        for j in 0..case.n {
            for i in 0..case.n {
                out.write_all(&a[(i, j)].to_le_bytes()).expect("write");
            }
        }
        out.flush().expect("flush");
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench/svd_reference.py");
    let threads = case.threads.max(1).to_string();
    let output = Command::new(&python)
        .arg(&script)
        .arg(&path)
        .args([
            case.n.to_string(),
            case.rank.to_string(),
            OVERSAMPLES.to_string(),
            iterations.to_string(),
            case.reps.to_string(),
        ])
        .env("SILO_BENCH_THREADS", &threads)
        .env("OMP_NUM_THREADS", &threads)
        .env("OPENBLAS_NUM_THREADS", &threads)
        .env("MKL_NUM_THREADS", &threads)
        .output();
    let _ = std::fs::remove_file(&path);
    let output = match output {
        Ok(o) if o.status.success() => o,
        Ok(o) => {
            println!(
                "scikit-learn: failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
            return;
        }
        Err(e) => {
            println!("scikit-learn: could not run {}: {e}", python.display());
            return;
        }
    };
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    for run in report["runs"].as_array().expect("runs") {
        let normalizer = run["normalizer"].as_str().unwrap_or("?");
        let seconds = run["best_seconds"].as_f64().expect("seconds");
        let s: Vec<f64> = run["singular_values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect();
        let (max, mean) = errors(&s, &exact, case.rank);
        let (max10, _) = errors(&s, &exact, k10);
        let label = format!("scikit-learn ({normalizer})");
        println!("{label:<32} {seconds:>9.3} {max:>14.2e} {mean:>14.2e} {max10:>14.2e}");
        println!(
            "{:<32} {:>9.2}x",
            format!("  sklearn {normalizer} / silo time"),
            seconds / best
        );
    }
    println!("scikit-learn BLAS: {}", report["blas"]);
}

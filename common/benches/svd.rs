//! Truncated SVD benchmark (DESIGN §8): rank-100 randomized SVD of a 5,000 × 5,000 dense
//! symmetric PSD matrix with a decaying spectrum, Silo (faer) next to scikit-learn's
//! `randomized_svd` on the same matrix in the same run, doing the same work, with the error
//! of the top singular values against the exact ones.
//!
//! Same work on both sides: ℓ = rank + 10 oversamples test vectors, scikit-learn's
//! `n_iter='auto'` power iterations (7 for rank 100 < 0.1·5000), its default
//! `power_iteration_normalizer='auto'` (LU for more than 2 iterations) and the same order of
//! operations: 2·iterations + 2 products of A with an ℓ-column block, 2·iterations LUs and
//! one QR of the 5,000 × ℓ block, the SVD of the ℓ × 5,000 matrix B = Qᵀ A. Neither side
//! uses the matrix's symmetry. Silo's time also includes its scan for non-finite entries,
//! which scikit-learn does not do.
//!
//! The matrix is A = Q diag(s) Qᵀ with Q a seeded random orthonormal n × 1000 basis and
//! s_j = 1/(1 + j): its singular values are known exactly by construction (rounding aside,
//! ~1e-16·s_0), which is the exact reference; `--check-exact` also compares them with faer's
//! dense symmetric eigensolver (slow: a full O(n³) decomposition). The slow 1/j decay is
//! like a PMI matrix's and makes the accuracy column meaningful.
//!
//! Noise: the machine may be shared, so the two sides run interleaved in one process pair
//! (Silo, scikit-learn, scikit-learn, Silo, …) after one untimed warm-up each, repetition r
//! uses seed r on both sides, and the table reports medians: of the times, of the per-pair
//! time ratios, and of each repetition's errors.
//!
//! Threads: for each T in `--threads` (default `1,2`), faer runs with `Par::Seq` (T = 1) or
//! `Par::rayon(T)`, and scikit-learn's BLAS and OpenMP pools are capped at T with
//! threadpoolctl (the Python process also starts with `OMP_NUM_THREADS` etc. set to the
//! largest T). Rayon's pool itself has `RAYON_NUM_THREADS` threads (default: one per core).
//!
//! Run: `bash bench/setup-python.sh` once (creates ./.venv with scikit-learn), then
//! `cargo bench -p silo-common --bench svd`. Without the venv the Rust side still runs.
//! `SILO_BENCH_PYTHON` chooses another interpreter. Flags after `--`: `--n N --rank K
//! --reps R --threads T[,T…] --check-exact`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Instant;

use faer::{Mat, Par, Side};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;
use silo_common::linalg::{PowerIterations, RandomizedSvd};

struct Case {
    n: usize,
    rank: usize,
    reps: usize,
    threads: Vec<usize>,
    check_exact: bool,
}

const OVERSAMPLES: usize = 10;
const SUPPORT: usize = 1000;
/// scikit-learn's default normaliser; 'auto' is LU for more than two power iterations.
const NORMALIZER: &str = "auto";

fn parse_args() -> Case {
    let mut case = Case {
        n: 5000,
        rank: 100,
        reps: 7,
        threads: vec![1, 2],
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
            "--threads" => {
                case.threads = value
                    .split(',')
                    .map(|t| t.parse().expect("--threads T[,T…]"))
                    .collect()
            }
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
    assert!(case.reps >= 1, "--reps must be at least 1");
    assert!(
        case.threads.iter().all(|&t| t >= 1),
        "--threads must be at least 1"
    );
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

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        0.5 * (sorted[mid - 1] + sorted[mid])
    }
}

/// One timed run: seconds and singular values.
struct Run {
    seconds: f64,
    s: Vec<f64>,
}

/// Per-repetition figures of one side at one thread count.
#[derive(Default)]
struct Figures {
    seconds: Vec<f64>,
    max_err: Vec<f64>,
    mean_err: Vec<f64>,
    max_err_top10: Vec<f64>,
}

impl Figures {
    fn push(&mut self, run: &Run, exact: &[f64], rank: usize) {
        let (max, mean) = errors(&run.s, exact, rank);
        let (max10, _) = errors(&run.s, exact, rank.min(10));
        self.seconds.push(run.seconds);
        self.max_err.push(max);
        self.mean_err.push(mean);
        self.max_err_top10.push(max10);
    }
}

/// The scikit-learn side: a Python process that holds the matrix and runs on request.
struct Reference {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Reference {
    fn start(
        python: &Path,
        matrix: &Path,
        case: &Case,
        iterations: usize,
    ) -> Result<(Self, serde_json::Value), String> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench/svd_reference.py");
        let threads = case.threads.iter().max().copied().unwrap_or(1).to_string();
        let mut child = Command::new(python)
            .arg(&script)
            .arg(matrix)
            .args([
                case.n.to_string(),
                case.rank.to_string(),
                OVERSAMPLES.to_string(),
                iterations.to_string(),
            ])
            .env("OMP_NUM_THREADS", &threads)
            .env("OPENBLAS_NUM_THREADS", &threads)
            .env("MKL_NUM_THREADS", &threads)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("could not run {}: {e}", python.display()))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut reference = Reference {
            child,
            stdin,
            stdout,
        };
        let hello = reference.read()?;
        Ok((reference, hello))
    }

    fn read(&mut self) -> Result<serde_json::Value, String> {
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(0) => Err("the Python process exited".into()),
            Ok(_) => serde_json::from_str(&line).map_err(|e| format!("bad JSON {line:?}: {e}")),
            Err(e) => Err(format!("reading from Python: {e}")),
        }
    }

    fn run(&mut self, threads: usize, seed: u64) -> Result<(Run, serde_json::Value), String> {
        let stdin = self.stdin.as_mut().expect("stdin open until drop");
        writeln!(stdin, "run {threads} {seed} {NORMALIZER}")
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("writing to Python: {e}"))?;
        let reply = self.read()?;
        let seconds = reply["seconds"].as_f64().ok_or("no seconds")?;
        let s = reply["singular_values"]
            .as_array()
            .ok_or("no singular values")?
            .iter()
            .map(|v| v.as_f64().ok_or("not a number"))
            .collect::<Result<Vec<f64>, _>>()?;
        Ok((Run { seconds, s }, reply["blas"].clone()))
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        // Closing stdin is EOF for the script; wait so that no zombie is left behind.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

fn write_matrix(a: &Mat<f64>, path: &Path) {
    let file = std::fs::File::create(path).expect("temp file");
    let mut out = std::io::BufWriter::new(file);
    for j in 0..a.ncols() {
        for i in 0..a.nrows() {
            out.write_all(&a[(i, j)].to_le_bytes()).expect("write");
        }
    }
    out.flush().expect("flush");
}

/// The 1-, 5- and 15-minute load averages, to read the timings against (Linux only).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let case = parse_args();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("{cores} cores; load average before: {}", load_average());

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
    let svd = RandomizedSvd::new(case.rank);
    assert_eq!(svd.oversamples, OVERSAMPLES);
    let width = (case.rank + OVERSAMPLES).min(case.n);
    // scikit-learn's 'auto' normaliser is LU above 2 iterations and none at or below;
    // Silo always normalises with LU (cheap, and safe against overflow).
    let normalisation = if iterations > 2 {
        format!("{} LU", 2 * iterations)
    } else {
        format!(
            "{} LU on Silo's side only (scikit-learn's 'auto' skips them)",
            2 * iterations
        )
    };
    println!(
        "work, both sides: {width} test vectors (rank {} + {OVERSAMPLES}), {iterations} power iterations \
         → {} products of A with a {n}×{width} block, {normalisation} + 1 QR of {n}×{width}, \
         SVD of {width}×{n}; symmetry of A not used",
        case.rank,
        2 * iterations + 2,
        n = case.n,
    );

    let mut reference = match python() {
        None => {
            println!("scikit-learn: skipped (run `bash bench/setup-python.sh` to create ./.venv)");
            None
        }
        Some(python) => {
            let path =
                std::env::temp_dir().join(format!("silo-svd-bench-{}.f64", std::process::id()));
            write_matrix(&a, &path);
            let started = Reference::start(&python, &path, &case, iterations);
            let _ = std::fs::remove_file(&path);
            match started {
                Ok((reference, hello)) => {
                    println!(
                        "scikit-learn {} (numpy {}, scipy {}): randomized_svd(power_iteration_normalizer='{NORMALIZER}', \
                         n_oversamples={OVERSAMPLES}, n_iter={iterations}); silo: RandomizedSvd::new({}) (LU normaliser)",
                        hello["sklearn"].as_str().unwrap_or("?"),
                        hello["numpy"].as_str().unwrap_or("?"),
                        hello["scipy"].as_str().unwrap_or("?"),
                        case.rank,
                    );
                    Some(reference)
                }
                Err(e) => {
                    println!("scikit-learn: failed to start: {e}");
                    None
                }
            }
        }
    };
    println!(
        "{} repetitions per side and thread count, interleaved, seed = repetition on both sides; \
         medians over repetitions; errors are |σ̂_j − σ_j| / σ_j against the exact σ_j",
        case.reps
    );

    let silo_run = |seed: u64| {
        let svd = svd.clone().with_seed(seed);
        let start = Instant::now();
        let out = std::hint::black_box(svd.compute(a.as_ref()).expect("svd"));
        Run {
            seconds: start.elapsed().as_secs_f64(),
            s: out.s,
        }
    };

    let mut rows = Vec::new();
    for &threads in &case.threads {
        faer::set_global_parallelism(if threads <= 1 {
            Par::Seq
        } else {
            Par::rayon(threads)
        });
        let mut silo = Figures::default();
        let mut sklearn = Figures::default();
        let mut blas = serde_json::Value::Null;
        // Warm-up: first-touch page faults, thread pools, faer's cache detection.
        silo_run(u64::MAX);
        if let Some(r) = reference.as_mut()
            && let Err(e) = r.run(threads, 12345)
        {
            println!("scikit-learn: failed: {e}");
            reference = None;
        }
        for rep in 0..case.reps {
            let seed = rep as u64;
            let mut sides: [Option<Run>; 2] = [None, None];
            for turn in 0..2 {
                // Silo first on even repetitions, scikit-learn first on odd ones.
                if (turn + rep) % 2 == 0 {
                    sides[0] = Some(silo_run(seed));
                } else if let Some(r) = reference.as_mut() {
                    match r.run(threads, seed) {
                        Ok((run, b)) => {
                            sides[1] = Some(run);
                            blas = b;
                        }
                        Err(e) => {
                            println!("scikit-learn: failed: {e}");
                            reference = None;
                        }
                    }
                }
            }
            let [ours, theirs] = sides;
            silo.push(ours.as_ref().expect("silo ran"), &exact, case.rank);
            if let Some(theirs) = theirs {
                sklearn.push(&theirs, &exact, case.rank);
            }
        }
        rows.push((threads, silo, sklearn, blas));
    }

    let top = format!("top {}", case.rank);
    let top10 = format!("top {}", case.rank.min(10));
    println!();
    println!(
        "{:>7} | {:>9} {:>10} {:>13} {:>13} | {:>21} | {:>21} | {:>21}",
        "",
        "",
        "",
        "",
        "",
        format!("max rel err, {top}"),
        format!("mean rel err, {top}"),
        format!("max rel err, {top10}")
    );
    println!(
        "{:>7} | {:>9} {:>10} {:>13} {:>13} | {:>10} {:>10} | {:>10} {:>10} | {:>10} {:>10}",
        "threads",
        "silo ms",
        "sklearn ms",
        "silo/sklearn",
        "(per pair)",
        "silo",
        "sklearn",
        "silo",
        "sklearn",
        "silo",
        "sklearn"
    );
    for (threads, silo, sklearn, _) in &rows {
        let ours = median(&silo.seconds) * 1e3;
        let dash = || "-".to_string();
        let (theirs, ratio, paired, e1, e2, e3) = if sklearn.seconds.is_empty() {
            (dash(), dash(), dash(), dash(), dash(), dash())
        } else {
            let theirs = median(&sklearn.seconds) * 1e3;
            let pairs: Vec<f64> = silo
                .seconds
                .iter()
                .zip(&sklearn.seconds)
                .map(|(s, k)| s / k)
                .collect();
            (
                format!("{theirs:.0}"),
                format!("{:.2}x", ours / theirs),
                format!("{:.2}x", median(&pairs)),
                format!("{:.2e}", median(&sklearn.max_err)),
                format!("{:.2e}", median(&sklearn.mean_err)),
                format!("{:.2e}", median(&sklearn.max_err_top10)),
            )
        };
        println!(
            "{threads:>7} | {ours:>9.0} {theirs:>10} {ratio:>13} {paired:>13} | {:>10.2e} {e1:>10} | {:>10.2e} {e2:>10} | {:>10.2e} {e3:>10}",
            median(&silo.max_err),
            median(&silo.mean_err),
            median(&silo.max_err_top10),
        );
    }
    println!();
    println!(
        "silo/sklearn: ratio of the median times, < 1 when Silo is faster; (per pair): median of \
         the ratios within each interleaved pair.\nLoad average after: {}. Spread of the times \
         (min–max ms):",
        load_average()
    );
    for (threads, silo, sklearn, blas) in &rows {
        let range = |v: &[f64]| {
            let min = v.iter().cloned().fold(f64::INFINITY, f64::min) * 1e3;
            let max = v.iter().cloned().fold(0.0, f64::max) * 1e3;
            format!("{min:.0}–{max:.0}")
        };
        let theirs = if sklearn.seconds.is_empty() {
            "-".to_string()
        } else {
            range(&sklearn.seconds)
        };
        println!(
            "  {threads} thread(s): silo {}, sklearn {theirs} (BLAS pools: {blas})",
            range(&silo.seconds)
        );
    }
}

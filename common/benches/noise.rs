//! Noise benchmark: the secure fast samplers (ChaCha20 from the OS, Box–Muller/Laplace with
//! the grid mitigation) on 10 M values, next to OpenDP's exact samplers on 100 k values, all
//! single-threaded, printing values per second.
//!
//! Run: `cargo bench -p silo-common --bench noise`. Flags after `--`: `--n N` (fast-path
//! length, default 10,000,000), `--exact-n M` (OpenDP length, default 100,000), `--reps R`
//! (best of R runs of the fast path, default 3).

use std::time::Instant;

use silo_common::privacy::noise::{
    self, NoiseSource, SecureRng, add_gaussian_f32, add_gaussian_f64, add_laplace_f32,
};

struct Args {
    n: usize,
    exact_n: usize,
    reps: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        n: 10_000_000,
        exact_n: 100_000,
        reps: 3,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--n" => args.n = value.parse().expect("--n N"),
            "--exact-n" => args.exact_n = value.parse().expect("--exact-n M"),
            "--reps" => args.reps = value.parse().expect("--reps R"),
            _ => {
                i += 1; // `--bench` and other harness flags
                continue;
            }
        }
        i += 2;
    }
    args
}

/// Seconds of CPU time this thread has used (Linux `schedstat`), if available: on a shared
/// machine it is steadier than wall time.
fn thread_cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(nanos * 1e-9)
}

/// Best (wall, CPU) seconds over `reps` runs of `f` (each run gets fresh input from
/// `setup`).
fn best_of<T>(
    reps: usize,
    mut setup: impl FnMut() -> T,
    mut f: impl FnMut(&mut T),
) -> (f64, Option<f64>) {
    let mut best_wall = f64::INFINITY;
    let mut best_cpu: Option<f64> = None;
    for _ in 0..reps.max(1) {
        let mut input = setup();
        let cpu_start = thread_cpu_seconds();
        let start = Instant::now();
        f(&mut input);
        best_wall = best_wall.min(start.elapsed().as_secs_f64());
        if let (Some(a), Some(b)) = (cpu_start, thread_cpu_seconds()) {
            best_cpu = Some(best_cpu.map_or(b - a, |c: f64| c.min(b - a)));
        }
        std::hint::black_box(&input);
    }
    (best_wall, best_cpu)
}

fn report(name: &str, n: usize, (wall, cpu): (f64, Option<f64>)) {
    let cpu_text = cpu.map_or_else(|| "n/a".to_string(), |c| format!("{:.1} ms", c * 1e3));
    let seconds = cpu.unwrap_or(wall);
    println!(
        "{name:<44} {n:>10}  {:>9.1} ms {cpu_text:>10}  {:>8.2} M values/s",
        wall * 1e3,
        n as f64 / seconds / 1e6
    );
}

fn main() {
    let args = parse_args();
    let mut rng = SecureRng::from_os().expect("OS entropy");
    println!("silo noise benchmark (single thread, secure ChaCha20 source)");
    println!("throughput is values per CPU-second of this thread (wall time when unavailable)\n");
    println!(
        "{:<44} {:>10}  {:>12} {:>10}  {:>17}",
        "sampler", "values", "wall", "cpu", "throughput"
    );

    let words = args.n;
    let t = best_of(
        args.reps,
        || (),
        |_| {
            let mut acc = 0_u64;
            for _ in 0..words {
                acc ^= rng.next_u64();
            }
            std::hint::black_box(acc);
        },
    );
    report("ChaCha20 raw u64 words (reference)", words, t);

    let t = best_of(
        args.reps,
        || vec![0.5_f32; args.n],
        |v| {
            add_gaussian_f32(&mut rng, v, 1.0).expect("gaussian f32");
        },
    );
    report("fast Gaussian f32 (Box-Muller + grid)", args.n, t);

    let t = best_of(
        args.reps,
        || vec![0.5_f64; args.n],
        |v| {
            add_gaussian_f64(&mut rng, v, 1.0).expect("gaussian f64");
        },
    );
    report("fast Gaussian f64 (Box-Muller + grid)", args.n, t);

    let t = best_of(
        args.reps,
        || vec![0.5_f32; args.n],
        |v| {
            add_laplace_f32(&mut rng, v, 1.0).expect("laplace f32");
        },
    );
    report("fast Laplace f32 (sign x exponential + grid)", args.n, t);

    let t = best_of(
        1,
        || vec![0.5_f64; args.exact_n],
        |v| {
            std::hint::black_box(noise::exact_gaussian(v, 1.0).expect("opendp gaussian"));
        },
    );
    report("OpenDP exact Gaussian f64", args.exact_n, t);

    let t = best_of(
        1,
        || vec![0.5_f64; args.exact_n],
        |v| {
            std::hint::black_box(noise::exact_laplace(v, 1.0).expect("opendp laplace"));
        },
    );
    report("OpenDP exact Laplace f64", args.exact_n, t);

    let t = best_of(
        1,
        || vec![3_i64; args.exact_n],
        |v| {
            std::hint::black_box(noise::discrete_gaussian(v, 10.0).expect("opendp dgauss"));
        },
    );
    report("OpenDP discrete Gaussian i64 (sigma 10)", args.exact_n, t);

    let t = best_of(
        1,
        || vec![3_i64; args.exact_n],
        |v| {
            std::hint::black_box(noise::discrete_laplace(v, 10.0).expect("opendp dlaplace"));
        },
    );
    report("OpenDP discrete Laplace i64 (scale 10)", args.exact_n, t);
}

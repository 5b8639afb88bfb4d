//! Site-side co-occurrence build of `pmi_svd` (DESIGN §4.2): patients per second and peak
//! memory at 100 k and 1 M patients, against the goal "one million patients fit in 2 GiB
//! at a site".
//!
//! What is measured is what a site does for a `pmi_svd` job, in the executor's order
//! (`client/src/executor/pmi_svd.rs`), on OMOP CSV files on disk:
//! 1. **load**: `data::ehr::load` reads the OMOP folder into patient timelines;
//! 2. **round 1**: `cooccur::concept_patients` (bounded concept frequencies) and the
//!    noisy vocabulary release; the vocabulary is then the top K concepts by exact
//!    frequency (the coordinator would rank the noisy sums; the cost is the same);
//! 3. **count**: `vocabulary_index` + `cooccur::count` (30-day windows, at most 1000 pairs
//!    per patient), then the timelines are dropped, as the executor does;
//! 4. **release**: `PmiPlan::release_counts` (Gaussian noise from `SecureRng::from_os` on
//!    K(K−1)/2 cells, ε = 1, δ = 1e-6) and its wire bytes.
//!
//! Each size runs in a fresh child process (this binary re-executed with `--child`), so
//! its peak RSS (`VmHWM` of `/proc/self/status`) is that of one site task alone. The peak
//! of each phase is read too, by resetting the high-water mark between phases
//! (`/proc/self/clear_refs`, Linux ≥ 4.0); a counting allocator gives the heap's own
//! peak next to RSS.
//!
//! Data: synthetic OMOP CSV (`silo_common::synth::ehr`), generated in chunks of 100 k
//! patients (chunk i is synthetic site i: its own case mix and coding habits) appended to
//! one set of files, with row, note and person ids unique across chunks. The default
//! synthetic vocabulary has 294 concepts, so K = 2000 means "all of them";
//! `SILO_BENCH_CLUSTERS=220` builds a 2004-concept vocabulary (9 per cluster + 24) for a
//! full K = 2000 count. `SILO_BENCH_VISITS` sets the mean encounters per patient (default
//! 5, about 33 distinct dated concepts per patient) to test denser records. Generated
//! folders are cached under `<target>/bench-data/` with a marker file, so only the first
//! run pays for generation.
//!
//! Run: `cargo bench -p silo-client --bench cooccurrence`. Environment:
//! `SILO_BENCH_PATIENTS=100000,1000000` (sizes, comma-separated), `SILO_BENCH_CLUSTERS`
//! (default 30), `SILO_BENCH_VISITS` (default 5), `SILO_BENCH_K` (default 2000),
//! `SILO_BENCH_DATA` (data folder). Timings are wall-clock on whatever else the machine is
//! running, so the child also reports its thread's CPU seconds per phase and the parent
//! prints the load average before and after each child. The exit status is non-zero when
//! a run of at most 1 M patients peaks above 2 GiB.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use silo_client::config::{DatasetConfig, DatasetKind};
use silo_client::data::ehr;
use silo_common::ehr::ConceptKey;
use silo_common::ehr::cooccur::{self, CooccurrenceParams};
use silo_common::ehr::plan::PmiPlan;
use silo_common::ehr::vocab::vocabulary_index;
use silo_common::privacy::noise::SecureRng;
use silo_common::spec::JobSpec;
use silo_common::synth::ehr::{EhrConfig, Generator, omop};

/// Patients per generated chunk (one synthetic site each).
const CHUNK: usize = 100_000;
/// Sizes run by default.
const DEFAULT_SIZES: [usize; 2] = [100_000, 1_000_000];
/// The memory goal: one million patients within 2 GiB at a site.
const GOAL_PATIENTS: usize = 1_000_000;
const GOAL_MIB: f64 = 2048.0;
/// Vocabulary size asked for (capped at the concepts the data hold).
const DEFAULT_K: usize = 2000;
const WINDOW_DAYS: u32 = 30;
const MAX_PAIRS_PER_PATIENT: u32 = 1000;
/// The spec's default bound for round 1.
const MAX_CONCEPTS_PER_PATIENT: usize = 100;
/// Bumped when the data layout changes, so stale caches are regenerated.
const DATA_VERSION: u32 = 1;

/// Counts live and peak heap bytes (the child's numbers next to RSS).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the counters are
// only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let (Some(folder), Some(k)) = (args.get(2), args.get(3).and_then(|k| k.parse().ok()))
        else {
            eprintln!("usage: cooccurrence --child <omop folder> <K>");
            return ExitCode::from(2);
        };
        return match child(Path::new(folder), k) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("child: {e}");
                ExitCode::from(1)
            }
        };
    }
    match parent() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cooccurrence bench: {e}");
            ExitCode::from(2)
        }
    }
}

// ---------------------------------------------------------------------------------------
// Parent: data, children, table, verdict.

fn env_usize(name: &str, default: usize) -> Result<usize, String> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .replace('_', "")
            .parse()
            .map_err(|_| format!("{name}={v:?}: expected a whole number")),
        Err(_) => Ok(default),
    }
}

fn sizes() -> Result<Vec<usize>, String> {
    let Ok(list) = std::env::var("SILO_BENCH_PATIENTS") else {
        return Ok(DEFAULT_SIZES.to_vec());
    };
    let sizes: Vec<usize> = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .replace('_', "")
                .parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("SILO_BENCH_PATIENTS: {s:?} is not a positive number"))
        })
        .collect::<Result<_, _>>()?;
    if sizes.is_empty() {
        return Err("SILO_BENCH_PATIENTS is empty; expected e.g. 100000,1000000".into());
    }
    Ok(sizes)
}

/// `<target>/bench-data`: the bench binary lives in `<target>/<profile>/deps/`.
fn data_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("SILO_BENCH_DATA") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().ok();
    let target = exe
        .as_deref()
        .and_then(Path::parent)
        .filter(|deps| deps.file_name().is_some_and(|n| n == "deps"))
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(Path::to_path_buf);
    target
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
        .join("bench-data")
}

/// One child's measurement, as printed in its JSON line.
#[derive(Debug)]
struct Row {
    patients: f64,
    events: f64,
    k: f64,
    load_s: f64,
    round1_s: f64,
    count_s: f64,
    release_s: f64,
    peak_mib: f64,
    json: serde_json::Value,
}

fn parent() -> Result<ExitCode, String> {
    let sizes = sizes()?;
    let clusters = env_usize("SILO_BENCH_CLUSTERS", EhrConfig::default().clusters)?;
    let k = env_usize("SILO_BENCH_K", DEFAULT_K)?;
    if clusters == 0 || k < 2 {
        return Err("SILO_BENCH_CLUSTERS must be ≥ 1 and SILO_BENCH_K ≥ 2".into());
    }
    let visits = match std::env::var("SILO_BENCH_VISITS") {
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 1.0)
            .ok_or_else(|| format!("SILO_BENCH_VISITS={v:?}: expected a number ≥ 1"))?,
        Err(_) => EhrConfig::default().mean_visits,
    };
    let config = EhrConfig {
        clusters,
        mean_visits: visits,
        ..EhrConfig::default()
    };
    let root = data_root();
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "pmi_svd site co-occurrence build: OMOP CSV → timelines → round 1 → counts (K ≤ {k}, \
         {WINDOW_DAYS}-day windows, ≤ {MAX_PAIRS_PER_PATIENT} pairs/patient) → noise (ε 1, δ 1e-6)"
    );
    println!(
        "machine: {threads} core(s) available; the site pipeline is single-threaded; data in {}",
        root.display()
    );

    let mut rows = Vec::new();
    for &n in &sizes {
        let (folder, bytes) = ensure_data(&root, n, &config)?;
        println!(
            "running {n} patients ({:.2} GiB of CSV) in a child process; load average {}",
            bytes as f64 / (1u64 << 30) as f64,
            load_average()
        );
        let output = Command::new(&exe)
            .arg("--child")
            .arg(&folder)
            .arg(k.to_string())
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run the child: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "the child for {n} patients failed ({})",
                output.status
            ));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .ok_or("the child printed no JSON line")?;
        let json: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("child output {line:?}: {e}"))?;
        println!("{line}");
        println!("child done; load average {}", load_average());
        let f = |key: &str| json[key].as_f64().unwrap_or(f64::NAN);
        rows.push(Row {
            patients: f("patients"),
            events: f("events"),
            k: f("k"),
            load_s: f("load_s"),
            round1_s: f("round1_s"),
            count_s: f("count_s"),
            release_s: f("release_s"),
            peak_mib: f("peak_rss_mib"),
            json,
        });
    }

    println!();
    println!(
        "{:>10} {:>12} {:>5} {:>8} {:>9} {:>8} {:>10} {:>12} {:>15} {:>9}",
        "patients",
        "events",
        "K",
        "load s",
        "round1 s",
        "count s",
        "release s",
        "count pat/s",
        "load+count p/s",
        "peak MiB"
    );
    for r in &rows {
        println!(
            "{:>10} {:>12} {:>5} {:>8.2} {:>9.2} {:>8.2} {:>10.3} {:>12.0} {:>15.0} {:>9.0}",
            r.patients,
            r.events,
            r.k,
            r.load_s,
            r.round1_s,
            r.count_s,
            r.release_s,
            r.patients / r.count_s,
            r.patients / (r.load_s + r.count_s),
            r.peak_mib
        );
    }
    println!();
    println!(
        "CPU seconds of the child's thread (wall − CPU ≈ time other processes took the core):"
    );
    for r in &rows {
        let m = |key: &str| r.json[key].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:>10}: load {:.2}, round 1 {:.2}, count {:.2}, release {:.3}; \
             count {:.0} patients per CPU-second",
            r.patients,
            m("load_cpu_s"),
            m("round1_cpu_s"),
            m("count_cpu_s"),
            m("release_cpu_s"),
            r.patients / m("count_cpu_s"),
        );
    }
    println!();
    println!("peak RSS per phase (MiB; heap = the allocator's own peak):");
    for r in &rows {
        let j = &r.json;
        let m = |key: &str| j[key].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:>10}: load {:.0} (heap {:.0}; {:.0} resident after load, timelines {:.0} allocated), \
             round 1 {:.0}, count {:.0}, release {:.0}",
            r.patients,
            m("peak_load_mib"),
            m("heap_peak_load_mib"),
            m("rss_after_load_mib"),
            m("timelines_mib"),
            m("peak_round1_mib"),
            m("peak_count_mib"),
            m("peak_release_mib"),
        );
    }

    let judged: Vec<&Row> = rows
        .iter()
        .filter(|r| r.patients <= GOAL_PATIENTS as f64)
        .collect();
    let over: Vec<&&Row> = judged.iter().filter(|r| r.peak_mib > GOAL_MIB).collect();
    let at_goal = rows.iter().any(|r| r.patients >= GOAL_PATIENTS as f64);
    println!();
    if !over.is_empty() {
        for r in &over {
            println!(
                "FAIL: {} patients peaked at {:.0} MiB, above the {GOAL_MIB:.0} MiB goal",
                r.patients, r.peak_mib
            );
        }
        return Ok(ExitCode::from(1));
    }
    match rows.iter().find(|r| r.patients == GOAL_PATIENTS as f64) {
        Some(r) => println!(
            "PASS: 1,000,000 patients peaked at {:.0} MiB ({:.0}% of the 2 GiB goal)",
            r.peak_mib,
            100.0 * r.peak_mib / GOAL_MIB
        ),
        None if at_goal => println!(
            "goal not checked exactly at 1,000,000 patients (sizes overridden); runs at or \
             below it are within 2 GiB"
        ),
        None => println!(
            "goal not checked: no run reached 1,000,000 patients (SILO_BENCH_PATIENTS); \
             runs measured are within 2 GiB"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------
// Data: chunked synthetic OMOP CSV, cached.

/// The folder for `patients` patients, generated unless a complete one is cached; and its
/// size in bytes.
fn ensure_data(root: &Path, patients: usize, config: &EhrConfig) -> Result<(PathBuf, u64), String> {
    let default = EhrConfig::default();
    let mut name = format!("omop-{patients}");
    if config.clusters != default.clusters {
        name += &format!("-c{}", config.clusters);
    }
    if config.mean_visits != default.mean_visits {
        name += &format!("-v{}", config.mean_visits);
    }
    let folder = root.join(name);
    let marker = folder.join("COMPLETE");
    let stamp = format!(
        "version={DATA_VERSION} patients={patients} chunk={CHUNK} dim={} clusters={} \
         mean_visits={} seed={}\n",
        config.dim, config.clusters, config.mean_visits, config.seed
    );
    if fs::read_to_string(&marker).is_ok_and(|m| m == stamp) {
        let bytes = folder_bytes(&folder)?;
        eprintln!("data: {} (cached)", folder.display());
        return Ok((folder, bytes));
    }
    if folder.exists() {
        fs::remove_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    }
    fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    let start = Instant::now();
    generate(&folder, patients, config.clone())?;
    fs::write(&marker, stamp).map_err(|e| format!("{}: {e}", marker.display()))?;
    let bytes = folder_bytes(&folder)?;
    println!(
        "data: generated {patients} patients ({:.2} GiB of OMOP CSV) in {:.1} s into {}",
        bytes as f64 / (1u64 << 30) as f64,
        start.elapsed().as_secs_f64(),
        folder.display()
    );
    Ok((folder, bytes))
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`), or `?`.
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "?".into(),
        |l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

fn folder_bytes(folder: &Path) -> Result<u64, String> {
    let mut total = 0;
    for entry in fs::read_dir(folder).map_err(|e| format!("{}: {e}", folder.display()))? {
        let entry = entry.map_err(|e| format!("{}: {e}", folder.display()))?;
        total += entry.metadata().map_or(0, |m| m.len());
    }
    Ok(total)
}

/// Generates chunk after chunk on every core and appends them, in chunk order, to one set
/// of CSV files.
fn generate(folder: &Path, patients: usize, config: EhrConfig) -> Result<(), String> {
    let generator = Generator::new(config);
    let chunks = patients.div_ceil(CHUNK);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(chunks);
    let next = AtomicUsize::new(0);
    let mut out = Appender::new(folder);
    std::thread::scope(|scope| -> Result<(), String> {
        // A small bound keeps at most a few chunks' text in memory.
        let (tx, rx) = mpsc::sync_channel::<(usize, Vec<(&'static str, String)>)>(workers);
        for _ in 0..workers {
            let tx = tx.clone();
            let (generator, next) = (&generator, &next);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= chunks {
                        break;
                    }
                    let size = CHUNK.min(patients - i * CHUNK);
                    let site = generator.site(i, size);
                    let tables = omop::tables(generator.vocabulary(), &site);
                    if tx.send((i, tables)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut waiting = BTreeMap::new();
        let mut written = 0;
        for (i, tables) in rx {
            waiting.insert(i, tables);
            while let Some(tables) = waiting.remove(&written) {
                out.append(written, tables)?;
                written += 1;
                eprintln!("data: {} of {chunks} chunk(s) written", written);
            }
        }
        Ok(())
    })?;
    out.finish()
}

/// Appends chunks to the folder's CSV files: the header once, `concept.csv` once, and
/// each chunk's row ids (and `note_nlp`'s `note_id`) shifted past the previous chunks'.
struct Appender {
    folder: PathBuf,
    files: BTreeMap<&'static str, BufWriter<File>>,
    /// Data rows written so far per file.
    rows: BTreeMap<&'static str, u64>,
}

impl Appender {
    fn new(folder: &Path) -> Self {
        Appender {
            folder: folder.to_path_buf(),
            files: BTreeMap::new(),
            rows: BTreeMap::new(),
        }
    }

    fn append(&mut self, chunk: usize, tables: Vec<(&'static str, String)>) -> Result<(), String> {
        let notes_before = self.rows.get("note.csv").copied().unwrap_or(0);
        for (name, text) in tables {
            if name == "concept.csv" && chunk > 0 {
                continue; // the vocabulary is the same in every chunk
            }
            let path = self.folder.join(name);
            let err = |e: std::io::Error| format!("{}: {e}", path.display());
            if !self.files.contains_key(name) {
                let file = File::create(&path).map_err(err)?;
                self.files
                    .insert(name, BufWriter::with_capacity(1 << 20, file));
            }
            let out = self.files.get_mut(name).expect("opened above");
            let (header, body) = text.split_once('\n').unwrap_or((&text, ""));
            if chunk == 0 {
                writeln!(out, "{header}").map_err(err)?;
            }
            let before = self.rows.get(name).copied().unwrap_or(0);
            // Which leading fields are ids numbered from 1 within a chunk.
            let shifts: &[u64] = match name {
                "person.csv" | "concept.csv" => &[],
                "note_nlp.csv" => &[before, notes_before],
                _ => &[before],
            };
            let mut lines = 0u64;
            if shifts.iter().all(|&s| s == 0) {
                out.write_all(body.as_bytes()).map_err(err)?;
                lines = body.lines().count() as u64;
            } else {
                for line in body.lines() {
                    let mut rest = line;
                    for &shift in shifts {
                        let (field, tail) = rest.split_once(',').unwrap_or((rest, ""));
                        let id: u64 = field
                            .parse()
                            .map_err(|_| format!("{name}: id {field:?} is not a number"))?;
                        write!(out, "{},", id + shift).map_err(err)?;
                        rest = tail;
                    }
                    writeln!(out, "{rest}").map_err(err)?;
                    lines += 1;
                }
            }
            *self.rows.entry(name).or_insert(0) += lines;
        }
        Ok(())
    }

    fn finish(self) -> Result<(), String> {
        for (name, out) in self.files {
            let file = out
                .into_inner()
                .map_err(|e| format!("{name}: {}", e.error()))?;
            file.sync_all().map_err(|e| format!("{name}: {e}"))?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Child: one site task, measured.

/// CPU time of this thread so far (`/proc/thread-self/schedstat`, ns on a CPU), NaN
/// without `/proc`. The child does all its work on its main thread, so next to the wall
/// clock this shows how much of a phase other processes took.
fn cpu_seconds() -> f64 {
    fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(f64::NAN, |ns| ns as f64 * 1e-9)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// A `/proc/self/status` field in bytes (`VmHWM`, `VmRSS`).
fn status_bytes(field: &str) -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim_start_matches(':')
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The peak RSS since the last reset, then a reset (so the next phase's peak is its own),
/// and the heap's peak likewise (MiB). RSS is NaN when `/proc` is not there.
struct Phases {
    resets: bool,
}

impl Phases {
    fn end(&mut self) -> (f64, f64) {
        let rss = status_bytes("VmHWM").map_or(f64::NAN, mib);
        let heap = mib(PEAK.swap(LIVE.load(Ordering::Relaxed), Ordering::Relaxed) as u64);
        // Writing 5 resets VmHWM to the current RSS (Linux ≥ 4.0).
        self.resets = self.resets && fs::write("/proc/self/clear_refs", "5").is_ok();
        (rss, heap)
    }
}

fn child(folder: &Path, k: usize) -> Result<String, String> {
    let mut phases = Phases { resets: true };
    let dataset = DatasetConfig {
        name: "bench".into(),
        kind: DatasetKind::Omop,
        path: Some(folder.to_path_buf()),
        privacy_unit: "person_id".into(),
        epsilon_budget: 10.0,
        delta: 1e-6,
        dictionary: None,
        image: None,
        text: None,
        columns: None,
    };
    let baseline = status_bytes("VmRSS").map_or(f64::NAN, mib);
    phases.end();

    // 1. Load.
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let load = ehr::load(&dataset).map_err(|e| format!("load: {e}"))?;
    let load_s = start.elapsed().as_secs_f64();
    let load_cpu = cpu_seconds() - cpu;
    let rows_read: u64 = load.files.iter().map(|f| f.rows).sum();
    let skipped: u64 = load.files.iter().map(|f| f.skipped).sum();
    let timelines = load.timelines;
    let patients = timelines.patients();
    let events = timelines.events.len();
    let timelines_bytes = timelines.events.capacity() * size_of::<silo_common::ehr::TimedConcept>()
        + timelines.offsets.capacity() * size_of::<usize>();
    let rss_after_load = status_bytes("VmRSS").map_or(f64::NAN, mib);
    let (peak_load, heap_peak_load) = phases.end();
    eprintln!(
        "child: loaded {patients} patients, {events} events from {rows_read} rows in {load_s:.2} s"
    );

    // 2. Round 1: bounded concept frequencies and the noisy vocabulary release; then the
    //    vocabulary (top K, exact ranking standing in for the coordinator's noisy one).
    let mut rng = SecureRng::from_os().map_err(|e| e.to_string())?;
    let k = k.min(timelines.concepts.len());
    if k < 2 {
        return Err(format!("the data hold {k} concept(s); need at least 2"));
    }
    let spec = JobSpec::parse_toml(
        &format!(
            "kind = \"pmi_svd\"\nname = \"bench\"\ndataset = \"bench\"\n\
             [privacy]\nepsilon = 1.0\ndelta = 1e-6\n\
             [params]\nvocabulary = \"top:{k}\"\ndim = {}\nwindow_days = {WINDOW_DAYS}\n\
             max_pairs_per_patient = {MAX_PAIRS_PER_PATIENT}\n\
             max_concepts_per_patient = {MAX_CONCEPTS_PER_PATIENT}\n",
            (k - 1).min(100)
        ),
        "bench spec",
    )
    .map_err(|e| e.to_string())?;
    let plan = PmiPlan::new(&spec).map_err(|e| e.to_string())?;
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let frequencies = cooccur::concept_patients(&timelines, MAX_CONCEPTS_PER_PATIENT, 1);
    let vocabulary_release = plan
        .release_vocabulary(&timelines.concepts, &frequencies, &mut rng)
        .map_err(|e| e.to_string())?
        .to_json();
    let round1_s = start.elapsed().as_secs_f64();
    let round1_cpu = cpu_seconds() - cpu;
    let mut ranked: Vec<usize> = (0..timelines.concepts.len()).collect();
    ranked.sort_by(|&a, &b| {
        frequencies[b]
            .cmp(&frequencies[a])
            .then_with(|| timelines.concepts[a].cmp(&timelines.concepts[b]))
    });
    let vocabulary: Vec<ConceptKey> = ranked[..k]
        .iter()
        .map(|&c| timelines.concepts[c].clone())
        .collect();
    let (peak_round1, _) = phases.end();

    // 3. Count (what the counts round times), then drop the timelines as the executor does.
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let map = vocabulary_index(&timelines.concepts, &vocabulary);
    let exact = cooccur::count(
        &timelines,
        &map,
        vocabulary.len(),
        CooccurrenceParams {
            window_days: WINDOW_DAYS,
            max_pairs_per_patient: MAX_PAIRS_PER_PATIENT as usize,
        },
        2,
        &mut |_| {},
    );
    let count_s = start.elapsed().as_secs_f64();
    let count_cpu = cpu_seconds() - cpu;
    drop(timelines);
    let (with_pairs, capped) = (exact.patients_with_pairs, exact.patients_capped);
    let (peak_count, _) = phases.end();

    // 4. Noise and wire bytes.
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let release = plan
        .release_counts(exact, &mut rng)
        .map_err(|e| e.to_string())?;
    let bytes = release.to_bytes();
    let release_s = start.elapsed().as_secs_f64();
    let release_cpu = cpu_seconds() - cpu;
    let (peak_release, _) = phases.end();

    let peak = [peak_load, peak_round1, peak_count, peak_release]
        .into_iter()
        .fold(f64::NAN, f64::max);
    let round = |x: f64| (x * 1000.0).round() / 1000.0;
    let line = serde_json::json!({
        "patients": patients,
        "events": events,
        "rows_read": rows_read,
        "rows_skipped": skipped,
        "concepts": ranked.len(),
        "vocabulary_release_bytes": vocabulary_release.len(),
        "k": vocabulary.len(),
        "load_s": round(load_s),
        "round1_s": round(round1_s),
        "count_s": round(count_s),
        "release_s": round(release_s),
        "load_cpu_s": round(load_cpu),
        "round1_cpu_s": round(round1_cpu),
        "count_cpu_s": round(count_cpu),
        "release_cpu_s": round(release_cpu),
        "count_patients_per_s": (patients as f64 / count_s).round(),
        "load_count_patients_per_s": (patients as f64 / (load_s + count_s)).round(),
        "patients_with_pairs": with_pairs,
        "patients_capped": capped,
        "release_bytes": bytes.len(),
        "rss_baseline_mib": round(baseline),
        "rss_after_load_mib": round(rss_after_load),
        "timelines_mib": round(mib(timelines_bytes as u64)),
        "peak_load_mib": round(peak_load),
        "heap_peak_load_mib": round(heap_peak_load),
        "peak_round1_mib": round(peak_round1),
        "peak_count_mib": round(peak_count),
        "peak_release_mib": round(peak_release),
        "phase_peaks_exact": phases.resets,
        "peak_rss_mib": round(peak),
    });
    Ok(line.to_string())
}

//! `silo demo`: the whole system in one process on synthetic data.
//!
//! The demo is the production path with the people removed: it makes a throwaway project
//! CA and certificates, writes the same config files a deployment uses, starts the
//! coordinator and three site daemons talking real gRPC over 127.0.0.1 with mutual TLS,
//! submits jobs through the admin CLI code, and prints results and the budget audit.
//! Everything stays in `--out` so the user can inspect it and re-run the CLI against it.
//!
//! This module is the only place the coordinator crate touches site code (to run the
//! sites in-process); the coordinator's server never does.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use silo_client::config::SiteConfig;
use silo_client::daemon::{self, DaemonEvent};
use silo_common::synth::visits;
use silo_proto::tls::{Role, TlsFiles};
use tokio::sync::{mpsc, watch};

use crate::ca::{self, Ca};
use crate::cli::admin::AdminOpts;
use crate::cli::job::{self, JobCommand, SubmitArgs};
use crate::cli::sites::{self, AuditArgs, BudgetCommand};
use crate::config::CoordinatorConfig;

/// The demo's sites and their patient counts.
const SITES: [(&str, usize); 3] = [
    ("hospital-a", 2_000),
    ("hospital-b", 3_000),
    ("hospital-c", 4_000),
];
/// Patients per site in the synthetic EHR data, and how each site keeps it.
const EHR_PATIENTS: usize = 10_000;
const EHR_FORMATS: [&str; 3] = ["omop", "fhir", "omop"];
/// Image–text pairs per site.
const PAIRS_PER_SITE: usize = 10_000;

/// Seed of the synthetic data (the noise is never seeded).
const DATA_SEED: u64 = 20_261_127;
/// Marks a folder as the demo's own, so a re-run may replace it.
const MARKER: &str = ".silo-demo";

/// Runs the demo, writing into `out`.
pub async fn run(out_dir: &Path, out: &mut impl Write) -> Result<()> {
    prepare(out_dir)?;
    let out_dir = std::fs::canonicalize(out_dir)?;
    let step = |out: &mut dyn Write, text: &str| writeln!(out, "==> {text}");

    step(
        out,
        &format!(
            "project CA and certificates in {}",
            out_dir.join("certs").display()
        ),
    )?;
    let certs = out_dir.join("certs");
    let authority = Ca::generate()?;
    authority.write(&certs, false)?;
    let issue = |role: Role, name: &str| -> Result<TlsFiles> {
        let pair = authority.issue(role, name, &[], 30)?;
        ca::write_pair(&certs, name, &pair, false)?;
        Ok(ca::tls_files(&certs, &certs, name))
    };
    let coordinator_tls = issue(Role::Coordinator, "coordinator")?;
    issue(Role::Admin, "demo-admin")?;
    issue(Role::Auditor, "demo-auditor")?;

    step(out, "synthetic visit tables for three hospitals")?;
    let mut truth_ages = Vec::new();
    for (i, (site, patients)) in SITES.iter().enumerate() {
        issue(Role::Site, site)?;
        let rows = visits::site_visits(i, *patients, DATA_SEED);
        let dir = out_dir.join("data").join(site);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("visits.csv"), visits::to_csv(&rows))?;
        // One age per patient: the unit-level truth the DP mean estimates (demo only; the
        // demo made the data, a real coordinator never sees it).
        let mut seen = std::collections::HashSet::new();
        truth_ages.extend(
            rows.iter()
                .filter(|r| seen.insert(r.person_id))
                .map(|r| r.age),
        );
        writeln!(
            out,
            "    {site}: {patients} patients, {} visits",
            rows.len()
        )?;
    }

    step(
        out,
        "synthetic EHR for the same hospitals (OMOP CSV, FHIR NDJSON, OMOP CSV)",
    )?;
    let ehr = silo_common::synth::ehr::Generator::new(silo_common::synth::ehr::EhrConfig {
        seed: DATA_SEED,
        ..Default::default()
    });
    std::fs::write(
        out_dir.join("data").join("ehr-pairs.csv"),
        ehr.vocabulary().pairs_csv(),
    )?;
    for (i, ((site, _), format)) in SITES.iter().zip(EHR_FORMATS).enumerate() {
        let data = ehr.site(i, EHR_PATIENTS);
        let dir = out_dir.join("data").join(site).join("ehr");
        std::fs::create_dir_all(&dir)?;
        let files = if format == "omop" {
            silo_common::synth::ehr::omop::tables(ehr.vocabulary(), &data)
        } else {
            std::fs::write(
                out_dir.join("data").join(site).join("dictionary.csv"),
                ehr.vocabulary().dictionary_csv(),
            )?;
            silo_common::synth::ehr::fhir::ndjson(ehr.vocabulary(), &data)
        };
        for (name, text) in files {
            std::fs::write(dir.join(name), text)?;
        }
        writeln!(
            out,
            "    {site}: {EHR_PATIENTS} patients, {} coded and note events ({format})",
            data.events.len()
        )?;
    }

    step(
        out,
        "synthetic image–text features for the same hospitals (safetensors)",
    )?;
    let pairs = silo_common::synth::pairs::Generator::new(silo_common::synth::pairs::PairsConfig {
        seed: DATA_SEED,
        ..Default::default()
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    for (i, (site, _)) in SITES.iter().enumerate() {
        let data = pairs.site(i, PAIRS_PER_SITE, PAIRS_PER_SITE / 2);
        std::fs::write(
            out_dir.join("data").join(site).join("pairs.safetensors"),
            silo_common::synth::pairs::to_safetensors(&data),
        )?;
        writeln!(
            out,
            "    {site}: {} pairs ({} held out), {} + {} unpaired, {}-d image and {}-d text features",
            data.pairs(),
            data.test_pairs(),
            data.image_only_rows(),
            data.text_only_rows(),
            data.d1,
            data.d2
        )?;
    }
    std::fs::write(
        out_dir.join("data").join("pairs-eval.safetensors"),
        silo_common::synth::pairs::to_safetensors(&pairs.site(1000, 2000, 0)),
    )?;
    std::fs::write(
        out_dir.join("data").join("pairs-class-prompts.safetensors"),
        silo_common::synth::pairs::class_prompts_safetensors(&pairs),
    )?;
    std::fs::write(
        out_dir.join("data").join("pairs-truth.safetensors"),
        silo_common::synth::pairs::truth_safetensors(&pairs),
    )?;

    step(out, "coordinator on 127.0.0.1 (mutual TLS)")?;
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
    let config = CoordinatorConfig::new(
        listen,
        out_dir.join("coordinator-data"),
        Some(coordinator_tls),
    );
    let coordinator = crate::server::start(config).await?;
    let addr = coordinator.local_addr();
    let url = format!("https://{addr}");
    write_coordinator_toml(&out_dir, addr)?;
    write_admin_toml(&out_dir, &url, "demo-admin", "silo-admin.toml")?;
    write_admin_toml(&out_dir, &url, "demo-auditor", "silo-auditor.toml")?;
    writeln!(out, "    listening on {url}")?;

    step(out, "three site daemons dial out and register")?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (event_tx, mut event_rx) = mpsc::unbounded_channel();
    let mut daemons = Vec::new();
    for ((site, _), format) in SITES.into_iter().zip(EHR_FORMATS) {
        let path = write_site_toml(&out_dir, site, format, &url)?;
        let config = SiteConfig::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut stop = stop_rx.clone();
        let events = event_tx.clone();
        daemons.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            daemon::run_with_events(config, shutdown, Some(events)).await
        }));
    }
    drop(event_tx);
    let mut registered = 0;
    while registered < SITES.len() {
        match tokio::time::timeout(Duration::from_secs(30), event_rx.recv()).await {
            Ok(Some(DaemonEvent::Registered { .. })) => registered += 1,
            Ok(Some(_)) => {}
            Ok(None) => bail!("a site daemon stopped before registering"),
            Err(_) => bail!(
                "only {registered} of {} sites registered within 30 s",
                SITES.len()
            ),
        }
    }
    writeln!(out, "    {registered} sites registered")?;
    // Keep draining daemon events so their senders never block or fill up.
    let drain = tokio::spawn(async move { while event_rx.recv().await.is_some() {} });

    let admin = AdminOpts {
        admin_config: Some(out_dir.join("silo-admin.toml")),
    };
    let specs = write_specs(&out_dir)?;
    let mut outcome = Ok(());
    for (i, spec) in specs.into_iter().enumerate() {
        let shown = spec
            .strip_prefix(&out_dir)
            .unwrap_or(&spec)
            .display()
            .to_string();
        step(out, &format!("silo job submit {shown} --wait"))?;
        let args = SubmitArgs {
            spec: spec.clone(),
            wait: true,
            json: false,
            admin: admin.clone(),
        };
        if let Err(e) = job::run(JobCommand::Submit(args), out).await {
            outcome = Err(e);
            break;
        }
        if spec.ends_with("linear-encoders.toml") {
            outcome = encoder_angles(&out_dir, &pairs, out).await;
            if outcome.is_err() {
                break;
            }
        }
        if spec.ends_with("ehr-embeddings.toml") {
            outcome = ceiling(&out_dir, &spec, out);
            if outcome.is_err() {
                break;
            }
        }
        if i == 0 {
            let n = truth_ages.len() as f64;
            let mean = truth_ages.iter().sum::<f64>() / n;
            writeln!(
                out,
                "  (demo only: the demo made the data) true mean age of the {n} patients: {mean:.2}"
            )?;
        }
    }
    if outcome.is_ok() {
        step(out, "silo budget audit")?;
        let audit = AuditArgs {
            site: None,
            dataset: None,
            json: false,
            admin: admin.clone(),
        };
        outcome = sites::budget(BudgetCommand::Audit(audit), out).await;
    }

    let _ = stop_tx.send(true);
    for d in daemons {
        match tokio::time::timeout(Duration::from_secs(15), d).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!("site daemon stopped with an error: {e:#}"),
            Ok(Err(e)) => tracing::warn!("site daemon task failed: {e}"),
            Err(_) => tracing::warn!("site daemon did not stop within 15 s"),
        }
    }
    drain.abort();
    coordinator.shutdown().await?;
    outcome?;

    let rel = |p: &str| out_dir.join(p).display().to_string();
    writeln!(out)?;
    writeln!(
        out,
        "Everything is in {}. To look again:",
        out_dir.display()
    )?;
    writeln!(out, "  silo serve --config {} &", rel("coordinator.toml"))?;
    writeln!(
        out,
        "  silo budget audit --admin-config {}",
        rel("silo-auditor.toml")
    )?;
    writeln!(
        out,
        "  silo job list --admin-config {}",
        rel("silo-admin.toml")
    )?;
    writeln!(
        out,
        "  silo-site ledger --config {}",
        rel("site-hospital-a.toml")
    )?;
    Ok(())
}

/// Demo only: the centralised non-private pipeline on the pooled raw data of the three
/// sites (which only a simulation has), printed as the ceiling next to the job's AUC and
/// written to `pmi-ceiling.json`.
fn ceiling(out_dir: &Path, spec_path: &Path, out: &mut impl Write) -> Result<()> {
    let text = std::fs::read_to_string(spec_path)?;
    let spec = silo_common::spec::JobSpec::parse_toml(&text, &spec_path.display().to_string())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut sites = Vec::new();
    for (site, _) in SITES {
        let config = SiteConfig::load(&out_dir.join(format!("site-{site}.toml")))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let dataset = config
            .datasets
            .iter()
            .find(|d| d.name == "ehr")
            .context("the demo site has no ehr dataset")?;
        sites.push(silo_client::data::ehr::load(dataset)?.timelines);
    }
    let pairs_path = out_dir.join("data").join("ehr-pairs.csv");
    let pairs = crate::cli::eval::parse_pairs(&pairs_path, &std::fs::read_to_string(&pairs_path)?)?;
    let report = silo_common::ehr::simulate::central_reference(&spec, &sites, &pairs)?;
    let auc = report.overall.auc.unwrap_or(f64::NAN);
    writeln!(
        out,
        "  (demo only: it needs the pooled raw data) centralized non-private ceiling: AUC {auc:.4}"
    )?;
    std::fs::write(
        out_dir.join("pmi-ceiling.json"),
        serde_json::to_vec_pretty(&report)?,
    )?;
    Ok(())
}

/// Demo only: how far the learned linear encoders are from the generator's true ones
/// (sin θ of the largest principal angle; 0 = the same subspace), from the job's
/// `model.safetensors`.
async fn encoder_angles(
    out_dir: &Path,
    generator: &silo_common::synth::pairs::Generator,
    out: &mut impl Write,
) -> Result<()> {
    use silo_common::synth::pairs::{matrix_from_rows, sin_theta};
    let admin = AdminOpts {
        admin_config: Some(out_dir.join("silo-admin.toml")),
    };
    let mut client = admin.connect().await?;
    let jobs = client
        .list_jobs(silo_proto::ListJobsRequest::default())
        .await?
        .into_inner();
    let id = jobs
        .jobs
        .iter()
        .rev()
        .find(|j| j.kind == "contrastive_svd" && j.state == "succeeded")
        .map(|j| j.id.clone())
        .context("no finished contrastive_svd job")?;
    let dir = out_dir.join("results").join(&id);
    job::run(
        JobCommand::Result(job::ResultArgs {
            id: id.clone(),
            out: dir.clone(),
            admin,
        }),
        &mut std::io::sink(),
    )
    .await?;
    let model =
        silo_common::tensorfile::read_safetensors(&std::fs::read(dir.join("model.safetensors"))?)?;
    let get = |name: &str| -> Result<_> {
        let t = model
            .iter()
            .find(|t| t.name == name)
            .with_context(|| format!("model.safetensors has no {name}"))?;
        Ok(matrix_from_rows(&t.to_f32(), t.shape[0], t.shape[1]))
    };
    let truth = generator.truth();
    let image = sin_theta(truth.u1.as_ref(), get("image_encoder")?.as_ref())?;
    let text = sin_theta(truth.u2.as_ref(), get("text_encoder")?.as_ref())?;
    writeln!(
        out,
        "  (demo only: the demo knows the true encoders) sin θ to the truth: image {image:.3}, text {text:.3}  (results in {})",
        dir.display()
    )?;
    Ok(())
}

/// Creates `out`, replacing a previous demo's folder but never anything else.
fn prepare(out: &Path) -> Result<()> {
    if out.exists() {
        let is_demo = out.join(MARKER).exists();
        let empty = std::fs::read_dir(out)
            .with_context(|| format!("cannot read {}", out.display()))?
            .next()
            .is_none();
        if is_demo {
            std::fs::remove_dir_all(out)
                .with_context(|| format!("cannot clear the previous demo in {}", out.display()))?;
        } else if !empty {
            return Err(crate::cli::usage(format!(
                "{} exists and is not a silo demo folder: choose another --out",
                out.display()
            )));
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    std::fs::write(
        out.join(MARKER),
        "written by `silo demo`; a re-run replaces this folder\n",
    )?;
    Ok(())
}

fn write_coordinator_toml(dir: &Path, addr: SocketAddr) -> Result<()> {
    let text = format!(
        "# Written by `silo demo`. Start it again with: silo serve --config coordinator.toml\n\
         listen = \"{addr}\"\n\
         data_dir = \"coordinator-data\"\n\
         [tls]\n\
         ca = \"certs/ca.pem\"\n\
         cert = \"certs/coordinator.pem\"\n\
         key = \"certs/coordinator.key\"\n"
    );
    std::fs::write(dir.join("coordinator.toml"), text)?;
    Ok(())
}

fn write_admin_toml(dir: &Path, url: &str, name: &str, file: &str) -> Result<()> {
    let text = format!(
        "# Written by `silo demo`: the CLI's connection as {name}.\n\
         coordinator = \"{url}\"\n\
         [tls]\n\
         ca = \"certs/ca.pem\"\n\
         cert = \"certs/{name}.pem\"\n\
         key = \"certs/{name}.key\"\n"
    );
    std::fs::write(dir.join(file), text)?;
    Ok(())
}

fn write_site_toml(dir: &Path, site: &str, format: &str, url: &str) -> Result<PathBuf> {
    let text = format!(
        "# Written by `silo demo`: site daemon config of {site}.\n\
         name = \"{site}\"\n\
         coordinator = \"{url}\"\n\
         data_dir = \"site-data/{site}\"\n\
         [tls]\n\
         ca = \"certs/ca.pem\"\n\
         cert = \"certs/{site}.pem\"\n\
         key = \"certs/{site}.key\"\n\
         [policy]\n\
         allowed_kinds = [\"dp_stats\", \"pmi_svd\", \"contrastive_svd\", \"dp_clip\"]\n\
         max_epsilon_per_job = 2.0\n\
         [[datasets]]\n\
         name = \"visits\"\n\
         kind = \"csv\"\n\
         path = \"data/{site}/visits.csv\"\n\
         privacy_unit = \"person_id\"\n\
         epsilon_budget = 4.0\n\
         delta = 1e-6\n\
         columns = [\"person_id\", \"age\", \"length_of_stay\"]\n\
         [[datasets]]\n\
         name = \"ehr\"\n\
         kind = \"{kind}\"\n\
         path = \"data/{site}/ehr\"\n\
         {dictionary}\
         privacy_unit = \"{unit}\"\n\
         epsilon_budget = 4.0\n\
         delta = 1e-6\n\
         [[datasets]]\n\
         name = \"pairs\"\n\
         kind = \"pairs\"\n\
         path = \"data/{site}/pairs.safetensors\"\n\
         privacy_unit = \"pair\"\n\
         epsilon_budget = 6.0\n\
         delta = 1e-5\n",
        kind = format,
        unit = if format == "omop" {
            "person_id"
        } else {
            "Patient"
        },
        dictionary = if format == "fhir" {
            format!("dictionary = \"data/{site}/dictionary.csv\"\n")
        } else {
            String::new()
        },
    );
    let path = dir.join(format!("site-{site}.toml"));
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The demo's job specs, written where the user can read and resubmit them.
fn write_specs(dir: &Path) -> Result<Vec<PathBuf>> {
    let jobs = dir.join("jobs");
    std::fs::create_dir_all(&jobs)?;
    let mean = "# Mean age per patient, pure DP (Laplace): one row per patient.\n\
        kind = \"dp_stats\"\nname = \"mean-age\"\ndataset = \"visits\"\nsites = \"all\"\nmin_sites = 2\n\
        [privacy]\nepsilon = 0.5\n\
        [params]\nstatistic = \"mean\"\ncolumn = \"age\"\nlower = 0.0\nupper = 110.0\n";
    let histogram = "# Age histogram, (epsilon, delta)-DP (Gaussian), up to 2 visits per patient.\n\
        kind = \"dp_stats\"\nname = \"age-histogram\"\ndataset = \"visits\"\nsites = \"all\"\nmin_sites = 2\n\
        [privacy]\nepsilon = 0.5\ndelta = 1e-6\n\
        [params]\nstatistic = \"histogram\"\ncolumn = \"age\"\nlower = 0.0\nupper = 110.0\n\
        bins = [0.0, 18.0, 40.0, 65.0, 110.0]\nmax_rows_per_unit = 2\n";
    let embeddings = "# Concept embeddings from noisy co-occurrence counts and a PMI SVD.\n\
        # Round 1 selects the 300 most frequent concepts privately; round 2 counts pairs.\n\
        kind = \"pmi_svd\"\nname = \"ehr-embeddings\"\ndataset = \"ehr\"\nsites = \"all\"\nmin_sites = 2\n\
        [privacy]\nepsilon = 1.0\ndelta = 1e-6\n\
        [params]\nwindow_days = 30\ndim = 20\nvocabulary = \"top:300\"\nmax_pairs_per_patient = 100\n\
        max_concepts_per_patient = 30\ncount_threshold = 10\nshift_k = 1.0\npairs = \"../data/ehr-pairs.csv\"\n";
    let linear = "# Linear image and text encoders from one round of noisy contrastive sums.\n\
        kind = \"contrastive_svd\"\nname = \"linear-encoders\"\ndataset = \"pairs\"\nsites = \"all\"\nmin_sites = 2\n\
        [privacy]\nepsilon = 2.0\ndelta = 1e-5\n\
        [params]\nrank = 8\nclip_norm = 1.5\nlambda = 1.0\n\
        eval = \"../data/pairs-eval.safetensors\"\nclass_prompts = \"../data/pairs-class-prompts.safetensors\"\n";
    let mut paths = Vec::new();
    for (name, text) in [
        ("mean-age.toml", mean),
        ("age-histogram.toml", histogram),
        ("ehr-embeddings.toml", embeddings),
        ("linear-encoders.toml", linear),
    ] {
        let p = jobs.join(name);
        std::fs::write(&p, text)?;
        paths.push(p);
    }
    Ok(paths)
}

//! `silo job …`: submit, list, status, watch, cancel and download results.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use silo_common::spec::JobSpec;
use silo_proto::{JobRef, JobStatus, SubmitJobRequest};
use tokio_stream::StreamExt;

use super::admin::{AdminOpts, status_error};
use super::usage;

/// `silo job …` subcommands.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Submit a job spec; prints the job id (or the result with --wait).
    Submit(SubmitArgs),
    /// List jobs.
    List(JsonArgs),
    /// Show a job's state and each site's progress or refusal.
    Status(IdArgs),
    /// Follow a job with a progress bar per site and round until it ends.
    Watch(IdArgs),
    /// Cancel a job.
    Cancel(IdArgs),
    /// Download a job's result files (report, embeddings, model) into a folder.
    Result(ResultArgs),
}

/// Arguments of `silo job submit`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The job spec (TOML).
    pub spec: PathBuf,
    /// Wait for the job to end; exit 0 only if it succeeded.
    #[arg(long)]
    pub wait: bool,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub admin: AdminOpts,
}

/// Only `--json`.
#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub admin: AdminOpts,
}

/// A job id and `--json`.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// The job id.
    pub id: String,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub admin: AdminOpts,
}

/// Arguments of `silo job result`.
#[derive(Debug, Args)]
pub struct ResultArgs {
    /// The job id.
    pub id: String,
    /// Folder to write the result files into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub admin: AdminOpts,
}

/// Runs a `silo job` subcommand.
pub async fn run(cmd: JobCommand, out: &mut impl Write) -> Result<()> {
    match cmd {
        JobCommand::Submit(args) => submit(args, out).await,
        JobCommand::List(args) => list(args, out).await,
        JobCommand::Status(args) => status(args, out).await,
        JobCommand::Watch(args) => {
            let mut client = args.admin.connect().await?;
            let last = watch(&mut client, &args.id, !args.json).await?;
            if args.json {
                writeln!(out, "{}", status_json(&last))?;
            } else {
                print_status(&last, out)?;
            }
            ended_ok(&last)
        }
        JobCommand::Cancel(args) => {
            let mut client = args.admin.connect().await?;
            let st = client
                .cancel_job(JobRef {
                    id: args.id.clone(),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            if args.json {
                writeln!(out, "{}", status_json(&st))?;
            } else {
                writeln!(out, "job {} is {}", st.id, st.state)?;
            }
            Ok(())
        }
        JobCommand::Result(args) => result(args, out).await,
    }
}

async fn submit(args: SubmitArgs, out: &mut impl Write) -> Result<()> {
    let origin = args.spec.display().to_string();
    let text = std::fs::read_to_string(&args.spec)
        .map_err(|e| usage(format!("cannot read job spec {origin}: {e}")))?;
    // Validate locally first: the same parser the coordinator and the sites run.
    let spec = JobSpec::parse_toml(&text, &origin).map_err(|e| usage(e.to_string()))?;
    let text = absolute_paths(&spec, &text, &args.spec)?;
    let mut client = args.admin.connect().await?;
    let st = client
        .submit_job(SubmitJobRequest { spec_toml: text })
        .await
        .map_err(status_error)?
        .into_inner();
    if !args.wait {
        if args.json {
            writeln!(out, "{}", json!({"id": st.id, "state": st.state}))?;
        } else {
            writeln!(out, "{}", st.id)?;
        }
        return Ok(());
    }
    if !args.json {
        eprintln!("submitted job {} ({}, {})", st.id, st.name, st.kind);
    }
    let last = watch(&mut client, &st.id, !args.json).await?;
    if args.json {
        writeln!(out, "{}", status_json(&last))?;
    } else {
        print_status(&last, out)?;
    }
    ended_ok(&last)
}

/// Files a spec names (`pmi_svd`'s `vocabulary` list and `pairs`, the image–text jobs'
/// `eval` and `class_prompts`) are read by the
/// coordinator: relative paths are made absolute against the spec's folder, and must
/// exist. The TOML is re-rendered only when a path changed.
fn absolute_paths(spec: &JobSpec, text: &str, spec_path: &std::path::Path) -> Result<String> {
    let keys: &[&str] = match spec.kind {
        silo_common::spec::JobKind::PmiSvd => &["vocabulary", "pairs"],
        silo_common::spec::JobKind::ContrastiveSvd | silo_common::spec::JobKind::DpClip => {
            &["eval", "class_prompts"]
        }
        _ => return Ok(text.to_string()),
    };
    let mut doc: toml::Table = toml::from_str(text).map_err(|e| usage(e.to_string()))?;
    let base = spec_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut changed = false;
    if let Some(params) = doc.get_mut("params").and_then(toml::Value::as_table_mut) {
        for &key in keys {
            let Some(value) = params.get(key).and_then(toml::Value::as_str) else {
                continue;
            };
            if key == "vocabulary" && value.trim().starts_with("top:") {
                continue;
            }
            let path = base.join(value);
            let absolute = std::fs::canonicalize(&path).map_err(|e| {
                usage(format!(
                    "{}: params.{key}: cannot read {}: {e}",
                    spec_path.display(),
                    path.display()
                ))
            })?;
            let absolute = absolute.display().to_string();
            if absolute != value {
                params.insert(key.to_string(), toml::Value::String(absolute));
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(text.to_string());
    }
    toml::to_string(&doc).map_err(|e| usage(format!("cannot re-render the spec: {e}")))
}

/// Exit status of a job that ended: Ok only for `succeeded`, else the reason.
fn ended_ok(st: &JobStatus) -> Result<()> {
    if st.state == "succeeded" {
        return Ok(());
    }
    let mut reason = if st.reason.is_empty() {
        "no reason given".to_string()
    } else {
        st.reason.clone()
    };
    let refusals: Vec<String> = st
        .sites
        .iter()
        .filter(|s| !s.reason.is_empty())
        .map(|s| format!("{}: {}", s.site, s.reason))
        .collect();
    if !refusals.is_empty() && !reason.contains(&refusals[0]) {
        reason = format!("{reason} ({})", refusals.join("; "));
    }
    Err(anyhow!("job {} {}: {reason}", st.id, st.state))
}

fn terminal(state: &str) -> bool {
    matches!(state, "succeeded" | "failed" | "cancelled")
}

/// Follows a job until it ends; draws a progress bar per site and round when `bars`.
async fn watch(
    client: &mut silo_proto::admin_api_client::AdminApiClient<tonic::transport::Channel>,
    id: &str,
    bars: bool,
) -> Result<JobStatus> {
    let mut stream = client
        .watch_job(JobRef { id: id.to_string() })
        .await
        .map_err(status_error)?
        .into_inner();
    let multi = MultiProgress::new();
    if !bars {
        multi.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let style = ProgressStyle::with_template("{prefix:<28} [{bar:30}] {percent:>3}% {msg}")
        .expect("valid template")
        .progress_chars("=> ");
    let mut rows: BTreeMap<(String, u32), ProgressBar> = BTreeMap::new();
    let mut last: Option<JobStatus> = None;
    while let Some(event) = stream.next().await {
        let event = event.map_err(status_error)?;
        let Some(st) = event.status else { continue };
        for site in &st.sites {
            let bar = rows
                .entry((site.site.clone(), site.round))
                .or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(1000));
                    bar.set_style(style.clone());
                    bar.set_prefix(format!("{} round {}", site.site, site.round));
                    bar
                });
            bar.set_position((site.progress.clamp(0.0, 1.0) * 1000.0) as u64);
            let msg = if site.reason.is_empty() {
                site.state.clone()
            } else {
                format!("{}: {}", site.state, site.reason)
            };
            bar.set_message(msg);
            if matches!(
                site.state.as_str(),
                "done" | "refused" | "failed" | "excluded"
            ) && !bar.is_finished()
            {
                if site.state == "done" {
                    bar.set_position(1000);
                }
                bar.abandon();
            }
        }
        let ended = terminal(&st.state);
        last = Some(st);
        if ended {
            break;
        }
    }
    for bar in rows.values() {
        if !bar.is_finished() {
            bar.abandon();
        }
    }
    match last {
        Some(st) if terminal(&st.state) => Ok(st),
        // The stream ended before the job did (coordinator restarting): ask once more.
        _ => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let st = client
                .get_job(JobRef { id: id.to_string() })
                .await
                .map_err(status_error)?
                .into_inner();
            if terminal(&st.state) {
                Ok(st)
            } else {
                Err(anyhow!(
                    "lost the watch on job {id} while it was {}; run `silo job watch {id}` again",
                    st.state
                ))
            }
        }
    }
}

async fn list(args: JsonArgs, out: &mut impl Write) -> Result<()> {
    let mut client = args.admin.connect().await?;
    let jobs = client
        .list_jobs(silo_proto::ListJobsRequest {})
        .await
        .map_err(status_error)?
        .into_inner()
        .jobs;
    if args.json {
        writeln!(
            out,
            "{}",
            Value::Array(jobs.iter().map(status_json).collect())
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<38} {:<16} {:<22} {:<10} created",
        "id", "kind", "name", "state"
    )?;
    for j in &jobs {
        writeln!(
            out,
            "{:<38} {:<16} {:<22} {:<10} {}",
            j.id, j.kind, j.name, j.state, j.created_at
        )?;
    }
    Ok(())
}

async fn status(args: IdArgs, out: &mut impl Write) -> Result<()> {
    let mut client = args.admin.connect().await?;
    let st = client
        .get_job(JobRef { id: args.id })
        .await
        .map_err(status_error)?
        .into_inner();
    if args.json {
        writeln!(out, "{}", status_json(&st))?;
    } else {
        print_status(&st, out)?;
    }
    Ok(())
}

async fn result(args: ResultArgs, out: &mut impl Write) -> Result<()> {
    let mut client = args.admin.connect().await?;
    let mut stream = client
        .get_result(JobRef {
            id: args.id.clone(),
        })
        .await
        .map_err(status_error)?
        .into_inner();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    // Each file is written to a temporary name and renamed when its last chunk arrives, so
    // an interrupted download never leaves a truncated file under the real name.
    let mut open: Option<(String, std::fs::File, PathBuf)> = None;
    let mut written = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(status_error)?;
        let name = sanitize(&chunk.name)?;
        if open.as_ref().is_none_or(|(n, _, _)| *n != name) {
            let tmp = args.out.join(format!(".{name}.part"));
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("cannot write {}", tmp.display()))?;
            open = Some((name.clone(), file, tmp));
        }
        let (_, file, tmp) = open.as_mut().expect("opened above");
        file.write_all(&chunk.data)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        if chunk.last {
            let (name, file, tmp) = open.take().expect("opened above");
            file.sync_all()?;
            let dest = args.out.join(&name);
            std::fs::rename(&tmp, &dest)?;
            written.push(dest);
        }
    }
    if let Some((_, _, tmp)) = open {
        let _ = std::fs::remove_file(tmp);
        return Err(anyhow!(
            "the result download of job {} ended mid-file",
            args.id
        ));
    }
    if written.is_empty() {
        return Err(anyhow!("job {} has no result files", args.id));
    }
    for path in written {
        writeln!(out, "{}", path.display())?;
    }
    Ok(())
}

/// Result file names come from the coordinator: refuse anything that could escape `--out`.
fn sanitize(name: &str) -> Result<String> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(name.to_string())
    } else {
        Err(anyhow!(
            "refusing result file name {name:?} from the coordinator"
        ))
    }
}

/// The JSON form of a job status (`id`, `state`, per-site reasons, result summary).
pub fn status_json(st: &JobStatus) -> Value {
    let summary: Value = if st.summary_json.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&st.summary_json).unwrap_or(Value::String(st.summary_json.clone()))
    };
    json!({
        "id": st.id,
        "name": st.name,
        "kind": st.kind,
        "state": st.state,
        "reason": if st.reason.is_empty() { Value::Null } else { Value::String(st.reason.clone()) },
        "round": st.round,
        "rounds": st.rounds,
        "submitted_by": st.submitted_by,
        "created_at": st.created_at,
        "updated_at": st.updated_at,
        "sites": st.sites.iter().map(|s| json!({
            "site": s.site,
            "round": s.round,
            "task_id": s.task_id,
            "state": s.state,
            "reason": if s.reason.is_empty() { Value::Null } else { Value::String(s.reason.clone()) },
            "progress": s.progress,
        })).collect::<Vec<_>>(),
        "summary": summary,
    })
}

fn print_status(st: &JobStatus, out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "job {}  {} ({})  {}",
        st.id, st.name, st.kind, st.state
    )?;
    if !st.reason.is_empty() {
        writeln!(out, "  reason: {}", st.reason)?;
    }
    if st.rounds > 0 {
        writeln!(out, "  round {}/{}", st.round, st.rounds)?;
    }
    for s in &st.sites {
        let reason = if s.reason.is_empty() {
            String::new()
        } else {
            format!("  {}", s.reason)
        };
        writeln!(
            out,
            "  {:<20} round {:<3} {:<9}{}",
            s.site, s.round, s.state, reason
        )?;
    }
    if !st.summary_json.is_empty() {
        let summary: Value = serde_json::from_str(&st.summary_json)
            .unwrap_or(Value::String(st.summary_json.clone()));
        if summary["kind"] == "dp_stats" && summary["pooled"].is_object() {
            print_dp_stats(&summary, out)?;
        } else if summary["kind"] == "pmi_svd" {
            print_pmi_svd(&summary, out)?;
        } else if summary["kind"] == "contrastive_svd" {
            print_contrastive_svd(&summary, out)?;
        } else {
            let pretty = serde_json::to_string_pretty(&summary)?.replace('\n', "\n  ");
            writeln!(out, "  result: {pretty}")?;
        }
    }
    Ok(())
}

/// A `pmi_svd` summary: the embedding's size and, with a pairs file, its AUC next to the
/// best single site's.
fn print_pmi_svd(summary: &Value, out: &mut impl Write) -> Result<()> {
    let sites = summary["sites"].as_array().map_or(0, Vec::len);
    writeln!(
        out,
        "  {} concepts embedded in {} dimensions from {sites} site(s) (embeddings.csv, embeddings.npy)",
        summary["vocabulary_size"], summary["dim"]
    )?;
    if let Some(auc) = summary["auc"].as_f64() {
        write!(out, "  AUC on the related pairs: {auc:.4}")?;
        let best = &summary["best_single_site"];
        if let (Some(site), Some(a)) = (best["site"].as_str(), best["auc"].as_f64()) {
            write!(out, "  (best single site: {site} {a:.4})")?;
        }
        writeln!(out)?;
    }
    print_epsilon_spent(summary, out)?;
    Ok(())
}

/// The `epsilon_spent` line of a summary (per site, composed over the job).
fn print_epsilon_spent(summary: &Value, out: &mut impl Write) -> Result<()> {
    if let Some(spent) = summary["epsilon_spent"].as_object() {
        let parts: Vec<String> = spent
            .iter()
            .map(|(site, e)| format!("{site} {:.4}", e.as_f64().unwrap_or(f64::NAN)))
            .collect();
        writeln!(out, "  epsilon spent: {}", parts.join(", "))?;
    }
    Ok(())
}

/// A `contrastive_svd` summary: the encoders' shapes and the leading singular values.
fn print_contrastive_svd(summary: &Value, out: &mut impl Write) -> Result<()> {
    let sites = summary["sites"].as_array().map_or(0, Vec::len);
    writeln!(
        out,
        "  image encoder {}×{r}, text encoder {}×{r} from {sites} site(s) (model.safetensors)",
        summary["image_dim"],
        summary["text_dim"],
        r = summary["rank"]
    )?;
    if let Some(values) = summary["singular_values"].as_array() {
        let shown: Vec<String> = values
            .iter()
            .filter_map(Value::as_f64)
            .map(|v| format!("{v:.3}"))
            .collect();
        writeln!(out, "  singular values: {}", shown.join(", "))?;
    }
    let eval = &summary["evaluation"]["image_to_text"];
    if let (Some(r1), Some(r5), Some(r10)) = (
        eval["recall_at_1"].as_f64(),
        eval["recall_at_5"].as_f64(),
        eval["recall_at_10"].as_f64(),
    ) {
        write!(
            out,
            "  image → text on {} public pairs: recall@1 {r1:.3}, @5 {r5:.3}, @10 {r10:.3}",
            eval["pairs"]
        )?;
        if let Some(acc) = eval["zero_shot_accuracy"].as_f64() {
            write!(out, "; zero-shot accuracy {acc:.3}")?;
        }
        writeln!(out)?;
    }
    print_epsilon_spent(summary, out)?;
    Ok(())
}

/// A `dp_stats` summary as a small table: pooled estimates with their noise std.
fn print_dp_stats(summary: &Value, out: &mut impl Write) -> Result<()> {
    let pooled = &summary["pooled"];
    let sites = pooled["sites"].as_u64().unwrap_or(0);
    writeln!(out, "  pooled over {sites} site(s), estimate ± noise std:")?;
    let fmt = |v: &Value| -> Option<String> {
        Some(format!(
            "{:.2} ± {:.2}",
            v["value"].as_f64()?,
            v["noise_std"].as_f64()?
        ))
    };
    for key in ["mean", "sum", "count"] {
        if let Some(text) = fmt(&pooled[key]) {
            writeln!(out, "    {key:<10} {text}")?;
        }
    }
    if let (Some(bins), Some(counts)) = (pooled["bins"].as_array(), pooled["histogram"].as_array())
    {
        for (i, count) in counts.iter().enumerate() {
            let lo = bins.get(i).and_then(Value::as_f64).unwrap_or(f64::NAN);
            let hi = bins.get(i + 1).and_then(Value::as_f64).unwrap_or(f64::NAN);
            let bracket = if i + 2 == bins.len() { "]" } else { ")" };
            let label = format!("[{lo}, {hi}{bracket}");
            writeln!(out, "    {label:<14} {}", fmt(count).unwrap_or_default())?;
        }
    }
    print_epsilon_spent(summary, out)?;
    Ok(())
}

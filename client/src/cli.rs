//! The `silo-site` command line (DESIGN section 7):
//!
//! ```text
//! silo-site serve --config site.toml
//! silo-site check --config site.toml [--json]
//! silo-site ledger --config site.toml [--dataset D] [--json]
//! silo-site ledger verify --config site.toml [--json]
//! ```
//!
//! Exit codes: 0 success; 1 `ledger verify` found a broken chain; 2 bad input (config,
//! data) or any other error, printed as one `error:` line per problem on stderr.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};
use serde::Serialize;

use crate::check;
use crate::config::SiteConfig;
use crate::ledger::{Ledger, LedgerEntry, SPEND_ACCOUNTANTS, composed_epsilon};

/// The default config file.
pub const DEFAULT_CONFIG: &str = "site.toml";

/// `silo-site`: the Silo site daemon and its local tools.
#[derive(Debug, Parser)]
#[command(
    name = "silo-site",
    version,
    about = "Silo site daemon: serves DP tasks next to the data and keeps the privacy ledger"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: dial the coordinator and serve tasks until SIGINT/SIGTERM.
    Serve {
        /// The site config.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Validate the config, data and ledger, and print what would be registered. Sends
    /// nothing.
    Check {
        /// The site config.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// One JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Show the privacy ledger: every charge, and each dataset's cap, spend and remainder.
    Ledger(LedgerArgs),
}

/// `silo-site ledger`.
#[derive(Debug, Args)]
pub struct LedgerArgs {
    /// `verify`: recompute the hash chain.
    #[command(subcommand)]
    pub action: Option<LedgerAction>,
    /// The site config.
    #[arg(long, global = true, default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Only this dataset's charges.
    #[arg(long)]
    pub dataset: Option<String>,
    /// One JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `silo-site ledger <action>`.
#[derive(Debug, Subcommand)]
pub enum LedgerAction {
    /// Recompute the hash chain; exit 0 when it holds, 1 naming the first bad entry.
    Verify,
}

/// Runs a parsed command; returns the process exit code. Errors are bad input (exit 2).
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Serve { config } => {
            let config = SiteConfig::load(&config)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(crate::daemon::run(config, shutdown_signal()))?;
            Ok(0)
        }
        Command::Check { config, json } => {
            let config = SiteConfig::load(&config)?;
            let report = check::check(&config);
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.to_text());
            }
            if report.ok() {
                Ok(0)
            } else {
                for e in &report.errors {
                    eprintln!("error: {e}");
                }
                Ok(2)
            }
        }
        Command::Ledger(args) => {
            let config = SiteConfig::load(&args.config)?;
            match args.action {
                Some(LedgerAction::Verify) => verify(&config, args.json),
                None => show(&config, args.dataset.as_deref(), args.json),
            }
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received, stopping"),
        _ = term => tracing::info!("SIGTERM received, stopping"),
    }
}

/// Opens the ledger if it exists (read-only commands create nothing).
fn open_existing(path: &Path) -> anyhow::Result<Option<Ledger>> {
    if path.exists() {
        Ok(Some(Ledger::open(path)?))
    } else {
        Ok(None)
    }
}

fn verify(config: &SiteConfig, json: bool) -> anyhow::Result<u8> {
    let path = config.ledger_path();
    let report = match open_existing(&path)? {
        Some(l) => l.verify()?,
        None => crate::ledger::VerifyReport {
            entries: 0,
            head: None,
            first_bad: None,
        },
    };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "ledger": path,
                "ok": report.ok(),
                "entries": report.entries,
                "head": report.head,
                "first_bad": report.first_bad,
            })
        );
    }
    match &report.first_bad {
        None => {
            if !json {
                println!(
                    "ledger ok: {} entries, head {} ({})",
                    report.entries,
                    report.head.as_deref().unwrap_or("-"),
                    path.display()
                );
            }
            Ok(0)
        }
        Some(bad) => {
            eprintln!(
                "error: ledger {} is broken at entry {}: {}",
                path.display(),
                bad.seq,
                bad.reason
            );
            Ok(1)
        }
    }
}

/// One dataset's budget line.
#[derive(Debug, Serialize)]
struct BudgetLine {
    dataset: String,
    epsilon_budget: Option<f64>,
    delta: f64,
    epsilon_spent: f64,
    epsilon_remaining: Option<f64>,
    charges: usize,
    in_config: bool,
}

fn show(config: &SiteConfig, dataset: Option<&str>, json: bool) -> anyhow::Result<u8> {
    let path = config.ledger_path();
    let ledger = open_existing(&path)?;
    let entries: Vec<LedgerEntry> = match &ledger {
        Some(l) => l.entries(dataset)?,
        None => Vec::new(),
    };
    // Every dataset in the config, plus any the ledger knows that the config dropped.
    let mut names: Vec<String> = config.datasets.iter().map(|d| d.name.clone()).collect();
    if let Some(l) = &ledger {
        for e in l.entries(None)? {
            if !names.contains(&e.dataset) {
                names.push(e.dataset);
            }
        }
    }
    if let Some(d) = dataset {
        if !names.iter().any(|n| n == d) {
            anyhow::bail!(
                "{}: no dataset {d:?} in the config or the ledger",
                config.path.display()
            );
        }
        names.retain(|n| n == d);
    }
    let mut lines = Vec::new();
    for name in names {
        let cfg = config.dataset(&name);
        let history: Vec<&LedgerEntry> = entries.iter().filter(|e| e.dataset == name).collect();
        let mut events = Vec::new();
        for e in &history {
            events.extend(e.compositions()?);
        }
        // A dataset no longer in the config is reported at the δ of its last charge.
        let delta = cfg
            .map(|c| c.delta)
            .or_else(|| history.last().map(|e| e.delta))
            .unwrap_or(1e-6);
        let spent = composed_epsilon(&events, delta, &SPEND_ACCOUNTANTS)?;
        lines.push(BudgetLine {
            dataset: name.clone(),
            epsilon_budget: cfg.map(|c| c.epsilon_budget),
            delta,
            epsilon_spent: spent,
            epsilon_remaining: cfg.map(|c| (c.epsilon_budget - spent).max(0.0)),
            charges: history.len(),
            in_config: cfg.is_some(),
        });
    }
    if json {
        let by_dataset: BTreeMap<&str, &BudgetLine> =
            lines.iter().map(|l| (l.dataset.as_str(), l)).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "site": config.name,
                "ledger": path,
                "entries": entries,
                "datasets": lines,
                "by_dataset": by_dataset,
            }))?
        );
        return Ok(0);
    }
    print!("{}", ledger_text(config, &path, &entries, &lines));
    Ok(0)
}

fn ledger_text(
    config: &SiteConfig,
    path: &Path,
    entries: &[LedgerEntry],
    lines: &[BudgetLine],
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "privacy ledger of site {} ({})",
        config.name,
        path.display()
    );
    let _ = writeln!(s);
    if entries.is_empty() {
        let _ = writeln!(s, "no charges");
    } else {
        let _ = writeln!(
            s,
            "{:>5}  {:<20}  {:<14}  {:<20}  {:<20}  {:<18}  {:>9}  {:>9}",
            "seq", "recorded at", "dataset", "job", "task", "mechanism", "epsilon", "spent"
        );
        for e in entries {
            let _ = writeln!(
                s,
                "{:>5}  {:<20}  {:<14}  {:<20}  {:<20}  {:<18}  {:>9.4}  {:>9.4}",
                e.seq,
                e.recorded_at.chars().take(20).collect::<String>(),
                e.dataset,
                clip(&e.job_id, 20),
                clip(&e.task_id, 20),
                e.mechanism,
                e.epsilon,
                e.epsilon_spent
            );
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "{:<14}  {:>9}  {:>8}  {:>9}  {:>9}  {:>7}",
        "dataset", "cap", "delta", "spent", "remaining", "charges"
    );
    for l in lines {
        let cap = l
            .epsilon_budget
            .map(|c| format!("{c:.4}"))
            .unwrap_or_else(|| "-".into());
        let rem = l
            .epsilon_remaining
            .map(|c| format!("{c:.4}"))
            .unwrap_or_else(|| "-".into());
        let note = if l.in_config {
            ""
        } else {
            "  (not in the config)"
        };
        let _ = writeln!(
            s,
            "{:<14}  {:>9}  {:>8.0e}  {:>9.4}  {:>9}  {:>7}{note}",
            l.dataset, cap, l.delta, l.epsilon_spent, rem, l.charges
        );
    }
    s
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    } else {
        s.to_string()
    }
}

//! `silo sites` and `silo budget audit`: what is connected and what each site has spent.

use std::io::Write;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use silo_proto::{BudgetAuditRequest, ListSitesRequest};

use super::admin::{AdminOpts, status_error};

/// Arguments of `silo sites`.
#[derive(Debug, Args)]
pub struct SitesArgs {
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub admin: AdminOpts,
}

/// `silo budget …` subcommands.
#[derive(Debug, Subcommand)]
pub enum BudgetCommand {
    /// Per site and dataset: budget cap, spent, remaining, and the jobs that spent it.
    Audit(AuditArgs),
}

/// Arguments of `silo budget audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only this site.
    #[arg(long)]
    pub site: Option<String>,
    /// Only this dataset.
    #[arg(long)]
    pub dataset: Option<String>,
    /// Print one JSON document.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub admin: AdminOpts,
}

/// Runs `silo sites`.
pub async fn sites(args: SitesArgs, out: &mut impl Write) -> Result<()> {
    let mut client = args.admin.connect().await?;
    let sites = client
        .list_sites(ListSitesRequest {})
        .await
        .map_err(status_error)?
        .into_inner()
        .sites;
    if args.json {
        let doc: Vec<Value> = sites
            .iter()
            .map(|s| {
                json!({
                    "name": s.name,
                    "connected": s.connected,
                    "last_seen": s.last_seen,
                    "ledger_head": s.ledger_head,
                    "audit_head": s.audit_head,
                    "ledger_consistent": s.ledger_consistent,
                    "datasets": s.datasets.iter().map(|d| json!({
                        "name": d.name, "kind": d.kind, "privacy_unit": d.privacy_unit,
                        "epsilon_budget": d.epsilon_budget, "delta": d.delta, "epsilon_spent": d.epsilon_spent,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        writeln!(out, "{}", Value::Array(doc))?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<20} {:<10} {:<26} datasets",
        "site", "status", "last seen"
    )?;
    for s in &sites {
        let status = if s.connected { "connected" } else { "offline" };
        let datasets: Vec<String> = s
            .datasets
            .iter()
            .map(|d| format!("{} ({})", d.name, d.kind))
            .collect();
        writeln!(
            out,
            "{:<20} {:<10} {:<26} {}",
            s.name,
            status,
            s.last_seen,
            datasets.join(", ")
        )?;
        if !s.ledger_consistent {
            writeln!(
                out,
                "  WARNING: the site's ledger head disagrees with the coordinator's audit copy"
            )?;
        }
    }
    Ok(())
}

/// Runs `silo budget audit`.
pub async fn budget(cmd: BudgetCommand, out: &mut impl Write) -> Result<()> {
    let BudgetCommand::Audit(args) = cmd;
    let mut client = args.admin.connect().await?;
    let request = BudgetAuditRequest {
        site: args.site.clone().unwrap_or_default(),
        dataset: args.dataset.clone().unwrap_or_default(),
    };
    let rows = client
        .budget_audit(request)
        .await
        .map_err(status_error)?
        .into_inner()
        .rows;
    if args.json {
        let doc: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "site": r.site, "dataset": r.dataset, "epsilon_budget": r.epsilon_budget,
                    "delta": r.delta, "epsilon_spent": r.epsilon_spent,
                    "epsilon_remaining": r.epsilon_remaining, "jobs": r.jobs, "charges": r.charges,
                    "ledger_consistent": r.ledger_consistent,
                })
            })
            .collect();
        writeln!(out, "{}", json!({ "rows": doc }))?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<18} {:<14} {:>8} {:>8} {:>8} {:>10} {:>8}  jobs",
        "site", "dataset", "cap", "spent", "left", "delta", "charges"
    )?;
    for r in &rows {
        writeln!(
            out,
            "{:<18} {:<14} {:>8.4} {:>8.4} {:>8.4} {:>10.0e} {:>8}  {}",
            r.site,
            r.dataset,
            r.epsilon_budget,
            r.epsilon_spent,
            r.epsilon_remaining,
            r.delta,
            r.charges,
            r.jobs.join(", ")
        )?;
        if !r.ledger_consistent {
            writeln!(
                out,
                "  WARNING: {}'s ledger head disagrees with the coordinator's audit copy",
                r.site
            )?;
        }
    }
    if rows.is_empty() {
        writeln!(out, "(no sites or datasets match)")?;
    }
    Ok(())
}

//! Command-line front end of `silo`: argument types and dispatch.
//!
//! The binary (`src/bin/silo.rs`) only parses arguments and maps errors to exit codes;
//! every command lives here so tests can call it directly.

pub mod admin;
pub mod ca;
pub mod demo;
pub mod eval;
pub mod job;
pub mod privacy;
pub mod serve;
pub mod sites;
pub mod synth;

use clap::{Parser, Subcommand};

/// Silo: privacy-preserving federated embeddings and models.
#[derive(Debug, Parser)]
#[command(name = "silo", version, about, propagate_version = true)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands of `silo`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Offline privacy planner: epsilon of a mechanism, or the noise for a target.
    #[command(subcommand)]
    Privacy(privacy::PrivacyCommand),
    /// Project certificate authority: init, issue.
    #[command(subcommand)]
    Ca(ca::CaCommand),
    /// Run the coordinator daemon until SIGINT/SIGTERM.
    Serve(serve::ServeArgs),
    /// Federated jobs: submit, list, status, watch, cancel, result.
    #[command(subcommand)]
    Job(job::JobCommand),
    /// Sites known to the coordinator, connected or not.
    Sites(sites::SitesArgs),
    /// Privacy budgets per site and dataset.
    #[command(subcommand)]
    Budget(sites::BudgetCommand),
    /// Seeded synthetic site data.
    #[command(subcommand)]
    Synth(synth::SynthCommand),
    /// Offline evaluation: score concept embeddings against known related pairs.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Coordinator and three sites in one process on synthetic data (real mTLS gRPC).
    Demo(demo::DemoArgs),
}

/// An error caused by the user's input (arguments, files): the binary exits with code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Shorthand: an `anyhow` error that the binary reports with exit code 2.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// Exit code for an error: 2 for bad input (arguments, parameters, files), 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    let bad_input = err
        .chain()
        .any(|cause| cause.is::<UsageError>() || cause.is::<silo_common::privacy::PrivacyError>());
    if bad_input { 2 } else { 1 }
}

/// Runs an async command on a fresh multi-threaded runtime (commands that talk gRPC or
/// serve). Synchronous commands (planner, CA) never start a runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the tokio runtime starts")
        .block_on(future)
}

/// Runs one parsed command, writing its output to stdout.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        Command::Privacy(cmd) => privacy::run(cmd, &mut out),
        Command::Ca(cmd) => ca::run(cmd, &mut out),
        Command::Serve(args) => serve::run(args),
        Command::Job(cmd) => block_on(job::run(cmd, &mut out)),
        Command::Sites(args) => block_on(sites::sites(args, &mut out)),
        Command::Budget(cmd) => block_on(sites::budget(cmd, &mut out)),
        Command::Synth(cmd) => synth::run(cmd, &mut out),
        Command::Eval(cmd) => eval::run(cmd, &mut out),
        Command::Demo(args) => demo::run(args, &mut out),
    }
}

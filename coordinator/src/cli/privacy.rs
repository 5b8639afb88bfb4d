//! `silo privacy epsilon|sigma`: the offline privacy planner.
//!
//! Nothing here talks to a coordinator: it runs the same accountants the sites use, so a
//! researcher can size a job's noise before submitting it and a privacy officer can check a
//! figure by hand.

use std::io::Write;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use silo_common::privacy::{AccountantKind, Composition, PrivacyEvent, calibrate};

use super::usage;

/// `silo privacy …` subcommands.
#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Epsilon at a given delta for a mechanism and its repetitions.
    Epsilon(EpsilonArgs),
    /// Smallest Gaussian noise multiplier meeting a target (epsilon, delta).
    Sigma(SigmaArgs),
}

/// Mechanisms the planner knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mechanism {
    /// Gaussian mechanism, noise multiplier = noise std / L2 sensitivity.
    Gaussian,
    /// Poisson-subsampled Gaussian (one DP-SGD step).
    SubsampledGaussian,
    /// Laplace mechanism, scale relative to the L1 sensitivity.
    Laplace,
}

/// Which accountant composes the releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AccountantArg {
    /// Rényi DP (Opacus's orders, improved conversion).
    Rdp,
    /// Privacy loss distributions (tighter).
    Pld,
}

impl From<AccountantArg> for AccountantKind {
    fn from(a: AccountantArg) -> Self {
        match a {
            AccountantArg::Rdp => AccountantKind::Rdp,
            AccountantArg::Pld => AccountantKind::Pld,
        }
    }
}

/// Arguments of `silo privacy epsilon`.
#[derive(Debug, Args)]
pub struct EpsilonArgs {
    /// The mechanism to account.
    #[arg(long, value_enum)]
    pub mechanism: Mechanism,
    /// Noise std divided by L2 sensitivity (gaussian, subsampled-gaussian).
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub noise_multiplier: Option<f64>,
    /// Poisson sampling rate q in (0, 1] (subsampled-gaussian).
    #[arg(long, value_name = "Q", allow_negative_numbers = true)]
    pub sample_rate: Option<f64>,
    /// Number of DP-SGD steps (subsampled-gaussian).
    #[arg(long, value_name = "T")]
    pub steps: Option<u64>,
    /// Laplace scale b (laplace), in units of --sensitivity.
    #[arg(long, value_name = "B", allow_negative_numbers = true)]
    pub scale: Option<f64>,
    /// L1 sensitivity the Laplace scale refers to (laplace).
    #[arg(
        long,
        value_name = "D1",
        default_value_t = 1.0,
        allow_negative_numbers = true
    )]
    pub sensitivity: f64,
    /// How many times the mechanism is applied (gaussian, laplace).
    #[arg(long, value_name = "K")]
    pub compositions: Option<u64>,
    /// Target delta in (0, 1).
    #[arg(long, value_name = "D", allow_negative_numbers = true)]
    pub delta: f64,
    /// Accountant that composes the releases.
    #[arg(long, value_enum, default_value = "pld")]
    pub accountant: AccountantArg,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `silo privacy sigma`.
#[derive(Debug, Args)]
pub struct SigmaArgs {
    /// Target epsilon (> 0).
    #[arg(long, value_name = "E", allow_negative_numbers = true)]
    pub epsilon: f64,
    /// Target delta in (0, 1).
    #[arg(long, value_name = "D", allow_negative_numbers = true)]
    pub delta: f64,
    /// Poisson sampling rate q in (0, 1]; with --steps, calibrates DP-SGD.
    #[arg(
        long,
        value_name = "Q",
        requires = "steps",
        allow_negative_numbers = true
    )]
    pub sample_rate: Option<f64>,
    /// Number of DP-SGD steps (with --sample-rate).
    #[arg(long, value_name = "T", requires = "sample_rate")]
    pub steps: Option<u64>,
    /// Releases of a plain Gaussian mechanism (without --sample-rate; default 1).
    #[arg(long, value_name = "K", conflicts_with = "sample_rate")]
    pub compositions: Option<u64>,
    /// Accountant that composes the releases.
    #[arg(long, value_enum, default_value = "pld")]
    pub accountant: AccountantArg,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `silo privacy` subcommand.
pub fn run(cmd: PrivacyCommand, out: &mut impl Write) -> Result<()> {
    match cmd {
        PrivacyCommand::Epsilon(args) => epsilon(args, out),
        PrivacyCommand::Sigma(args) => sigma(args, out),
    }
}

/// Rejects a flag that does not apply to the chosen mechanism, so a typo cannot be
/// silently ignored.
fn reject_flag<T>(value: &Option<T>, flag: &str, mechanism: &str) -> Result<()> {
    if value.is_some() {
        return Err(usage(format!(
            "{flag} does not apply to --mechanism {mechanism}"
        )));
    }
    Ok(())
}

fn require<T: Copy>(value: Option<T>, flag: &str, mechanism: &str) -> Result<T> {
    value.ok_or_else(|| usage(format!("--mechanism {mechanism} needs {flag}")))
}

/// The history that `silo privacy epsilon` accounts, and a description for humans.
fn epsilon_history(args: &EpsilonArgs) -> Result<(Composition, serde_json::Value, String)> {
    match args.mechanism {
        Mechanism::Gaussian => {
            let name = "gaussian";
            reject_flag(&args.sample_rate, "--sample-rate", name)?;
            reject_flag(&args.steps, "--steps (use --compositions)", name)?;
            reject_flag(&args.scale, "--scale", name)?;
            let sigma = require(args.noise_multiplier, "--noise-multiplier", name)?;
            let k = args.compositions.unwrap_or(1);
            let event = PrivacyEvent::gaussian(sigma)?;
            Ok((
                Composition::new(event, k),
                json!({"mechanism": name, "noise_multiplier": sigma, "compositions": k}),
                format!("Gaussian mechanism, noise multiplier {sigma}, {k} release(s)"),
            ))
        }
        Mechanism::SubsampledGaussian => {
            let name = "subsampled-gaussian";
            reject_flag(&args.scale, "--scale", name)?;
            reject_flag(&args.compositions, "--compositions (use --steps)", name)?;
            let sigma = require(args.noise_multiplier, "--noise-multiplier", name)?;
            let q = require(args.sample_rate, "--sample-rate", name)?;
            let steps = require(args.steps, "--steps", name)?;
            let event = PrivacyEvent::subsampled_gaussian(q, sigma)?;
            Ok((
                Composition::new(event, steps),
                json!({"mechanism": name, "noise_multiplier": sigma, "sample_rate": q, "steps": steps}),
                format!(
                    "Poisson-subsampled Gaussian, q {q}, noise multiplier {sigma}, {steps} step(s)"
                ),
            ))
        }
        Mechanism::Laplace => {
            let name = "laplace";
            reject_flag(
                &args.noise_multiplier,
                "--noise-multiplier (use --scale)",
                name,
            )?;
            reject_flag(&args.sample_rate, "--sample-rate", name)?;
            reject_flag(&args.steps, "--steps (use --compositions)", name)?;
            let scale = require(args.scale, "--scale", name)?;
            let sensitivity = args.sensitivity;
            if !(sensitivity.is_finite() && sensitivity > 0.0) {
                return Err(usage(format!(
                    "invalid --sensitivity {sensitivity}: expected a finite number > 0"
                )));
            }
            if !(scale.is_finite() && scale > 0.0) {
                return Err(usage(format!(
                    "invalid --scale {scale}: expected a finite number > 0"
                )));
            }
            let k = args.compositions.unwrap_or(1);
            let event = PrivacyEvent::laplace(scale / sensitivity)?;
            Ok((
                Composition::new(event, k),
                json!({"mechanism": name, "scale": scale, "sensitivity": sensitivity, "compositions": k}),
                format!(
                    "Laplace mechanism, scale {scale} (sensitivity {sensitivity}), {k} release(s)"
                ),
            ))
        }
    }
}

fn epsilon(args: EpsilonArgs, out: &mut impl Write) -> Result<()> {
    let (composition, mut doc, description) = epsilon_history(&args)?;
    let kind: AccountantKind = args.accountant.into();
    let eps = kind.build().epsilon(&[composition], args.delta)?;
    if args.json {
        let obj = doc.as_object_mut().expect("json! object");
        obj.insert("epsilon".into(), json!(eps));
        obj.insert("delta".into(), json!(args.delta));
        obj.insert("accountant".into(), json!(kind.as_str()));
        writeln!(out, "{doc}")?;
    } else {
        writeln!(
            out,
            "epsilon = {} at delta = {}",
            fmt_eps(eps),
            fmt_delta(args.delta)
        )?;
        writeln!(out, "  {description}")?;
        writeln!(out, "  accountant: {}", describe(kind))?;
    }
    Ok(())
}

fn sigma(args: SigmaArgs, out: &mut impl Write) -> Result<()> {
    let kind: AccountantKind = args.accountant.into();
    let accountant = kind.build();
    let (calibration, mut doc, description) = match (args.sample_rate, args.steps) {
        (Some(q), Some(steps)) => (
            calibrate::dp_sgd(accountant.as_ref(), args.epsilon, args.delta, q, steps)?,
            json!({"mechanism": "subsampled-gaussian", "sample_rate": q, "steps": steps}),
            format!("Poisson-subsampled Gaussian, q {q}, {steps} step(s)"),
        ),
        _ => {
            let k = args.compositions.unwrap_or(1);
            (
                calibrate::gaussian(accountant.as_ref(), args.epsilon, args.delta, k)?,
                json!({"mechanism": "gaussian", "compositions": k}),
                format!("Gaussian mechanism, {k} release(s)"),
            )
        }
    };
    if args.json {
        let obj = doc.as_object_mut().expect("json! object");
        obj.insert(
            "noise_multiplier".into(),
            json!(calibration.noise_multiplier),
        );
        obj.insert("epsilon".into(), json!(calibration.epsilon));
        obj.insert("target_epsilon".into(), json!(args.epsilon));
        obj.insert("delta".into(), json!(args.delta));
        obj.insert("accountant".into(), json!(kind.as_str()));
        writeln!(out, "{doc}")?;
    } else {
        writeln!(
            out,
            "noise multiplier = {:.4}",
            calibration.noise_multiplier
        )?;
        writeln!(
            out,
            "  {description}: epsilon = {} at delta = {} (target {})",
            fmt_eps(calibration.epsilon),
            fmt_delta(args.delta),
            args.epsilon
        )?;
        writeln!(out, "  accountant: {}", describe(kind))?;
    }
    Ok(())
}

fn fmt_eps(eps: f64) -> String {
    if eps.is_infinite() {
        "inf".to_string()
    } else {
        format!("{eps:.4}")
    }
}

fn fmt_delta(delta: f64) -> String {
    if delta < 1e-3 {
        format!("{delta:e}")
    } else {
        delta.to_string()
    }
}

fn describe(kind: AccountantKind) -> &'static str {
    match kind {
        AccountantKind::Rdp => "rdp (Renyi DP over Opacus's orders, improved conversion)",
        AccountantKind::Pld => {
            "pld (privacy loss distributions, pessimistic connect-the-dots, FFT composition)"
        }
    }
}

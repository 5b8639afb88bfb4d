//! `silo ca init|issue`: the project certificate authority from the command line.
//!
//! Thin layer over [`crate::ca`]: parses flags, reports what was written. Errors caused by
//! the input (a bad name, an existing file, a missing CA) exit with code 2.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use silo_proto::tls::Role;

use super::usage;
use crate::ca::{self, Ca, CaError};

/// `silo ca …` subcommands.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create the project CA: DIR/ca.pem (share it) and DIR/ca.key (keep it secret).
    Init(InitArgs),
    /// Issue a certificate and key for a coordinator, site, admin or auditor.
    Issue(IssueArgs),
}

/// Arguments of `silo ca init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Directory to write ca.pem and ca.key into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace an existing CA (every certificate it issued stops working).
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `silo ca issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// Directory holding the CA (ca.pem, ca.key).
    #[arg(long = "ca", value_name = "DIR")]
    pub ca_dir: PathBuf,
    /// Role of the holder: coordinator | site | admin | auditor.
    #[arg(long, value_name = "ROLE")]
    pub role: Role,
    /// Name of the holder (letters, digits, '.', '_', '-'); a site's must match site.toml.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Extra subject alternative name (DNS name or IP address); repeatable.
    #[arg(long = "san", value_name = "HOST")]
    pub sans: Vec<String>,
    /// Validity in days.
    #[arg(long, value_name = "N", default_value_t = ca::DEFAULT_VALIDITY_DAYS)]
    pub days: u32,
    /// Directory to write NAME.pem and NAME.key into (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace existing NAME.pem / NAME.key.
    #[arg(long)]
    pub force: bool,
}

/// Maps a CA error to `anyhow`, marking input errors for exit code 2.
fn report(err: CaError) -> anyhow::Error {
    if err.is_bad_input() {
        usage(err.to_string())
    } else {
        anyhow::Error::new(err)
    }
}

/// Runs one `silo ca` command, writing a summary to `out`.
pub fn run(cmd: CaCommand, out: &mut impl Write) -> Result<()> {
    match cmd {
        CaCommand::Init(args) => {
            // Check before generating, so the refusal names the file without delay.
            if !args.force {
                for file in [ca::CA_CERT_FILE, ca::CA_KEY_FILE] {
                    let path = args.out.join(file);
                    if path.exists() {
                        return Err(report(CaError::Exists(path)));
                    }
                }
            }
            let ca = Ca::generate().map_err(report)?;
            let (cert, key) = ca.write(&args.out, args.force).map_err(report)?;
            writeln!(
                out,
                "wrote {} (CA certificate, valid {} days) and {} (CA key, mode 0600: keep it secret)",
                cert.display(),
                ca::CA_VALIDITY_DAYS,
                key.display()
            )
            .context("writing to stdout")?;
        }
        CaCommand::Issue(args) => {
            let ca = Ca::load(&args.ca_dir).map_err(report)?;
            let issued = ca
                .issue(args.role, &args.name, &args.sans, args.days)
                .map_err(report)?;
            let (cert, key) =
                ca::write_pair(&args.out, &args.name, &issued, args.force).map_err(report)?;
            writeln!(
                out,
                "wrote {} ({} {}, valid {} days) and {} (key, mode 0600)",
                cert.display(),
                args.role,
                args.name,
                args.days,
                key.display()
            )
            .context("writing to stdout")?;
        }
    }
    Ok(())
}

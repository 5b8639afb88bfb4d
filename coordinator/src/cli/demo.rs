//! `silo demo [--out DIR]`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

/// Arguments of `silo demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Folder for the demo's certificates, configs, data and state (replaced on re-run).
    #[arg(long, default_value = "silo-demo")]
    pub out: PathBuf,
}

/// Runs the demo.
pub fn run(args: DemoArgs, out: &mut impl Write) -> Result<()> {
    super::block_on(crate::demo::run(&args.out, out))
}

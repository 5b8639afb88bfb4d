//! `silo`: the coordinator daemon and admin CLI.

use clap::Parser;
use silo_coordinator::cli::{self, Cli};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout with exit 0; argument errors are one line, exit 2.
        Err(err) if !err.use_stderr() => err.exit(),
        Err(err) => {
            let rendered = err.to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("error: invalid arguments");
            eprintln!("{first} (see --help)");
            std::process::exit(2);
        }
    };
    if let Err(err) = cli::run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(cli::exit_code(&err));
    }
}

//! `silo`: the coordinator daemon and admin CLI.

use clap::Parser;
use silo_coordinator::cli::{self, Cli};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version go to stdout with exit 0; argument errors are one line, exit 2.
        Err(err) if !err.use_stderr() => err.exit(),
        Err(err) => {
            // clap puts details (e.g. the missing flags) on the lines after the first; keep
            // everything before the usage block, on one line.
            let rendered = err.to_string();
            let line: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            eprintln!("{} (see --help)", line.join(" "));
            std::process::exit(2);
        }
    };
    if let Err(err) = cli::run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(cli::exit_code(&err));
    }
}

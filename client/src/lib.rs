//! The Silo site daemon (`silo-site`): runs next to a data holder's data, takes tasks from
//! the coordinator, and releases only the outputs of DP mechanisms it calibrated, charged
//! and sampled itself (DESIGN section 2).
//!
//! - [`config`]: `site.toml`, validated completely at start-up;
//! - [`ledger`]: the append-only, hash-chained privacy ledger (SQLite);
//! - [`policy`]: what a task must satisfy before anything is computed;
//! - [`data`]: dataset adapters (CSV);
//! - [`executor`]: one file per job kind: policy → compute → charge → noise → result;
//! - [`daemon`]: the session with the coordinator (dial out, register, tasks, reconnect);
//! - [`check`]: `silo-site check`, the dry run;
//! - [`cli`]: the `silo-site` command line.

pub mod check;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod data;
pub mod executor;
pub mod ledger;
pub mod policy;

#[cfg(test)]
mod testutil;

/// This crate's version, sent at registration.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

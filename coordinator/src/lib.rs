//! The Silo coordinator: admin CLI commands and (soon) the job scheduler.

pub mod cli;

//! The Silo coordinator: the gRPC server, job scheduler, store, admin CLI, CA tooling
//! and `silo demo`.

pub mod ca;
pub mod cli;
pub mod config;
pub mod demo;
pub mod jobs;
pub mod server;
pub mod store;

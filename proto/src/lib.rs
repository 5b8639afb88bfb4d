//! Silo's wire contract: the generated tonic/prost code for `silo.proto`.
//!
//! `SiteApi` carries tasks down to site daemons and results up; `AdminApi` serves the
//! `silo` CLI. See `silo.proto` for the meaning of every field.

#![allow(missing_docs, clippy::all)]

/// Generated types and services of package `silo.v1`.
pub mod v1 {
    tonic::include_proto!("silo.v1");
}

pub use v1::*;

pub mod tls;

/// Largest gRPC message either side accepts; bigger payloads are chunked.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Size of one result chunk.
pub const CHUNK_BYTES: usize = 2 * 1024 * 1024;

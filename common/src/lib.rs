//! Silo's pure core, shared by the coordinator and the site daemon.
//!
//! Nothing in this crate touches the network, spawns a task or opens a file on its own:
//! callers hand it data and get numbers back. That keeps the privacy arithmetic testable in
//! isolation and lets both sides of the wire rely on exactly the same code.
//!
//! - [`contrastive`]: the `contrastive_svd` release and its cross-covariance SVD.
//! - [`ehr`]: patient timelines of clinical concepts and their bounded co-occurrence counts.
//! - [`linalg`]: randomized truncated SVD (faer).
//! - [`pmi`]: shifted positive PMI and concept embeddings for the `pmi_svd` job.
//! - [`privacy`]: DP mechanisms, noise samplers, the RDP and PLD accountants and noise
//!   calibration.
//! - [`spec`]: job specs, parsed and validated identically on both sides of the wire.
//! - [`synth`]: seeded synthetic data for demos and tests.
//! - [`tensorfile`]: safetensors and `.npy` encoding and decoding, in memory.

pub mod contrastive;
pub mod ehr;
pub mod eval;
pub mod linalg;
pub mod pmi;
pub mod privacy;
pub mod spec;
pub mod stats;
pub mod synth;
pub mod tensorfile;

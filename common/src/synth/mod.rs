//! Seeded synthetic data for demos, tests and simulation (never for noise).
//!
//! Generators are deterministic functions of their seed (ChaCha20), so a test or a demo
//! run can be reproduced exactly.

pub mod ehr;
pub mod pairs;
pub mod visits;

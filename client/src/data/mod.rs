//! Data adapters: read a dataset from where the site keeps it.
//!
//! Adapters only read and parse; they never decide what leaves the site. Whatever they
//! return stays inside the executor until a DP mechanism has been charged and applied.

pub mod csv;
pub mod ehr;
pub mod fhir;
pub mod omop;
pub mod pairs;

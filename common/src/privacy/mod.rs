//! Differential privacy: mechanisms, noise, accountants.
//!
//! The pieces fit together like this:
//!
//! - a **mechanism** ([`mechanisms`]) knows its sensitivity, its noise scale and its privacy
//!   guarantee, and adds noise drawn from a [`noise`] source;
//! - every mechanism can describe itself as a [`PrivacyEvent`]: the sensitivity-normalised
//!   parameters an accountant needs (noise multiplier, sampling rate);
//! - an [`Accountant`] composes a history of events ([`Composition`]s) into an (ε, δ)
//!   guarantee: [`rdp::RdpAccountant`] (Rényi DP, Mironov et al.) or [`pld::PldAccountant`]
//!   (privacy loss distributions, FFT composition, tighter);
//! - [`calibrate`] inverts an accountant: the smallest noise multiplier meeting a target.

pub mod accountant;
pub mod calibrate;
pub mod error;
pub mod event;
pub mod mechanisms;
pub mod noise;
pub mod pld;
pub mod rdp;
pub mod special;

pub use accountant::{Accountant, AccountantKind};
pub use error::PrivacyError;
pub use event::{Composition, PrivacyEvent};

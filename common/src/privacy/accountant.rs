//! The accountant interface shared by the RDP and PLD accountants.

use serde::{Deserialize, Serialize};

use super::error::PrivacyError;
use super::event::Composition;

/// Composes a history of privacy events into an (ε, δ) guarantee.
///
/// Implementations must be *safe*: the ε they report is never below the true ε of the
/// composed mechanism at that δ (rounding goes the conservative way). An empty history, or
/// one where every count is 0, has ε = 0.
pub trait Accountant {
    /// Smallest ε (as far as this accountant can prove) such that the composition of
    /// `history` is (ε, δ)-DP. `delta` must lie in (0, 1).
    fn epsilon(&self, history: &[Composition], delta: f64) -> Result<f64, PrivacyError>;

    /// Which accountant this is.
    fn kind(&self) -> AccountantKind;
}

/// The accountants Silo offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountantKind {
    /// Rényi DP over Opacus's order grid, improved conversion (Balle et al. 2020).
    Rdp,
    /// Privacy loss distributions with FFT composition (Koskela et al. 2020; Doroshenko et
    /// al. 2022). Tighter than RDP.
    Pld,
}

impl AccountantKind {
    /// The accountant's name as written on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountantKind::Rdp => "rdp",
            AccountantKind::Pld => "pld",
        }
    }

    /// An accountant of this kind with its default settings.
    pub fn build(self) -> Box<dyn Accountant + Send + Sync> {
        match self {
            AccountantKind::Rdp => Box::new(super::rdp::RdpAccountant::default()),
            AccountantKind::Pld => Box::new(super::pld::PldAccountant::default()),
        }
    }
}

impl std::str::FromStr for AccountantKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rdp" => Ok(AccountantKind::Rdp),
            "pld" => Ok(AccountantKind::Pld),
            other => Err(format!("unknown accountant '{other}': expected rdp or pld")),
        }
    }
}

//! The accountant interface shared by the RDP and PLD accountants.

use serde::{Deserialize, Serialize};

use super::error::PrivacyError;
use super::event::{Composition, PrivacyEvent};

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

/// Splits a history into its threshold failure probability Σ count·δ (see
/// [`PrivacyEvent::Threshold`]) and the δ left for the other events at target `delta`:
/// `None` when the failure probability alone reaches `delta` (no finite ε is provable).
/// The sum is rounded up.
pub(crate) fn delta_after_thresholds(history: &[Composition], delta: f64) -> Option<f64> {
    let mut failure = 0.0;
    let mut terms = 0u64;
    for c in history {
        if let PrivacyEvent::Threshold { delta: d } = c.event {
            failure += d * c.count as f64;
            terms += 2;
        }
    }
    let failure = failure * (1.0 + (terms + 2) as f64 * f64::EPSILON);
    let left = delta - failure;
    (left > 0.0).then_some(left)
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

//! Rényi-DP accountant (placeholder until the accountant lands).
use super::{Accountant, AccountantKind, Composition, PrivacyError};
/// RDP accountant.
#[derive(Debug, Clone, Default)]
pub struct RdpAccountant;
impl Accountant for RdpAccountant {
    fn epsilon(&self, _history: &[Composition], _delta: f64) -> Result<f64, PrivacyError> {
        Err(PrivacyError::Numerical(
            "RDP accountant not built yet".into(),
        ))
    }
    fn kind(&self) -> AccountantKind {
        AccountantKind::Rdp
    }
}

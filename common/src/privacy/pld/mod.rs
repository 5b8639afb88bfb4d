//! PLD accountant (placeholder until the accountant lands).
use super::{Accountant, AccountantKind, Composition, PrivacyError};
/// PLD accountant.
#[derive(Debug, Clone, Default)]
pub struct PldAccountant;
impl Accountant for PldAccountant {
    fn epsilon(&self, _history: &[Composition], _delta: f64) -> Result<f64, PrivacyError> {
        Err(PrivacyError::Numerical(
            "PLD accountant not built yet".into(),
        ))
    }
    fn kind(&self) -> AccountantKind {
        AccountantKind::Pld
    }
}

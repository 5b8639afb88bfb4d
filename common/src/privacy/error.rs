//! The one error type of the privacy core.

use thiserror::Error;

/// Why a privacy computation was refused.
///
/// Every variant names the offending value: privacy parameters are rejected, never clamped
/// (an ε that silently became something else is a privacy bug).
#[derive(Debug, Error, Clone, PartialEq)]
pub enum PrivacyError {
    /// A parameter lies outside its valid range; `expected` states the range.
    #[error("invalid {name} = {value}: expected {expected}")]
    InvalidParameter {
        /// The parameter's name as a user would write it (e.g. `noise multiplier`).
        name: &'static str,
        /// The value that was given.
        value: f64,
        /// The valid range, in words (e.g. `a finite number > 0`).
        expected: &'static str,
    },
    /// The requested guarantee cannot be met (e.g. no noise multiplier reaches ε).
    #[error("infeasible: {0}")]
    Infeasible(String),
    /// A numeric computation failed (overflow, non-convergence); the message says where.
    #[error("numerical failure: {0}")]
    Numerical(String),
}

impl PrivacyError {
    /// Shorthand for [`PrivacyError::InvalidParameter`].
    pub fn invalid(name: &'static str, value: f64, expected: &'static str) -> Self {
        PrivacyError::InvalidParameter {
            name,
            value,
            expected,
        }
    }
}

/// Checks `value` is finite and strictly positive.
pub(crate) fn positive(name: &'static str, value: f64) -> Result<f64, PrivacyError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(PrivacyError::invalid(name, value, "a finite number > 0"))
    }
}

/// Checks δ lies in the open interval (0, 1).
pub(crate) fn delta(value: f64) -> Result<f64, PrivacyError> {
    if value > 0.0 && value < 1.0 {
        Ok(value)
    } else {
        Err(PrivacyError::invalid("delta", value, "a number in (0, 1)"))
    }
}

/// Checks a Poisson sampling rate lies in (0, 1].
pub(crate) fn sample_rate(value: f64) -> Result<f64, PrivacyError> {
    if value > 0.0 && value <= 1.0 {
        Ok(value)
    } else {
        Err(PrivacyError::invalid(
            "sample rate",
            value,
            "a number in (0, 1]",
        ))
    }
}

//! The Rényi orders α at which the accountant tracks a history.
//!
//! RDP gives one guarantee per order; the conversion to (ε, δ) picks the best one, so the
//! grid decides how tight the reported ε is. Silo uses Opacus's grid by default so that
//! its numbers can be checked against Opacus's digit for digit.

use crate::privacy::error::PrivacyError;

/// Opacus's default orders (`RDPAccountant.DEFAULT_ALPHAS`): 1.1, 1.2, …, 10.9, then the
/// integers 12, 13, …, 63 — 151 orders in all.
///
/// The fractional orders are built as `1 + x/10` exactly as Python evaluates
/// `1 + x / 10.0`, so that 2.0, 3.0, … land on integers and take the exact integer-order
/// formula, as they do in Opacus.
pub fn default_orders() -> Vec<f64> {
    let fractional = (1..=99).map(|x| 1.0 + f64::from(x) / 10.0);
    let integer = (12..=63).map(f64::from);
    fractional.chain(integer).collect()
}

/// Checks a custom order grid: at least one order, every order finite and > 1.
///
/// α = 1 (KL divergence) and α = ∞ (pure DP) are limits the per-order formulas do not
/// cover, and the conversion to (ε, δ) divides by α − 1, so both are rejected rather than
/// special-cased.
pub fn validate(orders: &[f64]) -> Result<(), PrivacyError> {
    if orders.is_empty() {
        return Err(PrivacyError::invalid(
            "number of rdp orders",
            0.0,
            "at least one order",
        ));
    }
    for &order in orders {
        validate_one(order)?;
    }
    Ok(())
}

/// Checks one order is finite and > 1.
pub(crate) fn validate_one(order: f64) -> Result<f64, PrivacyError> {
    if order.is_finite() && order > 1.0 {
        Ok(order)
    } else {
        Err(PrivacyError::invalid(
            "rdp order",
            order,
            "a finite number > 1",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_grid_is_opacus_grid() {
        let orders = default_orders();
        assert_eq!(orders.len(), 151);
        assert_eq!(orders[0], 1.1);
        assert_eq!(orders[9], 2.0);
        assert_eq!(orders[98], 10.9);
        assert_eq!(orders[99], 12.0);
        assert_eq!(orders[150], 63.0);
        // Integer orders inside the fractional range are exact integers (Python agrees:
        // `(1 + 20/10.0).is_integer()` is True).
        for k in 1..=9 {
            assert_eq!(orders[10 * k - 1], (k + 1) as f64);
        }
        assert!(validate(&orders).is_ok());
    }

    #[test]
    fn bad_orders_are_rejected() {
        assert!(validate(&[]).is_err());
        for bad in [1.0, 0.5, -2.0, f64::INFINITY, f64::NAN] {
            let err = validate(&[2.0, bad]).unwrap_err();
            assert!(matches!(
                err,
                PrivacyError::InvalidParameter {
                    name: "rdp order",
                    ..
                }
            ));
        }
    }
}

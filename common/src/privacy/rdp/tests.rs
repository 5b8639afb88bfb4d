//! Properties of the RDP accountant as a whole: composition, monotonicity, edge cases.

use super::*;

fn sgd(q: f64, sigma: f64, steps: u64) -> Vec<Composition> {
    vec![Composition::new(
        PrivacyEvent::subsampled_gaussian(q, sigma).unwrap(),
        steps,
    )]
}

fn eps(history: &[Composition], delta: f64) -> f64 {
    RdpAccountant::default().epsilon(history, delta).unwrap()
}

#[test]
fn empty_history_is_exactly_zero() {
    let acc = RdpAccountant::default();
    assert_eq!(acc.epsilon(&[], 1e-5).unwrap(), 0.0);
    assert_eq!(eps(&sgd(0.01, 1.0, 0), 1e-5), 0.0);
    let zero_counts = [
        Composition::new(PrivacyEvent::gaussian(0.1).unwrap(), 0),
        Composition::new(PrivacyEvent::pure_dp(5.0).unwrap(), 0),
    ];
    let spent = acc.epsilon_and_order(&zero_counts, 1e-9).unwrap();
    assert_eq!(spent.epsilon, 0.0);
    assert_eq!(spent.order, None);
    assert!(acc.curve(&zero_counts).unwrap().iter().all(|&v| v == 0.0));
}

#[test]
fn epsilon_is_non_decreasing_in_steps() {
    let mut prev = 0.0;
    for steps in [0, 1, 2, 5, 10, 100, 1_000, 10_000, 100_000] {
        let e = eps(&sgd(0.01, 1.1, steps), 1e-5);
        assert!(e >= prev, "steps={steps}: {e} < {prev}");
        prev = e;
    }
}

#[test]
fn epsilon_is_decreasing_in_sigma() {
    let mut prev = f64::INFINITY;
    for sigma in [0.5, 0.7, 1.0, 1.5, 2.0, 4.0, 10.0] {
        let e = eps(&sgd(0.01, sigma, 1_000), 1e-5);
        assert!(e < prev, "sigma={sigma}: {e} ≥ {prev}");
        prev = e;
    }
}

#[test]
fn epsilon_is_increasing_in_q() {
    let mut prev = 0.0;
    for q in [1e-4, 1e-3, 0.004, 0.01, 0.05, 0.2, 0.6, 1.0] {
        let e = eps(&sgd(q, 1.0, 100), 1e-5);
        assert!(e > prev, "q={q}: {e} ≤ {prev}");
        prev = e;
    }
}

#[test]
fn count_multiplies_and_histories_add() {
    let acc = RdpAccountant::default();
    let a = PrivacyEvent::subsampled_gaussian(0.02, 0.9).unwrap();
    let b = PrivacyEvent::laplace(2.0).unwrap();
    let together = acc
        .curve(&[Composition::new(a, 30), Composition::new(b, 4)])
        .unwrap();
    let split = acc
        .curve(&[
            Composition::new(a, 10),
            Composition::new(b, 1),
            Composition::new(a, 20),
            Composition::new(b, 3),
        ])
        .unwrap();
    let one_a = acc.curve(&[Composition::new(a, 1)]).unwrap();
    let one_b = acc.curve(&[Composition::new(b, 1)]).unwrap();
    for k in 0..acc.orders().len() {
        let want = 30.0 * one_a[k] + 4.0 * one_b[k];
        assert!(((together[k] - want) / want).abs() < 1e-14);
        assert_eq!(together[k], split[k]);
    }
}

#[test]
fn gaussian_composition_is_a_smaller_gaussian() {
    // T Gaussians with σ compose to one Gaussian with σ/√T: the curves coincide.
    let acc = RdpAccountant::default();
    let t = 16u64;
    let many = acc
        .curve(&[Composition::new(PrivacyEvent::gaussian(4.0).unwrap(), t)])
        .unwrap();
    let one = acc
        .curve(&[Composition::new(PrivacyEvent::gaussian(1.0).unwrap(), 1)])
        .unwrap();
    for (m, o) in many.iter().zip(&one) {
        assert!(((m - o) / o).abs() < 1e-15);
    }
}

#[test]
fn subsampling_at_rate_one_is_the_gaussian() {
    let g = eps(
        &[Composition::new(PrivacyEvent::gaussian(1.3).unwrap(), 50)],
        1e-6,
    );
    let s = eps(&sgd(1.0, 1.3, 50), 1e-6);
    assert_eq!(g, s);
}

#[test]
fn pure_dp_never_worse_than_its_epsilon() {
    // k-fold ε-DP is (kε, 0)-DP; the RDP route at δ > 0 must not exceed that by more than
    // the conversion's slack, and each order's divergence is at most kε.
    let acc = RdpAccountant::default();
    let history = [Composition::new(PrivacyEvent::pure_dp(0.5).unwrap(), 10)];
    for v in acc.curve(&history).unwrap() {
        assert!(v <= 5.0);
    }
    for order in [1.1, 2.0, 9.9, 63.0] {
        let v = event_rdp(&PrivacyEvent::pure_dp(0.5).unwrap(), order).unwrap();
        assert!(v > 0.0 && v <= 0.5);
    }
}

#[test]
fn laplace_divergence_is_below_its_pure_epsilon() {
    for order in [1.1, 2.0, 9.9, 63.0] {
        let v = event_rdp(&PrivacyEvent::laplace(0.5).unwrap(), order).unwrap();
        assert!(v > 0.0 && v <= 2.0);
    }
}

#[test]
fn no_finite_order_is_infinite_epsilon() {
    // σ so small that α/(2σ²) overflows at every order.
    let history = [Composition::new(PrivacyEvent::gaussian(1e-200).unwrap(), 1)];
    let spent = RdpAccountant::default()
        .epsilon_and_order(&history, 1e-5)
        .unwrap();
    assert_eq!(spent.epsilon, f64::INFINITY);
    assert_eq!(spent.order, None);
}

#[test]
fn invalid_inputs_are_rejected_not_clamped() {
    let acc = RdpAccountant::default();
    let history = sgd(0.01, 1.0, 10);
    for delta in [0.0, 1.0, 1.5, -1e-5, f64::NAN] {
        assert!(acc.epsilon(&history, delta).is_err(), "delta={delta}");
    }
    // Events can arrive deserialised from a ledger without passing their constructors;
    // a bad one is refused even when its count is 0.
    let bad = [
        PrivacyEvent::Gaussian {
            noise_multiplier: 0.0,
        },
        PrivacyEvent::Laplace {
            noise_multiplier: -1.0,
        },
        PrivacyEvent::PureDp { epsilon: f64::NAN },
        PrivacyEvent::SubsampledGaussian {
            sample_rate: 1.5,
            noise_multiplier: 1.0,
        },
        PrivacyEvent::SubsampledGaussian {
            sample_rate: 0.0,
            noise_multiplier: 1.0,
        },
    ];
    for event in bad {
        for count in [0, 3] {
            let err = acc.epsilon(&[Composition::new(event, count)], 1e-5);
            assert!(
                matches!(err, Err(PrivacyError::InvalidParameter { .. })),
                "{event:?} x{count}: {err:?}"
            );
        }
        assert!(event_rdp(&event, 2.0).is_err());
    }
    assert!(event_rdp(&PrivacyEvent::gaussian(1.0).unwrap(), 1.0).is_err());
    assert!(RdpAccountant::with_orders(vec![2.0, 0.9]).is_err());
    assert!(RdpAccountant::with_orders(vec![]).is_err());
}

#[test]
fn custom_orders_are_used() {
    let acc = RdpAccountant::with_orders(vec![2.0, 4.0, 8.0]).unwrap();
    assert_eq!(acc.orders(), &[2.0, 4.0, 8.0]);
    let history = [Composition::new(PrivacyEvent::gaussian(2.0).unwrap(), 1)];
    assert_eq!(acc.curve(&history).unwrap(), vec![0.25, 0.5, 1.0]);
    let spent = acc.epsilon_and_order(&history, 1e-5).unwrap();
    assert!([2.0, 4.0, 8.0].contains(&spent.order.unwrap()));
    assert_eq!(acc.kind(), AccountantKind::Rdp);
}

#[test]
fn underflowing_divergence_is_not_reported_as_zero() {
    // A vanishing but real privacy loss must not collapse into the empty history's ε = 0.
    let history = [Composition::new(PrivacyEvent::pure_dp(1e-300).unwrap(), 1)];
    let spent = RdpAccountant::default()
        .epsilon_and_order(&history, 1e-5)
        .unwrap();
    assert!(spent.order.is_some());
}

#[test]
fn known_dp_sgd_epsilon() {
    // The worked example of Opacus's `rdp.py` module docstring: orders 2..=32, histories
    // (q=1e-5, σ=1, 10 steps) and (q=1e-4, σ=3, 4 steps), δ = 1e-5 → (0.336, 23).
    let acc = RdpAccountant::with_orders((2..=32).map(f64::from).collect()).unwrap();
    let history = [
        Composition::new(PrivacyEvent::subsampled_gaussian(1e-5, 1.0).unwrap(), 10),
        Composition::new(PrivacyEvent::subsampled_gaussian(1e-4, 3.0).unwrap(), 4),
    ];
    let spent = acc.epsilon_and_order(&history, 1e-5).unwrap();
    assert!((spent.epsilon - 0.336).abs() < 5e-4, "{spent:?}");
    assert_eq!(spent.order, Some(23.0));
}

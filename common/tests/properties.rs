//! Properties that tie the accountants together: PLD never above RDP, both monotone, and
//! calibration that inverts them on the safe side.

use silo_common::privacy::calibrate;
use silo_common::privacy::pld::PldAccountant;
use silo_common::privacy::rdp::RdpAccountant;
use silo_common::privacy::{Accountant, AccountantKind, Composition, PrivacyEvent};

fn dp_sgd(q: f64, sigma: f64, steps: u64) -> Vec<Composition> {
    vec![Composition::new(
        PrivacyEvent::subsampled_gaussian(q, sigma).unwrap(),
        steps,
    )]
}

/// A coarser PLD grid keeps these debug-mode tests quick; coarser is still an upper bound.
fn pld() -> PldAccountant {
    PldAccountant::new(1e-3).unwrap()
}

#[test]
fn pld_is_never_above_rdp() {
    let rdp = RdpAccountant::default();
    let pld = pld();
    for &(q, sigma, steps) in &[
        (0.001, 1.0, 1000),
        (0.01, 1.0, 100),
        (0.01, 2.0, 1000),
        (0.1, 1.0, 10),
        (0.5, 5.0, 100),
        (1.0, 3.0, 1),
        (1.0, 10.0, 50),
    ] {
        for &delta in &[1e-5, 1e-6] {
            let history = dp_sgd(q, sigma, steps);
            let e_rdp = rdp.epsilon(&history, delta).unwrap();
            let e_pld = pld.epsilon(&history, delta).unwrap();
            assert!(
                e_pld <= e_rdp,
                "q={q} sigma={sigma} T={steps} delta={delta}: pld {e_pld} > rdp {e_rdp}"
            );
        }
    }
    // Heterogeneous: statistics (Laplace, Gaussian) followed by training.
    let history = vec![
        Composition::new(PrivacyEvent::laplace(4.0).unwrap(), 2),
        Composition::new(PrivacyEvent::gaussian(5.0).unwrap(), 3),
        Composition::new(PrivacyEvent::subsampled_gaussian(0.02, 1.2).unwrap(), 500),
    ];
    let e_rdp = rdp.epsilon(&history, 1e-6).unwrap();
    let e_pld = pld.epsilon(&history, 1e-6).unwrap();
    assert!(e_pld <= e_rdp, "heterogeneous: pld {e_pld} > rdp {e_rdp}");
}

#[test]
fn both_accountants_are_zero_without_releases_and_monotone() {
    let accountants: [Box<dyn Accountant>; 2] =
        [Box::new(RdpAccountant::default()), Box::new(pld())];
    for acc in &accountants {
        assert_eq!(acc.epsilon(&[], 1e-5).unwrap(), 0.0);
        assert_eq!(acc.epsilon(&dp_sgd(0.01, 1.0, 0), 1e-5).unwrap(), 0.0);
        let mut last = 0.0;
        for steps in [1, 10, 100, 1000] {
            let e = acc.epsilon(&dp_sgd(0.01, 1.0, steps), 1e-5).unwrap();
            assert!(
                e >= last,
                "{:?}: epsilon fell from {last} to {e} at T={steps}",
                acc.kind()
            );
            last = e;
        }
        let mut last = f64::INFINITY;
        for sigma in [0.7, 1.0, 2.0, 4.0] {
            let e = acc.epsilon(&dp_sgd(0.01, sigma, 100), 1e-5).unwrap();
            assert!(
                e <= last,
                "{:?}: epsilon rose from {last} to {e} at sigma={sigma}",
                acc.kind()
            );
            last = e;
        }
        // Adding an event never lowers epsilon.
        let base = dp_sgd(0.01, 1.0, 100);
        let mut more = base.clone();
        more.push(Composition::new(PrivacyEvent::gaussian(10.0).unwrap(), 1));
        assert!(acc.epsilon(&more, 1e-5).unwrap() >= acc.epsilon(&base, 1e-5).unwrap());
    }
}

#[test]
fn calibration_meets_the_target_and_is_tight() {
    let accountants: [Box<dyn Accountant>; 2] =
        [Box::new(RdpAccountant::default()), Box::new(pld())];
    for acc in &accountants {
        for &(target, q, steps) in &[(1.0, 0.01, 1000u64), (3.0, 0.05, 200), (8.0, 1.0, 10)] {
            let c = calibrate::dp_sgd(acc.as_ref(), target, 1e-5, q, steps).unwrap();
            assert!(
                c.epsilon <= target,
                "{:?}: calibrated epsilon {} above target {target}",
                acc.kind(),
                c.epsilon
            );
            // A hair less noise must miss the target: the answer is (nearly) the smallest.
            let below = acc
                .epsilon(&dp_sgd(q, c.noise_multiplier * (1.0 - 1e-3), steps), 1e-5)
                .unwrap();
            assert!(
                below > target,
                "{:?}: sigma {} is not tight ({below} <= {target})",
                acc.kind(),
                c.noise_multiplier
            );
        }
        let g = calibrate::gaussian(acc.as_ref(), 1.0, 1e-6, 1).unwrap();
        assert!(g.epsilon <= 1.0);
    }
}

#[test]
fn calibration_rejects_invalid_targets() {
    let rdp = RdpAccountant::default();
    assert!(calibrate::dp_sgd(&rdp, 0.0, 1e-5, 0.01, 10).is_err());
    assert!(calibrate::dp_sgd(&rdp, 1.0, 1.0, 0.01, 10).is_err());
    assert!(calibrate::dp_sgd(&rdp, 1.0, 1e-5, 1.5, 10).is_err());
    assert!(calibrate::dp_sgd(&rdp, 1.0, 1e-5, 0.01, 0).is_err());
    assert!(calibrate::gaussian(&rdp, f64::NAN, 1e-5, 1).is_err());
}

#[test]
fn threshold_failures_take_their_delta_off_the_target() {
    let gaussian = Composition::new(PrivacyEvent::gaussian(2.0).unwrap(), 3);
    let threshold = Composition::new(PrivacyEvent::threshold(2e-7).unwrap(), 2);
    for kind in [AccountantKind::Rdp, AccountantKind::Pld] {
        let acc = kind.build();
        let with = acc.epsilon(&[gaussian, threshold], 1e-6).unwrap();
        let reference = acc.epsilon(&[gaussian], 1e-6 - 4e-7).unwrap();
        let looser = acc.epsilon(&[gaussian], 1e-6).unwrap();
        assert!(
            (with - reference).abs() <= 1e-9 * reference,
            "{kind:?}: {with} vs {reference}"
        );
        assert!(with > looser, "{kind:?}: the failure δ must cost something");
        // Failure probability at or above the target: nothing finite is provable.
        let too_much = Composition::new(PrivacyEvent::threshold(6e-7).unwrap(), 2);
        assert_eq!(
            acc.epsilon(&[gaussian, too_much], 1e-6).unwrap(),
            f64::INFINITY
        );
        // Alone, a small failure probability is (0, δ)-DP.
        assert_eq!(acc.epsilon(&[threshold], 1e-6).unwrap(), 0.0, "{kind:?}");
    }
    assert!(PrivacyEvent::threshold(0.0).is_err());
    assert!(PrivacyEvent::threshold(1.0).is_err());
}

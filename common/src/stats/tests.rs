use super::*;
use crate::privacy::noise::SimulationRng;
use crate::privacy::pld::PldAccountant;
use crate::privacy::{Accountant, PrivacyEvent};
use crate::spec::{JobSpec, NoiseKind, Statistic};

fn spec(privacy: &str, params: &str) -> JobSpec {
    let text = format!(
        "kind = \"dp_stats\"\nname = \"t\"\ndataset = \"visits\"\n[privacy]\n{privacy}\n[params]\n{params}\n"
    );
    JobSpec::parse_toml(&text, "spec.toml").unwrap()
}

fn laplace_multiplier(c: &crate::privacy::Composition) -> f64 {
    match c.event {
        PrivacyEvent::Laplace { noise_multiplier } => noise_multiplier,
        other => panic!("expected a Laplace event, got {other:?}"),
    }
}

#[test]
fn count_sensitivity_is_max_rows_per_unit() {
    let plan = DpStatsPlan::new(&spec(
        "epsilon = 0.5",
        "statistic = \"count\"\nmax_rows_per_unit = 3",
    ))
    .unwrap();
    let events = plan.events();
    assert_eq!(events.len(), 1);
    // b/Δ = 1/ε whatever m is: the scale grows with m, the event does not.
    assert!((laplace_multiplier(&events[0]) - 2.0).abs() < 1e-12);
    let p = plan.parameters_json();
    let b = p["parts"][0]["noise_scale"].as_f64().unwrap();
    assert!((b - 3.0 / 0.5).abs() < 1e-9, "{b}");
    let s = plan.sensitivity_json();
    assert_eq!(s["parts"][0]["value"], 3.0);
    assert_eq!(s["parts"][0]["norm"], "l1");
}

#[test]
fn sum_sensitivity_is_m_times_the_larger_bound() {
    let plan = DpStatsPlan::new(&spec(
        "epsilon = 1.0",
        "statistic = \"sum\"\ncolumn = \"x\"\nlower = -10.0\nupper = 5.0\nmax_rows_per_unit = 2",
    ))
    .unwrap();
    assert_eq!(plan.sensitivity_json()["parts"][0]["value"], 20.0);
    let b = plan.parameters_json()["parts"][0]["noise_scale"]
        .as_f64()
        .unwrap();
    assert!((b - 20.0).abs() < 1e-9);
}

#[test]
fn mean_with_laplace_splits_epsilon_evenly() {
    let plan = DpStatsPlan::new(&spec(
        "epsilon = 1.0",
        "statistic = \"mean\"\ncolumn = \"x\"\nlower = 0.0\nupper = 100.0",
    ))
    .unwrap();
    let events = plan.events();
    assert_eq!(events.len(), 2);
    let total: f64 = events.iter().map(|c| 1.0 / laplace_multiplier(c)).sum();
    assert!(
        (total - 1.0).abs() < 1e-9 && total <= 1.0 + 1e-12,
        "{total}"
    );
}

#[test]
fn gaussian_is_calibrated_with_pld_at_the_job_delta() {
    for (stat, params) in [
        ("count", "statistic = \"count\""),
        (
            "mean",
            "statistic = \"mean\"\ncolumn = \"x\"\nlower = 0.0\nupper = 10.0",
        ),
        (
            "histogram",
            "statistic = \"histogram\"\ncolumn = \"x\"\nlower = 0.0\nupper = 10.0\nbins = [0.0, 5.0, 10.0]",
        ),
    ] {
        let plan = DpStatsPlan::new(&spec("epsilon = 1.0\ndelta = 1e-6", params)).unwrap();
        assert_eq!(plan.noise(), NoiseKind::Gaussian);
        let events = plan.events();
        let eps = PldAccountant::default().epsilon(&events, 1e-6).unwrap();
        assert!(eps <= 1.0 && eps > 0.99, "{stat}: {eps}");
        assert!(
            events
                .iter()
                .all(|c| matches!(c.event, PrivacyEvent::Gaussian { .. }))
        );
        // σ = z·Δ₂ for each part.
        let p = plan.parameters_json();
        let s = plan.sensitivity_json();
        for (part, sens) in p["parts"]
            .as_array()
            .unwrap()
            .iter()
            .zip(s["parts"].as_array().unwrap())
        {
            let sigma = part["noise_scale"].as_f64().unwrap();
            let delta2 = sens["value"].as_f64().unwrap();
            let PrivacyEvent::Gaussian { noise_multiplier } = events[0].event else {
                unreachable!()
            };
            assert!(
                (sigma / delta2 - noise_multiplier).abs() < 1e-6 * noise_multiplier,
                "{stat}"
            );
        }
    }
}

#[test]
fn bad_params_are_refused_before_any_data() {
    let s = spec("epsilon = 1.0", "statistic = \"count\"");
    let mut broken = s.clone();
    broken.params = serde_json::json!({ "statistic": "sum" });
    assert!(matches!(
        DpStatsPlan::new(&broken),
        Err(StatsError::Spec(_))
    ));
    // Bounds so wide that the noise scale leaves the samplers' range are refused too.
    let huge = spec(
        "epsilon = 1.0",
        "statistic = \"sum\"\ncolumn = \"x\"\nlower = 0.0\nupper = 1e300",
    );
    assert!(matches!(
        DpStatsPlan::new(&huge),
        Err(StatsError::Privacy(_))
    ));
}

#[test]
fn aggregate_clamps_bins_and_refuses_non_finite() {
    let plan = DpStatsPlan::new(&spec(
        "epsilon = 1.0",
        "statistic = \"histogram\"\ncolumn = \"age\"\nlower = 0.0\nupper = 120.0\nbins = [0.0, 18.0, 65.0, 120.0]",
    ))
    .unwrap();
    // 150 clamps to 120 (last bin), -3 clamps to 0 (first bin).
    let agg = plan.aggregate(&[10.0, 30.0, 70.0, 150.0, -3.0]).unwrap();
    assert_eq!(format!("{agg:?}"), "ExactAggregate { .. }");
    let mut rng = SimulationRng::seeded_insecure(1);
    let r = plan.release(agg, &mut rng).unwrap();
    let h = r.histogram.unwrap();
    assert_eq!(h.len(), 3);
    let expected = [2.0, 1.0, 2.0];
    for (v, e) in h.iter().zip(expected) {
        assert!((v.value - e).abs() < 30.0 * v.noise_std, "{v:?}");
        assert!((v.noise_std - 1.0 * std::f64::consts::SQRT_2).abs() < 1e-9);
    }
    assert!(matches!(
        plan.aggregate(&[1.0, f64::NAN]),
        Err(StatsError::NonFinite(_))
    ));
    assert!(matches!(
        plan.aggregate(&[f64::INFINITY]),
        Err(StatsError::NonFinite(_))
    ));
}

#[test]
fn seeded_releases_are_reproducible_and_unbiased_with_the_stated_std() {
    let plan = DpStatsPlan::new(&spec(
        "epsilon = 0.5",
        "statistic = \"mean\"\ncolumn = \"x\"\nlower = 0.0\nupper = 10.0",
    ))
    .unwrap();
    let data: Vec<f64> = (0..1000).map(|i| (i % 10) as f64).collect(); // mean 4.5
    let one = |seed| {
        plan.release(
            plan.aggregate(&data).unwrap(),
            &mut SimulationRng::seeded_insecure(seed),
        )
        .unwrap()
    };
    assert_eq!(one(7), one(7));
    assert_ne!(one(7), one(8));

    let mut rng = SimulationRng::seeded_insecure(9);
    let n = 4000;
    let (mut counts, mut sums) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let r = plan
            .release(plan.aggregate(&data).unwrap(), &mut rng)
            .unwrap();
        counts.push(r.count.unwrap());
        sums.push(r.sum.unwrap());
    }
    for (vals, exact) in [(&counts, 1000.0), (&sums, 4500.0)] {
        let mean = vals.iter().map(|v| v.value).sum::<f64>() / n as f64;
        let var = vals.iter().map(|v| (v.value - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let stated = vals[0].noise_std;
        assert!(
            (mean - exact).abs() < 5.0 * stated / (n as f64).sqrt(),
            "{mean} vs {exact}"
        );
        assert!(
            (var.sqrt() / stated - 1.0).abs() < 0.1,
            "{} vs {stated}",
            var.sqrt()
        );
    }
    // Count std: b = 1/(ε/2) = 4, std = 4√2; sum std: b = 10/(ε/2) = 40.
    assert!((counts[0].noise_std - 4.0 * 2f64.sqrt()).abs() < 1e-9);
    assert!((sums[0].noise_std - 40.0 * 2f64.sqrt()).abs() < 1e-9);
}

#[test]
fn release_json_round_trips_and_carries_no_exact_numbers() {
    let plan = DpStatsPlan::new(&spec("epsilon = 1.0", "statistic = \"count\"")).unwrap();
    let r = plan
        .release(
            plan.aggregate(&[0.0; 42]).unwrap(),
            &mut SimulationRng::seeded_insecure(3),
        )
        .unwrap();
    let json = r.to_json();
    let text = String::from_utf8(json.clone()).unwrap();
    assert!(
        text.contains("\"statistic\":\"count\"") && text.contains("\"noise_std\""),
        "{text}"
    );
    assert_ne!(
        r.count.unwrap().value,
        42.0,
        "the exact count must not be released"
    );
    assert_eq!(DpStatsRelease::from_json(&json).unwrap(), r);
    assert!(DpStatsRelease::from_json(br#"{"statistic":"count"}"#).is_err());
}

fn release(
    stat: Statistic,
    count: Option<(f64, f64)>,
    sum: Option<(f64, f64)>,
    hist: Option<Vec<(f64, f64)>>,
) -> DpStatsRelease {
    let nv = |(value, noise_std): (f64, f64)| NoisyValue { value, noise_std };
    DpStatsRelease {
        statistic: stat,
        mechanism: NoiseKind::Laplace,
        epsilon: 1.0,
        delta: None,
        column: Some("x".into()),
        lower: Some(0.0),
        upper: Some(10.0),
        max_rows_per_unit: 1,
        bins: hist
            .as_ref()
            .map(|h| (0..=h.len()).map(|i| i as f64).collect()),
        count: count.map(nv),
        sum: sum.map(nv),
        mean: None,
        histogram: hist.map(|h| h.into_iter().map(nv).collect()),
    }
}

#[test]
fn pooling_adds_counts_sums_and_bins_and_their_variances() {
    let a = release(Statistic::Count, Some((100.0, 3.0)), None, None);
    let b = release(Statistic::Count, Some((50.0, 4.0)), None, None);
    let p = pool(&[a, b]).unwrap();
    assert_eq!(p.sites, 2);
    assert_eq!(
        p.count,
        Some(NoisyValue {
            value: 150.0,
            noise_std: 5.0
        })
    );
    assert!(p.sum.is_none() && p.mean.is_none());

    let a = release(
        Statistic::Histogram,
        None,
        None,
        Some(vec![(1.0, 3.0), (2.0, 3.0)]),
    );
    let b = release(
        Statistic::Histogram,
        None,
        None,
        Some(vec![(10.0, 4.0), (20.0, 4.0)]),
    );
    let p = pool(&[a, b]).unwrap();
    let h = p.histogram.unwrap();
    assert_eq!(
        h[0],
        NoisyValue {
            value: 11.0,
            noise_std: 5.0
        }
    );
    assert_eq!(
        h[1],
        NoisyValue {
            value: 22.0,
            noise_std: 5.0
        }
    );
}

#[test]
fn pooled_mean_is_pooled_sum_over_pooled_count_with_delta_method_std() {
    let a = release(
        Statistic::Mean,
        Some((100.0, 3.0)),
        Some((500.0, 30.0)),
        None,
    );
    let b = release(
        Statistic::Mean,
        Some((300.0, 4.0)),
        Some((900.0, 40.0)),
        None,
    );
    let p = pool(&[a, b]).unwrap();
    let (s, c) = (1400.0, 400.0);
    let m = p.mean.unwrap();
    assert!((m.value - s / c).abs() < 1e-12);
    let expected = ((50.0 / c).powi(2) + (s * 5.0 / (c * c)).powi(2)).sqrt();
    assert!(
        (m.noise_std - expected).abs() < 1e-12,
        "{} vs {expected}",
        m.noise_std
    );

    // Monte Carlo check of the delta method: simulate the noise around true S, C.
    let mut rng = SimulationRng::seeded_insecure(5);
    let mut draws = vec![0.0; 2];
    let mut ratios = Vec::new();
    for _ in 0..20_000 {
        draws.copy_from_slice(&[0.0, 0.0]);
        crate::privacy::noise::add_gaussian_f64(&mut rng, &mut draws, 1.0).unwrap();
        ratios.push((s + 50.0 * draws[0]) / (c + 5.0 * draws[1]));
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    let sd = (ratios.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / ratios.len() as f64).sqrt();
    assert!((sd / expected - 1.0).abs() < 0.05, "{sd} vs {expected}");

    // A non-positive pooled count gives no mean rather than a nonsense one.
    let z = release(Statistic::Mean, Some((-5.0, 3.0)), Some((10.0, 3.0)), None);
    assert!(pool(&[z]).unwrap().mean.is_none());
}

#[test]
fn pooling_refuses_mismatched_or_non_finite_releases() {
    let a = release(Statistic::Count, Some((1.0, 1.0)), None, None);
    let b = release(Statistic::Sum, None, Some((1.0, 1.0)), None);
    assert!(matches!(
        pool(&[a.clone(), b]),
        Err(StatsError::Mismatch(_))
    ));
    let mut c = a.clone();
    c.count = Some(NoisyValue {
        value: f64::NAN,
        noise_std: 1.0,
    });
    assert!(matches!(
        pool(&[a.clone(), c]),
        Err(StatsError::NonFinite(_))
    ));
    let h1 = release(Statistic::Histogram, None, None, Some(vec![(1.0, 1.0)]));
    let h2 = release(
        Statistic::Histogram,
        None,
        None,
        Some(vec![(1.0, 1.0), (1.0, 1.0)]),
    );
    assert!(matches!(pool(&[h1, h2]), Err(StatsError::Mismatch(_))));
    assert!(pool(&[]).is_err());
}

#[test]
fn bounding_then_release_end_to_end() {
    let plan = DpStatsPlan::new(&spec(
        "epsilon = 1.0",
        "statistic = \"count\"\nmax_rows_per_unit = 2",
    ))
    .unwrap();
    let mut rng = SimulationRng::seeded_insecure(11);
    // Unit "a" has 10 rows, "b" 1: at most 2 + 1 are counted.
    let rows: Vec<(&str, f64)> = std::iter::repeat_n(("a", 0.0), 10)
        .chain([("b", 0.0)])
        .collect();
    let kept = bound_contributions(rows, 2, &mut rng);
    assert_eq!(kept.len(), 3);
    let r = plan
        .release(plan.aggregate(&kept).unwrap(), &mut rng)
        .unwrap();
    assert!((r.count.unwrap().value - 3.0).abs() < 40.0);
}

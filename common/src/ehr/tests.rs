use super::*;

#[test]
fn the_builder_groups_sorts_and_deduplicates() {
    let mut b = TimelineBuilder::new();
    b.add("p2", 10, "ICD10CM", "E11.9", Modality::Code);
    b.add("p1", 5, "LOINC", "4548-4", Modality::Code);
    b.add("p2", 3, "CUI", "C0011849", Modality::Note);
    b.add("p2", 10, "ICD10CM", "E11.9", Modality::Code);
    b.add("p1", 5, "ICD10CM", "E11.9", Modality::Code);
    assert_eq!(b.len(), 5);
    let t = b.finish();
    assert_eq!(t.patients(), 2);
    assert_eq!(t.concepts.len(), 3);
    let p2: Vec<i32> = t.patient(0).iter().map(|e| e.day).collect();
    assert_eq!(p2, vec![3, 10], "p2 first seen, sorted, duplicate dropped");
    assert_eq!(t.patient(1).len(), 2);
    let s = t.summary();
    assert_eq!(s.events, 4);
    assert_eq!(s.modalities[0].concepts, 2);
    assert_eq!(s.modalities[1].events, 1);
    assert_eq!((s.first_day, s.last_day), (Some(3), Some(10)));
}

#[test]
fn an_empty_builder_has_no_patients() {
    let t = TimelineBuilder::new().finish();
    assert_eq!(t.patients(), 0);
    assert_eq!(t.iter().count(), 0);
}

#[test]
fn dates_parse_as_days_since_the_epoch() {
    assert_eq!(parse_day("1970-01-01"), Some(0));
    assert_eq!(parse_day("2015-01-01"), Some(16_436));
    assert_eq!(parse_day("2020-02-29T10:00:00Z"), Some(18_321));
    assert_eq!(parse_day("2021-03-04 10:00"), Some(18_690));
    for day in [-1000, 0, 16_436, 20_000] {
        let iso = crate::synth::ehr::omop::iso_date(day);
        assert_eq!(parse_day(&iso), Some(day), "{iso}");
    }
    for bad in [
        "",
        "2021-02-29",
        "2021-13-01",
        "21-01-01",
        "2021/01/01",
        "2021-01-01X",
    ] {
        assert_eq!(parse_day(bad), None, "{bad}");
    }
}

mod cooccurrence {
    use super::super::cooccur::*;
    use super::super::*;

    #[test]
    fn packed_indices_enumerate_the_strict_upper_triangle() {
        let n = 7;
        let mut seen = vec![false; packed_len(n)];
        let mut expected = 0;
        for i in 0..n {
            for j in i + 1..n {
                let k = packed_index(n, i, j);
                assert_eq!(k, expected, "row-major order");
                assert!(!seen[k]);
                seen[k] = true;
                expected += 1;
            }
        }
        assert!(seen.iter().all(|s| *s));
    }

    fn timelines(rows: &[(&str, i32, &str)]) -> Timelines {
        let mut b = TimelineBuilder::new();
        for &(p, day, code) in rows {
            b.add(p, day, "X", code, Modality::Code);
        }
        b.finish()
    }

    fn identity(t: &Timelines) -> Vec<u32> {
        (0..t.concepts.len() as u32).collect()
    }

    fn params(window_days: u32, max_pairs_per_patient: usize) -> CooccurrenceParams {
        CooccurrenceParams {
            window_days,
            max_pairs_per_patient,
        }
    }

    #[test]
    fn concepts_co_occur_within_a_window_once_per_patient() {
        // Concepts: a=0, b=1, c=2. Windows of 30 days from each patient's first event.
        let t = timelines(&[
            ("p", 0, "a"),
            ("p", 29, "b"),
            ("p", 30, "b"),
            ("p", 40, "c"),
            ("p", 45, "c"),
            ("p", 100, "a"),
            ("p", 101, "b"),
            ("q", 5, "a"),
            ("q", 6, "c"),
        ]);
        let c = count(&t, &identity(&t), 3, params(30, 10), 1, &mut |_| {});
        // p: {a,b} (window 0, and again in window 3: counted once), {b,c} (window 1).
        // q: {a,c}.
        assert_eq!(c.counts[packed_index(3, 0, 1)], 1);
        assert_eq!(c.counts[packed_index(3, 1, 2)], 1);
        assert_eq!(c.counts[packed_index(3, 0, 2)], 1);
        assert_eq!(c.patients_with_pairs, 2);
        assert_eq!(c.patients_capped, 0);
        // One long window puts everything of p together.
        let c = count(&t, &identity(&t), 3, params(365, 10), 1, &mut |_| {});
        assert_eq!(c.counts, vec![1, 2, 1], "ab: p; ac: p and q; bc: p");
    }

    #[test]
    fn concepts_outside_the_vocabulary_are_ignored() {
        let t = timelines(&[("p", 0, "a"), ("p", 0, "b"), ("p", 0, "c")]);
        // Vocabulary: c → 0, a → 1; b is out.
        let map = vec![1, NOT_IN_VOCABULARY, 0];
        let c = count(&t, &map, 2, params(30, 10), 1, &mut |_| {});
        assert_eq!(c.counts, vec![1]);
    }

    #[test]
    fn one_patient_changes_the_counts_by_at_most_the_bound() {
        // Patient "z" (last, so the others' samples are unchanged) has 45 distinct pairs.
        let mut rows: Vec<(String, i32, String)> = Vec::new();
        for p in 0..20 {
            for k in 0..6 {
                rows.push((format!("p{p}"), k, format!("c{}", (p + k) % 12)));
            }
        }
        let with_z: Vec<(String, i32, String)> = rows
            .iter()
            .cloned()
            .chain((0..10).map(|k| ("z".to_string(), 3, format!("c{k}"))))
            .collect();
        let build = |rows: &[(String, i32, String)]| {
            let mut b = TimelineBuilder::new();
            for k in 0..12 {
                b.concept("X", &format!("c{k}"), Modality::Code);
            }
            for (p, d, c) in rows {
                b.add(p, *d, "X", c, Modality::Code);
            }
            b.finish()
        };
        let (a, b) = (build(&rows), build(&with_z));
        for m in [1, 7, 45, 100] {
            let ca = count(&a, &identity(&a), 12, params(2, m), 9, &mut |_| {});
            let cb = count(&b, &identity(&b), 12, params(2, m), 9, &mut |_| {});
            let diff: Vec<i64> = ca
                .counts
                .iter()
                .zip(&cb.counts)
                .map(|(x, y)| i64::from(*y) - i64::from(*x))
                .collect();
            assert!(diff.iter().all(|d| *d == 0 || *d == 1), "{diff:?}");
            let changed = diff.iter().filter(|d| **d == 1).count();
            assert_eq!(changed, m.min(45), "m = {m}");
            assert_eq!(cb.patients_capped - ca.patients_capped, u64::from(m < 45));
        }
    }

    #[test]
    fn concept_counts_are_bounded_per_patient() {
        let t = timelines(&[
            ("p", 0, "a"),
            ("p", 9, "a"),
            ("p", 1, "b"),
            ("p", 2, "c"),
            ("q", 0, "a"),
        ]);
        assert_eq!(concept_patients(&t, 10, 1), vec![2, 1, 1]);
        let bounded = concept_patients(&t, 2, 1);
        assert_eq!(bounded.iter().sum::<u32>(), 3, "p keeps 2 concepts, q 1");
    }
}

mod vocabulary {
    use super::super::vocab::*;

    fn release(concepts: &[(&str, f64)]) -> VocabularyRelease {
        VocabularyRelease {
            noise_std: 1.0,
            threshold: 2.0,
            max_concepts_per_patient: 5,
            concepts: concepts
                .iter()
                .map(|(c, n)| ReleasedConcept {
                    system: "X".into(),
                    code: c.to_string(),
                    count: *n,
                })
                .collect(),
        }
    }

    #[test]
    fn top_k_sums_the_sites_and_breaks_ties_by_key() {
        let a = release(&[("a", 10.0), ("b", 5.0), ("c", 3.0)]);
        let b = release(&[("c", 9.0), ("d", 15.0)]);
        let top = select_top_k(&[&a, &b], 3);
        let codes: Vec<&str> = top.iter().map(|(k, _)| k.1.as_str()).collect();
        assert_eq!(codes, ["d", "c", "a"]);
        assert_eq!(top[1].1, 12.0);
        assert_eq!(select_top_k(&[&a], 10).len(), 3);
        let tie = release(&[("z", 4.0), ("y", 4.0)]);
        let codes: Vec<String> = select_top_k(&[&tie], 2)
            .into_iter()
            .map(|(k, _)| k.1)
            .collect();
        assert_eq!(codes, ["y", "z"]);
    }

    #[test]
    fn releases_are_checked_when_received() {
        let good = release(&[("a", 10.0)]);
        assert_eq!(VocabularyRelease::from_json(&good.to_json()).unwrap(), good);
        let below = release(&[("a", 1.0)]);
        assert!(VocabularyRelease::from_json(&below.to_json()).is_err());
        let twice = release(&[("a", 10.0), ("a", 11.0)]);
        assert!(VocabularyRelease::from_json(&twice.to_json()).is_err());
        assert!(VocabularyRelease::from_json(b"{}").is_err());
    }

    #[test]
    fn concept_lists_parse_with_an_optional_header_and_name_bad_lines() {
        let list =
            parse_concept_list("system,code\nICD10CM,E11.9\n\nLOINC, 4548-4 ,extra\n").unwrap();
        assert_eq!(list[1], ("LOINC".to_string(), "4548-4".to_string()));
        let err = parse_concept_list("ICD10CM,E11.9\nICD10CM\n").unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
        let err = parse_concept_list("A,1\nA,1\n").unwrap_err();
        assert!(err.contains("twice"), "{err}");
        assert!(parse_concept_list("system,code\n").is_err());
        let idx = vocabulary_index(&list[..1], &[list[1].clone(), list[0].clone()]);
        assert_eq!(idx, vec![1]);
    }
}

mod plan {
    use super::super::cooccur::Cooccurrence;
    use super::super::plan::*;
    use crate::privacy::AccountantKind;
    use crate::privacy::noise::SimulationRng;
    use crate::spec::JobSpec;

    fn spec(params: &str) -> JobSpec {
        JobSpec::parse_toml(
            &format!(
                "kind = \"pmi_svd\"\nname = \"e\"\ndataset = \"ehr\"\n[privacy]\nepsilon = 1.0\ndelta = 1e-6\n[params]\n{params}"
            ),
            "t",
        )
        .unwrap()
    }

    #[test]
    fn both_releases_together_meet_the_target() {
        for params in [
            "",
            "vocabulary = \"c.csv\"\n",
            "selection_share = 0.3\nmax_pairs_per_patient = 50\n",
        ] {
            let plan = PmiPlan::new(&spec(params)).unwrap();
            let events = plan.all_events();
            for kind in [AccountantKind::Pld, AccountantKind::Rdp] {
                let eps = kind.build().epsilon(&events, 1e-6).unwrap();
                if kind == AccountantKind::Pld {
                    assert!(eps <= 1.0 + 1e-6, "{params:?}: ε {eps}");
                    assert!(eps > 0.97, "{params:?}: calibration is loose: ε {eps}");
                } else {
                    assert!(eps >= 1.0 - 1e-3, "RDP is never tighter than PLD: {eps}");
                }
            }
        }
        let with = PmiPlan::new(&spec("")).unwrap();
        assert_eq!(with.rounds(), 2);
        let s = with.selection().unwrap();
        assert!(s.threshold > 1.0 + 4.0 * s.mechanism.sigma(), "{s:?}");
        assert_eq!(
            PmiPlan::new(&spec("vocabulary = \"c.csv\"\n"))
                .unwrap()
                .rounds(),
            1
        );
    }

    #[test]
    fn the_vocabulary_release_keeps_only_counts_above_the_threshold() {
        let plan = PmiPlan::new(&spec("max_concepts_per_patient = 4\n")).unwrap();
        let concepts: Vec<(String, String)> =
            (0..3).map(|i| ("X".to_string(), format!("c{i}"))).collect();
        let mut rng = SimulationRng::seeded_insecure(3);
        let r = plan
            .release_vocabulary(&concepts, &[1_000_000, 1, 0], &mut rng)
            .unwrap();
        assert_eq!(r.concepts.len(), 1);
        assert_eq!(r.concepts[0].code, "c0");
        assert!((r.concepts[0].count - 1e6).abs() < 10.0 * r.noise_std);
    }

    #[test]
    fn counts_releases_round_trip_and_bad_bytes_are_refused() {
        let plan = PmiPlan::new(&spec("vocabulary = \"c.csv\"\n")).unwrap();
        let exact = Cooccurrence {
            n: 4,
            counts: vec![100, 0, 3, 7, 0, 1],
            patients_with_pairs: 5,
            patients_capped: 0,
        };
        let mut rng = SimulationRng::seeded_insecure(3);
        let r = plan.release_counts(exact, &mut rng).unwrap();
        assert_eq!(r.counts.len(), 6);
        assert!((r.header.noise_std - plan.counts_mechanism().sigma()).abs() < 1e-12);
        let bytes = r.to_bytes();
        assert_eq!(CountsRelease::from_bytes(&bytes).unwrap(), r);
        assert!(CountsRelease::from_bytes(&bytes[..bytes.len() - 4]).is_err());
        assert!(CountsRelease::from_bytes(b"SILOPMI0....").is_err());
        let mut nan = bytes.clone();
        let end = nan.len();
        nan[end - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(CountsRelease::from_bytes(&nan).is_err());
    }
}

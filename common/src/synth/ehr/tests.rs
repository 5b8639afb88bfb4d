//! Tests of the synthetic EHR generator: reproducibility, site differences, ground truth
//! consistency, and that related concepts really co-occur.

use std::collections::{HashMap, HashSet};

use super::omop::{iso_date, tables};
use super::*;

fn small(seed: u64) -> EhrData {
    generate(
        EhrConfig {
            seed,
            ..EhrConfig::default()
        },
        2,
        300,
    )
}

#[test]
fn reproducible_with_seed() {
    let a = small(7);
    assert_eq!(a, small(7));
    let b = small(8);
    assert_ne!(a.sites[0].events, b.sites[0].events);
    assert_ne!(a.vocabulary, b.vocabulary);
    // A site does not depend on how many sites were generated with it.
    let g = Generator::new(EhrConfig {
        seed: 7,
        ..EhrConfig::default()
    });
    assert_eq!(g.site(1, 300), a.sites[1]);
}

#[test]
fn sites_differ_in_case_mix_and_coding() {
    let data = generate(EhrConfig::default(), 2, 2000);
    let n = data.vocabulary.concepts.len();
    let freq = |s: &SiteData| {
        let mut f = vec![0.0; n];
        for e in &s.events {
            f[e.concept as usize] += 1.0;
        }
        let total: f64 = f.iter().sum();
        f.into_iter().map(|x| x / total).collect::<Vec<f64>>()
    };
    let (f0, f1) = (freq(&data.sites[0]), freq(&data.sites[1]));
    let tv: f64 = f0.iter().zip(&f1).map(|(a, b)| (a - b).abs()).sum::<f64>() / 2.0;
    assert!(tv > 0.1, "sites too similar: total variation {tv}");
    // Person ids are unique across sites.
    let ids: HashSet<u64> = data
        .sites
        .iter()
        .flat_map(|s| s.persons.iter().map(|p| p.person_id))
        .collect();
    assert_eq!(ids.len(), 4000);
}

#[test]
fn pairs_and_dictionary_reference_existing_concepts() {
    let vocab = small(3).vocabulary;
    let known: HashSet<(String, String)> = vocab
        .concept_csv()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 5, "{l}");
            (f[3].to_string(), f[4].to_string())
        })
        .collect();
    assert_eq!(known.len(), vocab.concepts.len(), "codes are unique");
    let pairs = vocab.pairs_csv();
    // One condition-mention pair per cluster.
    let code_note = pairs.lines().filter(|l| l.ends_with(",code_note")).count();
    assert_eq!(code_note, EhrConfig::default().clusters);
    let mut relations = HashSet::new();
    for l in pairs.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f.len(), 5, "{l}");
        assert!(known.contains(&(f[0].into(), f[1].into())), "{l}");
        assert!(known.contains(&(f[2].into(), f[3].into())), "{l}");
        relations.insert(f[4].to_string());
    }
    for r in [
        "same_cluster_code_code",
        "code_note",
        "same_cluster_code_note",
        "same_cluster_note_note",
    ] {
        assert!(relations.contains(r), "no {r} pairs");
    }
    for l in vocab.dictionary_csv().lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f[1], "CUI");
        assert!(known.contains(&(f[1].into(), f[2].into())), "{l}");
    }
}

#[test]
fn related_concepts_co_occur_more_than_random_ones() {
    let data = generate(EhrConfig::default(), 1, 3000);
    let site = &data.sites[0];
    let mut per_patient: HashMap<u64, HashSet<u32>> = HashMap::new();
    for e in &site.events {
        per_patient
            .entry(e.person_id)
            .or_default()
            .insert(e.concept);
    }
    let n = per_patient.len() as f64;
    let lift = |a: usize, b: usize| {
        let (mut ca, mut cb, mut both) = (0.0, 0.0, 0.0);
        for set in per_patient.values() {
            let (ha, hb) = (set.contains(&(a as u32)), set.contains(&(b as u32)));
            ca += f64::from(u8::from(ha));
            cb += f64::from(u8::from(hb));
            both += f64::from(u8::from(ha && hb));
        }
        if ca == 0.0 || cb == 0.0 {
            1.0
        } else {
            both * n / (ca * cb)
        }
    };
    let pairs = data.vocabulary.related_pairs();
    let related: f64 = pairs.iter().map(|p| lift(p.a, p.b)).sum::<f64>() / pairs.len() as f64;
    let concepts = data.vocabulary.concepts.len();
    let unrelated: Vec<f64> = (0..pairs.len())
        .map(|i| ((i * 7919) % concepts, (i * 104_729 + 13) % concepts))
        .filter(|(a, b)| {
            let c = &data.vocabulary.concepts;
            a != b && (c[*a].cluster.is_none() || c[*a].cluster != c[*b].cluster)
        })
        .map(|(a, b)| lift(a, b))
        .collect();
    let unrelated = unrelated.iter().sum::<f64>() / unrelated.len() as f64;
    assert!(
        related > 1.5 * unrelated,
        "related lift {related} vs unrelated {unrelated}"
    );
}

#[test]
fn omop_tables_hold_every_event() {
    let data = small(5);
    let site = &data.sites[0];
    let t = tables(&data.vocabulary, site);
    let names: Vec<&str> = t.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "person.csv",
            "condition_occurrence.csv",
            "drug_exposure.csv",
            "measurement.csv",
            "note.csv",
            "note_nlp.csv",
            "concept.csv"
        ]
    );
    let rows = |name: &str| {
        t.iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .lines()
            .count()
            - 1
    };
    assert_eq!(rows("person.csv"), 300);
    let events = rows("condition_occurrence.csv")
        + rows("drug_exposure.csv")
        + rows("measurement.csv")
        + rows("note_nlp.csv");
    assert_eq!(events, site.events.len());
    assert!(
        t[1].1
            .starts_with("condition_occurrence_id,person_id,condition_concept_id,")
    );
    assert!(rows("note.csv") > 0 && rows("note.csv") < rows("note_nlp.csv"));
}

#[test]
fn iso_dates() {
    assert_eq!(iso_date(0), "1970-01-01");
    assert_eq!(iso_date(16_436), "2015-01-01");
    assert_eq!(iso_date(18_321), "2020-02-29");
    assert_eq!(iso_date(-1), "1969-12-31");
}

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
    for bad in ["", "2021-02-29", "2021-13-01", "21-01-01", "2021/01/01", "2021-01-01X"] {
        assert_eq!(parse_day(bad), None, "{bad}");
    }
}

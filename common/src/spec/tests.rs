use super::*;

const HISTOGRAM: &str = r#"
kind = "dp_stats"
name = "age-histogram"
dataset = "visits"
sites = "all"
min_sites = 2
[privacy]
epsilon = 0.5
delta = 1e-6
[params]
statistic = "histogram"
column = "age"
lower = 0.0
upper = 120.0
bins = [0.0, 18.0, 40.0, 65.0, 120.0]
"#;

#[test]
fn design_example_parses() {
    let spec = JobSpec::parse_toml(HISTOGRAM, "spec.toml").unwrap();
    assert_eq!(spec.kind, JobKind::DpStats);
    assert_eq!(spec.min_sites, 2);
    assert!(spec.sites.includes("anyone"));
    let params = DpStatsParams::from_spec(&spec).unwrap();
    assert_eq!(params.statistic, Statistic::Histogram);
    assert_eq!(params.noise_kind(&spec), NoiseKind::Gaussian);
    let back = JobSpec::from_json(&spec.to_json(), "wire").unwrap();
    assert_eq!(back, spec);
}

#[test]
fn every_problem_is_reported_with_its_field() {
    let bad = HISTOGRAM
        .replace("epsilon = 0.5", "epsilon = -1.0")
        .replace(
            "bins = [0.0, 18.0, 40.0, 65.0, 120.0]",
            "bins = [0.0, 40.0, 18.0]",
        )
        .replace("min_sites = 2", "min_sites = 0");
    let err = JobSpec::parse_toml(&bad, "spec.toml").unwrap_err();
    let fields: Vec<_> = err.issues.iter().map(|i| i.field.as_str()).collect();
    assert!(fields.contains(&"privacy.epsilon"), "{err}");
    assert!(fields.contains(&"params.bins"), "{err}");
    assert!(fields.contains(&"min_sites"), "{err}");
    assert!(err.to_string().starts_with("spec.toml: "), "{err}");
}

#[test]
fn missing_field_and_unknown_kind_are_refused() {
    let err = JobSpec::parse_toml(&HISTOGRAM.replace("dataset = \"visits\"\n", ""), "s.toml")
        .unwrap_err();
    assert!(err.to_string().contains("dataset"), "{err}");
    let err =
        JobSpec::parse_toml(&HISTOGRAM.replace("dp_stats", "dp_magic"), "s.toml").unwrap_err();
    assert!(err.to_string().contains("dp_magic"), "{err}");
    let err = JobSpec::parse_toml("kind = ", "s.toml").unwrap_err();
    assert_eq!(err.issues[0].field, "kind", "{err}");
    assert!(err.to_string().contains("line 1"), "{err}");
}

#[test]
fn gaussian_without_delta_is_refused() {
    let spec = HISTOGRAM
        .replace("delta = 1e-6\n", "")
        .replace("[params]\n", "[params]\nmechanism = \"gaussian\"\n");
    let err = JobSpec::parse_toml(&spec, "s.toml").unwrap_err();
    assert!(
        err.issues.iter().any(|i| i.field == "privacy.delta"),
        "{err}"
    );
    let laplace = HISTOGRAM.replace("delta = 1e-6\n", "");
    let spec = JobSpec::parse_toml(&laplace, "s.toml").unwrap();
    assert_eq!(
        DpStatsParams::from_spec(&spec).unwrap().noise_kind(&spec),
        NoiseKind::Laplace
    );
}

#[test]
fn misspelt_and_mistyped_fields_are_named_with_their_line() {
    let err = JobSpec::parse_toml(
        &HISTOGRAM.replace("sites = \"all\"", "sitez = \"all\""),
        "s.toml",
    )
    .unwrap_err();
    assert_eq!(err.issues[0].field, "sitez", "{err}");
    assert!(err.to_string().contains("unknown field"), "{err}");

    let err = JobSpec::parse_toml(
        &HISTOGRAM.replace("epsilon = 0.5", "epsilon = \"lots\""),
        "s.toml",
    )
    .unwrap_err();
    assert_eq!(err.issues[0].field, "privacy.epsilon", "{err}");
    assert!(err.to_string().contains("line 8"), "{err}");

    let err = JobSpec::parse_toml(
        &HISTOGRAM.replace("lower = 0.0", "lower = \"zero\""),
        "s.toml",
    )
    .unwrap_err();
    assert_eq!(err.issues[0].field, "params.lower", "{err}");

    let err = JobSpec::parse_toml(
        &HISTOGRAM.replace("column = \"age\"", "colum = \"age\""),
        "s.toml",
    )
    .unwrap_err();
    assert_eq!(err.issues[0].field, "params.colum", "{err}");

    let err = JobSpec::parse_toml("kind = \"dp_stats\"\nname = [", "s.toml").unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn a_pmi_svd_spec_takes_defaults_and_reports_bad_params() {
    let base = "kind = \"pmi_svd\"\nname = \"e\"\ndataset = \"ehr\"\n[privacy]\nepsilon = 1.0\ndelta = 1e-6\n";
    let spec = JobSpec::parse_toml(base, "s.toml").unwrap();
    let p = PmiSvdParams::from_spec(&spec).unwrap();
    assert_eq!(p.window_days, 30);
    assert_eq!(p.vocabulary_source(), Ok(VocabularySource::Top(2000)));
    let bad = format!(
        "{base}[params]\nwindow_days = 0\nvocabulary = \"top:many\"\nshift_k = -1.0\nselection_share = 1.0\n"
    );
    let err = JobSpec::parse_toml(&bad, "s.toml").unwrap_err();
    let fields: Vec<&str> = err.issues.iter().map(|i| i.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "params.window_days",
            "params.vocabulary",
            "params.shift_k",
            "params.selection_share"
        ],
        "{err}"
    );
    let typo = format!("{base}[params]\nwindow_dayz = 3\n");
    let err = JobSpec::parse_toml(&typo, "s.toml").unwrap_err();
    assert!(err.to_string().contains("window_dayz"), "{err}");
    assert!(err.to_string().contains("line 8"), "{err}");
    let no_delta = base.replace("delta = 1e-6\n", "");
    let err = JobSpec::parse_toml(&no_delta, "s.toml").unwrap_err();
    assert_eq!(err.issues[0].field, "privacy.delta");
    let file = format!("{base}[params]\nvocabulary = \"concepts.csv\"\ndim = 5000\n");
    let p = PmiSvdParams::from_spec(&JobSpec::parse_toml(&file, "s").unwrap()).unwrap();
    assert_eq!(
        p.vocabulary_source(),
        Ok(VocabularySource::File("concepts.csv".into()))
    );
    let small = format!("{base}[params]\nvocabulary = \"top:50\"\ndim = 50\n");
    let err = JobSpec::parse_toml(&small, "s").unwrap_err();
    assert_eq!(err.issues[0].field, "params.dim");
}

use super::*;
use crate::testutil::{Site, config_text};

fn no_env(_: &str) -> Option<String> {
    None
}

#[test]
fn the_standard_config_loads_with_paths_resolved_against_its_folder() {
    let site = Site::standard(4.0);
    let c = site.config();
    assert_eq!(c.name, "hospital-a");
    assert_eq!(c.data_dir, site.path().join("state"));
    assert_eq!(c.ledger_path(), site.path().join("state").join(LEDGER_FILE));
    assert_eq!(c.policy.allowed_kinds, vec![JobKind::DpStats]);
    assert_eq!(c.policy.accountant, AccountantKind::Pld);
    assert_eq!(c.policy.min_noise_multiplier, None);
    let d = c.dataset("visits").unwrap();
    assert_eq!(d.kind, DatasetKind::Csv);
    assert_eq!(
        d.path.as_deref(),
        Some(site.path().join("data/visits.csv").as_path())
    );
    assert_eq!((d.epsilon_budget, d.delta), (4.0, 1e-6));
}

#[test]
fn every_bad_field_is_reported_not_only_the_first() {
    let text = r#"
name = "bad name!"
coordinator = "http://10.1.2.3:7443"
data_dir = 5
insecure = true
colour = "blue"
[policy]
allowed_kinds = ["dp_stats", "sql"]
max_epsilon_per_job = -1
min_noise_multiplier = 0
accountant = "moments"
[[datasets]]
name = "visits"
kind = "csv"
path = "missing.csv"
privacy_unit = "person_id"
epsilon_budget = 0
delta = 2.0
[[datasets]]
name = "notes"
kind = "parquet"
privacy_unit = ""
epsilon_budget = 1.0
delta = 1e-6
"#;
    let site = Site::new(text);
    let err = SiteConfig::load_with_env(&site.config_path, no_env).unwrap_err();
    let fields: Vec<&str> = err.issues.iter().map(|i| i.field.as_str()).collect();
    for expected in [
        "colour",
        "name",
        "coordinator",
        "data_dir",
        "policy.allowed_kinds[1]",
        "policy.max_epsilon_per_job",
        "policy.min_noise_multiplier",
        "policy.accountant",
        "datasets[0].epsilon_budget",
        "datasets[0].delta",
        "datasets[0].path",
        "datasets[1].kind",
        "datasets[1].privacy_unit",
    ] {
        assert!(
            fields.contains(&expected),
            "missing {expected} in {fields:?}\n{err}"
        );
    }
    // Each line names the file and the field.
    let text = err.to_string();
    assert_eq!(text.lines().count(), err.issues.len());
    for line in text.lines() {
        assert!(
            line.starts_with(&site.config_path.display().to_string()),
            "{line}"
        );
    }
    assert!(
        text.contains("datasets[0].delta: 2: expected a number in (0, 1)"),
        "{text}"
    );
    assert!(text.contains("loopback"), "{text}");
}

#[test]
fn one_bad_field_is_one_line_naming_file_and_field() {
    let site = Site::new(&config_text(4.0, "").replace("delta = 1e-6", "delta = 0"));
    let err = SiteConfig::load_with_env(&site.config_path, no_env).unwrap_err();
    assert_eq!(err.issues.len(), 1, "{err}");
    let line = err.to_string();
    assert!(
        line.contains("site.toml: datasets[0].delta: 0: expected a number in (0, 1)"),
        "{line}"
    );
}

#[test]
fn toml_syntax_errors_name_the_line() {
    let site = Site::new("name = \"a\"\ncoordinator = \n");
    let err = SiteConfig::load_with_env(&site.config_path, no_env).unwrap_err();
    assert_eq!(err.issues.len(), 1);
    assert!(err.issues[0].field.starts_with("line 2"), "{err}");
    let missing = SiteConfig::load_with_env(&site.path().join("nope.toml"), no_env).unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("nope.toml: (file): cannot read"),
        "{missing}"
    );
}

#[test]
fn environment_overrides_top_level_keys_and_is_named_in_errors() {
    let site = Site::standard(4.0);
    let env = |k: &str| match k {
        "SILO_DATA_DIR" => Some("/var/lib/silo".to_string()),
        "SILO_NAME" => Some("hospital-b".to_string()),
        _ => None,
    };
    let c = SiteConfig::load_with_env(&site.config_path, env).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/var/lib/silo"));
    assert_eq!(c.name, "hospital-b");

    let env = |k: &str| (k == "SILO_COORDINATOR").then(|| "https://coord.example:7443".to_string());
    let err = SiteConfig::load_with_env(&site.config_path, env).unwrap_err();
    assert!(err.issues.iter().any(|i| i.field == "tls"), "{err}");

    let env = |k: &str| (k == "SILO_INSECURE").then(|| "maybe".to_string());
    let err = SiteConfig::load_with_env(&site.config_path, env).unwrap_err();
    assert!(
        err.to_string().contains("insecure (from SILO_INSECURE)"),
        "{err}"
    );
}

#[test]
fn plaintext_needs_insecure_and_https_needs_tls_files_that_parse() {
    let site = Site::new(&config_text(4.0, "").replace("insecure = true\n", ""));
    let err = SiteConfig::load_with_env(&site.config_path, no_env).unwrap_err();
    assert!(
        err.issues
            .iter()
            .any(|i| i.field == "coordinator" && i.message.contains("plaintext")),
        "{err}"
    );

    let text = config_text(4.0, "")
        .replace("http://127.0.0.1:9", "https://127.0.0.1:9")
        .replace(
            "insecure = true\n",
            "[tls]\nca = \"certs/ca.pem\"\ncert = \"certs/a.pem\"\nkey = \"certs/a.key\"\n",
        );
    // [tls] must come after top-level keys: move [policy] below it (it already is).
    let site = Site::new(&text);
    let err = SiteConfig::load_with_env(&site.config_path, no_env).unwrap_err();
    let fields: Vec<_> = err.issues.iter().map(|i| i.field.as_str()).collect();
    assert!(
        fields.contains(&"tls.ca") && fields.contains(&"tls.cert") && fields.contains(&"tls.key"),
        "{err}"
    );

    std::fs::create_dir_all(site.path().join("certs")).unwrap();
    for f in ["ca.pem", "a.pem", "a.key"] {
        std::fs::write(site.path().join("certs").join(f), "not a pem").unwrap();
    }
    let err = SiteConfig::load_with_env(&site.config_path, no_env).unwrap_err();
    assert!(
        err.issues
            .iter()
            .any(|i| i.field == "tls" && i.message.contains("PEM")),
        "{err}"
    );
}

#[test]
fn dataset_kinds_check_their_own_keys() {
    let text = format!(
        "{}\n[[datasets]]\nname = \"notes\"\nkind = \"fhir\"\npath = \"data\"\nprivacy_unit = \"Patient\"\nepsilon_budget = 1.0\ndelta = 1e-6\n\
         [[datasets]]\nname = \"pairs\"\nkind = \"pairs\"\nimage = \"data/visits.csv\"\nprivacy_unit = \"pair\"\nepsilon_budget = 1.0\ndelta = 1e-6\n\
         [[datasets]]\nname = \"visits\"\nkind = \"csv\"\npath = \"data/visits.csv\"\nprivacy_unit = \"p\"\nepsilon_budget = 1.0\ndelta = 1e-6\ndictionary = \"x.csv\"\n",
        config_text(4.0, "")
    );
    let site = Site::new(&text);
    let err = SiteConfig::load_with_env(&site.config_path, no_env).unwrap_err();
    let fields: Vec<_> = err.issues.iter().map(|i| i.field.as_str()).collect();
    assert!(fields.contains(&"datasets[1].dictionary"), "{err}");
    assert!(fields.contains(&"datasets[2].text"), "{err}");
    assert!(fields.contains(&"datasets[3].dictionary"), "{err}");
    assert!(
        fields.contains(&"datasets[3].name"),
        "duplicate name: {err}"
    );
}

//! The sample configs in `deploy/` stay valid: parsed from their real location, the only
//! problems reported are the certificate and data files that a deployment creates
//! (`silo ca issue`, `silo synth`), never a key, type or value error.

use std::path::PathBuf;

use silo_client::config::SiteConfig;

#[test]
fn deploy_site_configs_only_lack_the_files_a_deployment_creates() {
    let deploy = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    for site in ["a", "b", "c"] {
        let path = deploy.join(format!("site-{site}.toml"));
        let commented = std::fs::read_to_string(&path).unwrap();
        // The EHR blocks (`#> ` lines) must be valid once enabled, as the README's tour does.
        let enabled = commented.replace("\n#> ", "\n");
        for text in [&commented, &enabled] {
            let issues = match SiteConfig::parse(text, &path, |_| None) {
                Ok(_) => Vec::new(), // every file exists: fine too
                Err(e) => e.issues,
            };
            for issue in &issues {
                let file_field = [
                    "tls.ca",
                    "tls.cert",
                    "tls.key",
                    "datasets[0].path",
                    "datasets[1].path",
                    "datasets[1].dictionary",
                    "datasets[2].path",
                ]
                .contains(&issue.field.as_str());
                assert!(
                    file_field && issue.message.contains("expected an existing"),
                    "{}: {}: {}",
                    path.display(),
                    issue.field,
                    issue.message
                );
            }
        }
        let text = commented;
        assert!(text.contains(&format!("name = \"hospital-{site}\"")));
    }
}

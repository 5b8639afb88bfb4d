//! Job specs and the admin API calls the tests make (what `silo job …` and
//! `silo budget audit` do, minus the printing).

use serde_json::Value;
use silo_proto::admin_api_client::AdminApiClient;
use silo_proto::{
    BudgetAuditRequest, BudgetRow, JobRef, JobStatus, ListSitesRequest, SiteInfo, SiteTaskStatus,
    SubmitJobRequest,
};
use tonic::transport::Channel;

use crate::eventually;
use crate::sites::DATASET;

/// The admin API client type.
pub type Admin = AdminApiClient<Channel>;

/// A `dp_stats` spec builder; renders the TOML a researcher would write.
#[derive(Clone, Debug)]
pub struct DpStatsSpec {
    /// `name`.
    pub name: String,
    /// `params.statistic`: count | sum | mean.
    pub statistic: String,
    /// `privacy.epsilon`.
    pub epsilon: f64,
    /// `privacy.delta` (Gaussian noise when set, Laplace otherwise).
    pub delta: Option<f64>,
    /// `min_sites`.
    pub min_sites: u32,
    /// `sites`: `None` = "all".
    pub sites: Option<Vec<String>>,
    /// `round_timeout_seconds`.
    pub round_timeout_seconds: u64,
}

impl DpStatsSpec {
    /// The `statistic` of column `age` clamped to [0, 110], pure DP (Laplace) at `epsilon`,
    /// on all sites, `min_sites` 2, 60 s per round.
    pub fn new(name: &str, statistic: &str, epsilon: f64) -> DpStatsSpec {
        DpStatsSpec {
            name: name.into(),
            statistic: statistic.into(),
            epsilon,
            delta: None,
            min_sites: 2,
            sites: None,
            round_timeout_seconds: 60,
        }
    }

    /// With `privacy.delta` (Gaussian noise).
    pub fn delta(mut self, delta: f64) -> Self {
        self.delta = Some(delta);
        self
    }

    /// With another `min_sites`.
    pub fn min_sites(mut self, min_sites: u32) -> Self {
        self.min_sites = min_sites;
        self
    }

    /// On the listed sites only.
    pub fn sites(mut self, sites: &[&str]) -> Self {
        self.sites = Some(sites.iter().map(|s| s.to_string()).collect());
        self
    }

    /// With another `round_timeout_seconds`.
    pub fn round_timeout(mut self, seconds: u64) -> Self {
        self.round_timeout_seconds = seconds;
        self
    }

    /// The spec as TOML.
    pub fn toml(&self) -> String {
        let sites = match &self.sites {
            None => "\"all\"".to_string(),
            Some(names) => format!("{names:?}"),
        };
        let delta = self
            .delta
            .map(|d| format!("delta = {d:e}\n"))
            .unwrap_or_default();
        format!(
            "kind = \"dp_stats\"\n\
             name = \"{name}\"\n\
             dataset = \"{DATASET}\"\n\
             sites = {sites}\n\
             min_sites = {min_sites}\n\
             round_timeout_seconds = {timeout}\n\
             [privacy]\n\
             epsilon = {epsilon:?}\n\
             {delta}\
             [params]\n\
             statistic = \"{statistic}\"\n\
             column = \"age\"\n\
             lower = 0.0\n\
             upper = 110.0\n",
            name = self.name,
            min_sites = self.min_sites,
            timeout = self.round_timeout_seconds,
            epsilon = self.epsilon,
            statistic = self.statistic,
        )
    }
}

/// Submits a spec; returns the job id.
pub async fn submit(admin: &mut Admin, spec: &DpStatsSpec) -> String {
    submit_toml(admin, spec.toml()).await
}

/// Submits a spec given as TOML text; returns the job id.
pub async fn submit_toml(admin: &mut Admin, spec_toml: String) -> String {
    let status = admin
        .submit_job(SubmitJobRequest { spec_toml })
        .await
        .unwrap_or_else(|s| panic!("SubmitJob refused: {s}"))
        .into_inner();
    assert_eq!(status.state, "queued", "{status:?}");
    status.id
}

/// GetJob.
pub async fn status(client: &mut Admin, id: &str) -> JobStatus {
    client
        .get_job(JobRef { id: id.into() })
        .await
        .unwrap_or_else(|s| panic!("GetJob {id}: {s}"))
        .into_inner()
}

/// Whether a job state is final.
pub fn is_final(state: &str) -> bool {
    matches!(state, "succeeded" | "failed" | "cancelled")
}

/// Polls GetJob until `check` holds; returns that status. Panics if the job ends in a
/// state `check` does not accept.
pub async fn wait_until(
    client: &mut Admin,
    id: &str,
    what: &str,
    check: impl Fn(&JobStatus) -> bool,
) -> JobStatus {
    eventually(&format!("job {id}: {what}"), || {
        let mut client = client.clone();
        let check = &check;
        async move {
            let st = status(&mut client, id).await;
            if check(&st) {
                return Some(st);
            }
            assert!(
                !is_final(&st.state),
                "job {id} ended {} ({}) while waiting for {what}; sites: {:?}",
                st.state,
                st.reason,
                st.sites
            );
            None
        }
    })
    .await
}

/// Polls GetJob until the job has ended; returns the final status.
pub async fn wait_for_end(client: &mut Admin, id: &str) -> JobStatus {
    eventually(&format!("job {id} to end"), || {
        let mut client = client.clone();
        async move {
            let st = status(&mut client, id).await;
            is_final(&st.state).then_some(st)
        }
    })
    .await
}

/// The status of `site`'s task in a job status (the newest, if it had several).
pub fn site_task<'a>(status: &'a JobStatus, site: &str) -> &'a SiteTaskStatus {
    status
        .sites
        .iter()
        .rev()
        .find(|s| s.site == site)
        .unwrap_or_else(|| panic!("no task of {site} in {:?}", status.sites))
}

/// GetResult: the job's files, by name.
pub async fn result_files(
    client: &mut Admin,
    id: &str,
) -> Result<Vec<(String, Vec<u8>)>, tonic::Status> {
    let mut stream = client
        .get_result(JobRef { id: id.into() })
        .await?
        .into_inner();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    while let Some(chunk) = stream.message().await? {
        match files.last_mut() {
            Some((name, data)) if *name == chunk.name => data.extend_from_slice(&chunk.data),
            _ => files.push((chunk.name, chunk.data)),
        }
    }
    Ok(files)
}

/// GetResult's `report.json`, parsed.
pub async fn report(client: &mut Admin, id: &str) -> Value {
    let files = result_files(client, id)
        .await
        .unwrap_or_else(|s| panic!("GetResult {id}: {s}"));
    let (_, data) = files
        .iter()
        .find(|(name, _)| name == "report.json")
        .unwrap_or_else(|| {
            panic!(
                "no report.json among {:?}",
                files.iter().map(|f| &f.0).collect::<Vec<_>>()
            )
        });
    serde_json::from_slice(data).expect("report.json is JSON")
}

/// BudgetAudit rows of `site` (all datasets).
pub async fn budget(client: &mut Admin, site: &str) -> Vec<BudgetRow> {
    client
        .budget_audit(BudgetAuditRequest {
            site: site.into(),
            dataset: String::new(),
        })
        .await
        .unwrap_or_else(|s| panic!("BudgetAudit: {s}"))
        .into_inner()
        .rows
}

/// ListSites.
pub async fn sites(client: &mut Admin) -> Vec<SiteInfo> {
    client
        .list_sites(ListSitesRequest {})
        .await
        .unwrap_or_else(|s| panic!("ListSites: {s}"))
        .into_inner()
        .sites
}

/// Names of the sites ListSites shows as connected, sorted.
pub async fn connected(client: &mut Admin) -> Vec<String> {
    let mut names: Vec<String> = sites(client)
        .await
        .into_iter()
        .filter(|s| s.connected)
        .map(|s| s.name)
        .collect();
    names.sort();
    names
}

/// Waits until ListSites no longer shows `site` as connected.
pub async fn wait_until_disconnected(client: &mut Admin, site: &str) {
    eventually(&format!("{site} to disconnect"), || {
        let mut client = client.clone();
        async move { (!connected(&mut client).await.iter().any(|s| s == site)).then_some(()) }
    })
    .await
}

/// Waits until ListSites shows every site of `names` as connected.
pub async fn wait_until_connected(client: &mut Admin, names: &[&str]) {
    eventually(&format!("{names:?} to be connected"), || {
        let mut client = client.clone();
        async move {
            let now = connected(&mut client).await;
            names
                .iter()
                .all(|n| now.iter().any(|c| c == n))
                .then_some(())
        }
    })
    .await
}

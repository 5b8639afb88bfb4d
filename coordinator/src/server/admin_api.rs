//! `AdminApi`: what the `silo` CLI calls.
//!
//! Roles (DESIGN section 2, rule 6): `admin` may do everything; `auditor` may read —
//! Health, ListJobs, GetJob, WatchJob, GetResult, ListSites, BudgetAudit — but not submit
//! or cancel; `site` and `coordinator` certificates are refused.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::Arc;

use silo_common::spec::JobSpec;
use silo_proto::admin_api_server::AdminApi;
use silo_proto::tls::{PeerIdentity, Role};
use silo_proto::{
    BudgetAuditRequest, BudgetAuditResponse, BudgetRow, DatasetInfo, HealthRequest, HealthResponse,
    JobEvent, JobRef, JobStatus, ListJobsRequest, ListJobsResponse, ListSitesRequest,
    ListSitesResponse, ResultFile, SiteInfo, SubmitJobRequest,
};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::Hub;
use super::auth::caller;
use super::error::ApiError;
use crate::jobs::job_kind;
use crate::jobs::status::job_status;
use crate::store::{ChargeRecord, JobRecord, JobState, SiteRecord, blocking, now_rfc3339};

/// Name of an admin API caller in insecure mode when it states none.
const INSECURE_ADMIN: &str = "insecure-dev";

/// What a request wants to do, for the role check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Read,
    Submit,
    Cancel,
}

/// The AdminApi service.
pub struct AdminService {
    hub: Arc<Hub>,
}

impl AdminService {
    pub(super) fn new(hub: Arc<Hub>) -> Self {
        AdminService { hub }
    }

    fn authorize<T>(&self, request: &Request<T>, action: Action) -> Result<PeerIdentity, ApiError> {
        let peer = caller(self.hub.auth, request, INSECURE_ADMIN, Role::Admin)?;
        match (peer.role, action) {
            (Role::Admin, _) | (Role::Auditor, Action::Read) => Ok(peer),
            (Role::Auditor, Action::Submit) => Err(ApiError::PermissionDenied(
                "role auditor cannot submit jobs: requires role admin".into(),
            )),
            (Role::Auditor, Action::Cancel) => Err(ApiError::PermissionDenied(
                "role auditor cannot cancel jobs: requires role admin".into(),
            )),
            (role, _) => Err(ApiError::PermissionDenied(format!(
                "{} has role {role}: the admin API requires role admin or auditor",
                peer.name
            ))),
        }
    }

    async fn status_of(&self, id: &str) -> Result<JobStatus, ApiError> {
        let owned = id.to_string();
        let (job, tasks) = blocking(&self.hub.store, move |s| {
            let job = s.job(&owned)?;
            let tasks = match &job {
                Some(_) => s.tasks(&owned)?,
                None => Vec::new(),
            };
            Ok((job, tasks))
        })
        .await?;
        let job = job.ok_or_else(|| ApiError::NotFound(format!("job {id} not found")))?;
        Ok(job_status(&job, &tasks))
    }
}

type Streamed<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl AdminApi for AdminService {
    async fn health(
        &self,
        request: Request<HealthRequest>,
    ) -> Result<Response<HealthResponse>, Status> {
        let peer = self.authorize(&request, Action::Read)?;
        Ok(Response::new(HealthResponse {
            status: "serving".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            caller: peer.name,
            role: peer.role.to_string(),
        }))
    }

    async fn submit_job(
        &self,
        request: Request<SubmitJobRequest>,
    ) -> Result<Response<JobStatus>, Status> {
        let peer = self.authorize(&request, Action::Submit)?;
        let spec = JobSpec::parse_toml(&request.get_ref().spec_toml, "job spec")
            .map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
        let kind = job_kind(&spec).map_err(|e| ApiError::InvalidArgument(e.to_string()))?;
        let now = now_rfc3339();
        let record = JobRecord {
            id: new_job_id(),
            name: spec.name.clone(),
            kind: spec.kind.as_str().to_string(),
            spec_json: String::from_utf8(spec.to_json()).expect("serde_json writes UTF-8"),
            state: JobState::Queued,
            reason: "waiting for the scheduler".into(),
            round: 0,
            rounds: kind.rounds(),
            completed_rounds: 0,
            completed_attempts: Vec::new(),
            submitted_by: peer.name.clone(),
            created_at: now.clone(),
            updated_at: now,
            summary_json: None,
        };
        let stored = record.clone();
        blocking(&self.hub.store, move |s| s.insert_job(&stored))
            .await
            .map_err(ApiError::from)?;
        tracing::info!(
            "job {} ({}, {}) submitted by {peer}",
            record.id,
            record.kind,
            record.name
        );
        self.hub.scheduler.job_submitted(record.id.clone()).await;
        Ok(Response::new(job_status(&record, &[])))
    }

    async fn list_jobs(
        &self,
        request: Request<ListJobsRequest>,
    ) -> Result<Response<ListJobsResponse>, Status> {
        self.authorize(&request, Action::Read)?;
        let jobs = blocking(&self.hub.store, |s| {
            s.jobs()?
                .into_iter()
                .map(|job| {
                    let tasks = s.tasks(&job.id)?;
                    Ok(job_status(&job, &tasks))
                })
                .collect()
        })
        .await
        .map_err(ApiError::from)?;
        Ok(Response::new(ListJobsResponse { jobs }))
    }

    async fn get_job(&self, request: Request<JobRef>) -> Result<Response<JobStatus>, Status> {
        self.authorize(&request, Action::Read)?;
        Ok(Response::new(self.status_of(&request.get_ref().id).await?))
    }

    type WatchJobStream = Streamed<JobEvent>;

    async fn watch_job(
        &self,
        request: Request<JobRef>,
    ) -> Result<Response<Self::WatchJobStream>, Status> {
        self.authorize(&request, Action::Read)?;
        let id = request.into_inner().id;
        // Subscribe before reading the current status so no change falls in between.
        let mut events = self.hub.events.subscribe();
        let current = self.status_of(&id).await?;
        let (tx, rx) = mpsc::channel(16);
        let hub = Arc::clone(&self.hub);
        let mut shutdown = self.hub.shutdown.clone();
        let watcher = async move {
            let mut last = current;
            if tx.send(Ok(event(&last, "current status"))).await.is_err() || is_final(&last) {
                return;
            }
            loop {
                let next = tokio::select! {
                    _ = super::tasks::stop_requested(&mut shutdown) => {
                        let _ = tx.send(Err(Status::unavailable("the coordinator is shutting down"))).await;
                        return;
                    }
                    _ = tx.closed() => return,
                    received = events.recv() => received,
                };
                let ev = match next {
                    Ok(ev) if ev.status.as_ref().is_some_and(|s| s.id == id) => ev,
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Missed some: the store has the latest state.
                        let owned = id.clone();
                        match blocking(&hub.store, move |s| Ok((s.job(&owned)?, s.tasks(&owned)?)))
                            .await
                        {
                            Ok((Some(job), tasks)) => JobEvent {
                                status: Some(job_status(&job, &tasks)),
                                message: String::new(),
                            },
                            _ => return,
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let status = ev.status.clone().unwrap_or_default();
                if status == last && ev.message.is_empty() {
                    continue;
                }
                last = status;
                if tx.send(Ok(ev)).await.is_err() || is_final(&last) {
                    return;
                }
            }
        };
        if !self.hub.tasks.spawn(watcher) {
            return Err(ApiError::Unavailable("the coordinator is shutting down".into()).into());
        }
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn cancel_job(&self, request: Request<JobRef>) -> Result<Response<JobStatus>, Status> {
        let peer = self.authorize(&request, Action::Cancel)?;
        let id = request.into_inner().id;
        self.hub
            .scheduler
            .cancel(id.clone(), peer.to_string())
            .await
            .map_err(ApiError::from)?;
        tracing::info!("job {id} cancelled by {peer}");
        Ok(Response::new(self.status_of(&id).await?))
    }

    type GetResultStream = Streamed<ResultFile>;

    async fn get_result(
        &self,
        request: Request<JobRef>,
    ) -> Result<Response<Self::GetResultStream>, Status> {
        self.authorize(&request, Action::Read)?;
        let id = request.into_inner().id;
        let status = self.status_of(&id).await?;
        if status.state != JobState::Succeeded.as_str() {
            return Err(ApiError::FailedPrecondition(format!(
                "job {id} is {}: results exist only once a job has succeeded",
                status.state
            ))
            .into());
        }
        let owned = id.clone();
        let files = blocking(&self.hub.store, move |s| s.result_files(&owned))
            .await
            .map_err(ApiError::from)?;
        let (tx, rx) = mpsc::channel(4);
        let hub = Arc::clone(&self.hub);
        let sender = async move {
            for file in files {
                let mut offset = 0u64;
                loop {
                    let (job, name) = (id.clone(), file.name.clone());
                    let read = blocking(&hub.store, move |s| {
                        s.read_result_file(&job, &name, offset, silo_proto::CHUNK_BYTES)
                    })
                    .await;
                    let data = match read {
                        Ok(data) => data,
                        Err(e) => {
                            let _ = tx.send(Err(Status::from(ApiError::from(e)))).await;
                            return;
                        }
                    };
                    offset += data.len() as u64;
                    let last = data.len() < silo_proto::CHUNK_BYTES || offset >= file.size;
                    let chunk = ResultFile {
                        name: file.name.clone(),
                        data,
                        last,
                    };
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                    if last {
                        break;
                    }
                }
            }
        };
        if !self.hub.tasks.spawn(sender) {
            return Err(ApiError::Unavailable("the coordinator is shutting down".into()).into());
        }
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn list_sites(
        &self,
        request: Request<ListSitesRequest>,
    ) -> Result<Response<ListSitesResponse>, Status> {
        self.authorize(&request, Action::Read)?;
        let (sites, charges) = blocking(&self.hub.store, |s| {
            Ok((s.sites()?, s.charges(None, None)?))
        })
        .await
        .map_err(ApiError::from)?;
        let sites = sites
            .into_iter()
            .map(|site| {
                let audit_head = audit_head(&charges, &site.name);
                SiteInfo {
                    connected: self.hub.registry.is_connected(&site.name),
                    last_seen: site.last_seen.clone(),
                    datasets: site.datasets.iter().map(dataset_info).collect(),
                    ledger_consistent: ledger_consistent(&site, audit_head),
                    audit_head: audit_head.unwrap_or_default().to_string(),
                    ledger_head: site.ledger_head.clone(),
                    name: site.name,
                }
            })
            .collect();
        Ok(Response::new(ListSitesResponse { sites }))
    }

    async fn budget_audit(
        &self,
        request: Request<BudgetAuditRequest>,
    ) -> Result<Response<BudgetAuditResponse>, Status> {
        self.authorize(&request, Action::Read)?;
        let BudgetAuditRequest { site, dataset } = request.into_inner();
        let (sites, charges) = blocking(&self.hub.store, |s| {
            Ok((s.sites()?, s.charges(None, None)?))
        })
        .await
        .map_err(ApiError::from)?;
        let rows = budget_rows(&sites, &charges)
            .into_iter()
            .filter(|r| {
                (site.is_empty() || r.site == site) && (dataset.is_empty() || r.dataset == dataset)
            })
            .collect();
        Ok(Response::new(BudgetAuditResponse { rows }))
    }
}

fn event(status: &JobStatus, message: &str) -> JobEvent {
    JobEvent {
        status: Some(status.clone()),
        message: message.to_string(),
    }
}

fn is_final(status: &JobStatus) -> bool {
    JobState::parse(&status.state).is_some_and(JobState::is_terminal)
}

fn dataset_info(d: &crate::store::DatasetRecord) -> DatasetInfo {
    DatasetInfo {
        name: d.name.clone(),
        kind: d.kind.clone(),
        privacy_unit: d.privacy_unit.clone(),
        epsilon_budget: d.epsilon_budget,
        delta: d.delta,
        epsilon_spent: d.epsilon_spent,
        metadata_json: d.metadata_json.clone(),
    }
}

/// Hash of the newest charge (highest ledger sequence) the coordinator holds for `site`.
fn audit_head<'a>(charges: &'a [ChargeRecord], site: &str) -> Option<&'a str> {
    charges
        .iter()
        .filter(|c| c.site == site)
        .max_by_key(|c| c.seq)
        .map(|c| c.hash.as_str())
}

/// Whether the site's reported ledger head agrees with the coordinator's audit copy.
///
/// Consistent when the coordinator holds no charge for the site (nothing to compare), or
/// when the newest charge it holds is the site's head. A site that reports an *empty*
/// ledger while the coordinator holds charges for it is inconsistent: its ledger was
/// reset or replaced, which an auditor must see.
fn ledger_consistent(site: &SiteRecord, audit_head: Option<&str>) -> bool {
    match audit_head {
        None => true,
        Some(head) => site.ledger_head == head,
    }
}

/// One row per (site, dataset): the registered datasets, plus any dataset that only
/// appears in charges (a dataset the site no longer declares; its cap shows as 0).
fn budget_rows(sites: &[SiteRecord], charges: &[ChargeRecord]) -> Vec<BudgetRow> {
    let mut rows = Vec::new();
    for site in sites {
        let site_charges: Vec<&ChargeRecord> =
            charges.iter().filter(|c| c.site == site.name).collect();
        let consistent = ledger_consistent(site, audit_head(charges, &site.name));
        let mut names: BTreeSet<&str> = site.datasets.iter().map(|d| d.name.as_str()).collect();
        names.extend(site_charges.iter().map(|c| c.dataset.as_str()));
        for name in names {
            let declared = site.datasets.iter().find(|d| d.name == name);
            let of_dataset: Vec<&&ChargeRecord> =
                site_charges.iter().filter(|c| c.dataset == name).collect();
            // Spend only grows: the larger of what the site declared and its latest charge
            // is the latest report (and the safe side).
            let latest_charge = of_dataset
                .iter()
                .max_by_key(|c| c.seq)
                .map(|c| c.epsilon_spent);
            let declared_spent = declared.map(|d| d.epsilon_spent);
            let spent = match (declared_spent, latest_charge) {
                (Some(a), Some(b)) => a.max(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => 0.0,
            };
            let budget = declared.map(|d| d.epsilon_budget).unwrap_or(0.0);
            let delta = declared
                .map(|d| d.delta)
                .or_else(|| of_dataset.first().map(|c| c.delta))
                .unwrap_or(0.0);
            let jobs: BTreeMap<&str, ()> =
                of_dataset.iter().map(|c| (c.job_id.as_str(), ())).collect();
            rows.push(BudgetRow {
                site: site.name.clone(),
                dataset: name.to_string(),
                epsilon_budget: budget,
                delta,
                epsilon_spent: spent,
                // Not clamped: an overspent dataset shows a negative remainder.
                epsilon_remaining: budget - spent,
                jobs: jobs.into_keys().map(str::to_string).collect(),
                charges: of_dataset.len() as u64,
                ledger_consistent: consistent,
            });
        }
    }
    rows
}

/// A new job id: `job-YYYYMMDD-HHMMSS-` and 8 hex digits of a hash of the time, the
/// process and a counter (unique within a coordinator; the database enforces it).
pub(crate) fn new_job_id() -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = time::OffsetDateTime::now_utc();
    let mut hasher = Sha256::new();
    hasher.update(now.unix_timestamp_nanos().to_le_bytes());
    hasher.update(std::process::id().to_le_bytes());
    hasher.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let digest = hasher.finalize();
    format!(
        "job-{:04}{:02}{:02}-{:02}{:02}{:02}-{}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        hex::encode(&digest[..4])
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DatasetRecord;

    fn site(name: &str, head: &str, spent: f64) -> SiteRecord {
        SiteRecord {
            name: name.into(),
            datasets: vec![DatasetRecord {
                name: "visits".into(),
                kind: "csv".into(),
                privacy_unit: "person_id".into(),
                epsilon_budget: 4.0,
                delta: 1e-6,
                epsilon_spent: spent,
                metadata_json: "{}".into(),
            }],
            ledger_head: head.into(),
            ledger_entries: 0,
            version: "0.1.0".into(),
            allowed_kinds: vec![],
            registered_at: String::new(),
            last_seen: String::new(),
        }
    }

    fn charge(site: &str, seq: u64, job: &str, spent: f64, hash: &str) -> ChargeRecord {
        ChargeRecord {
            site: site.into(),
            seq,
            dataset: "visits".into(),
            job_id: job.into(),
            task_id: format!("{job}-t"),
            mechanism_json: "{}".into(),
            epsilon: 0.5,
            delta: 1e-6,
            epsilon_spent: spent,
            recorded_at: String::new(),
            prev_hash: String::new(),
            hash: hash.into(),
        }
    }

    #[test]
    fn budget_rows_use_the_latest_spend_and_flag_head_mismatches() {
        let sites = [
            site("a", "h2", 0.2),
            site("b", "other", 0.0),
            site("c", "", 0.0),
        ];
        let charges = [
            charge("a", 1, "j1", 0.7, "h1"),
            charge("a", 2, "j2", 1.2, "h2"),
            charge("b", 1, "j1", 0.5, "hb"),
        ];
        let rows = budget_rows(&sites, &charges);
        assert_eq!(rows.len(), 3);
        let a = &rows[0];
        assert_eq!((a.site.as_str(), a.epsilon_spent, a.charges), ("a", 1.2, 2));
        assert!((a.epsilon_remaining - 2.8).abs() < 1e-12);
        assert_eq!(a.jobs, vec!["j1".to_string(), "j2".to_string()]);
        assert!(a.ledger_consistent);
        assert!(
            !rows[1].ledger_consistent,
            "b's head disagrees with its newest charge"
        );
        assert!(rows[2].ledger_consistent, "nothing to compare for c");
        assert_eq!(rows[2].charges, 0);
    }

    #[test]
    fn job_ids_are_unique_and_safe() {
        let a = new_job_id();
        let b = new_job_id();
        assert_ne!(a, b);
        assert!(crate::store::is_safe_name(&a), "{a}");
        assert!(a.starts_with("job-"), "{a}");
    }
}

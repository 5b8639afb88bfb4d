//! Shared helpers of the coordinator's integration tests: a coordinator on
//! `127.0.0.1:0` in insecure (plaintext, loopback) mode, scripted fake sites speaking the
//! real SiteApi over gRPC, and an admin client.
//!
//! Fake sites never see data: they answer tasks with hand-made `dp_stats` releases and
//! report a hash-chained charge per release, as a real site would.

#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use silo_coordinator::config::CoordinatorConfig;
use silo_coordinator::server::{self, INSECURE_ROLE, RunningCoordinator};
use silo_proto::admin_api_client::AdminApiClient;
use silo_proto::coordinator_message::Body as Down;
use silo_proto::site_message::Body as Up;
use silo_proto::tls::TlsFiles;
use silo_proto::{
    Charge, CoordinatorMessage, DatasetInfo, JobRef, JobStatus, Register, ResultChunk, SiteMessage,
    SubmitJobRequest, Task, TaskUpdate,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;
use tonic::transport::Channel;

/// Generous bound on anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(20);

/// Starts a plaintext coordinator on a free loopback port over `data_dir`.
pub async fn coordinator(
    data_dir: &Path,
    tune: impl FnOnce(&mut CoordinatorConfig),
) -> RunningCoordinator {
    let mut config = CoordinatorConfig::new("127.0.0.1:0".parse().unwrap(), data_dir, None);
    config.shutdown_grace_seconds = 2;
    tune(&mut config);
    server::start(config).await.expect("coordinator starts")
}

/// An admin client (role admin unless `role` says otherwise).
pub async fn admin(url: &str) -> AdminApiClient<Channel> {
    let channel = silo_proto::tls::connect(url, None, true).await.unwrap();
    silo_proto::tls::admin_client(channel)
}

/// A request carrying an insecure-mode role.
pub fn as_role<T>(message: T, role: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert(INSECURE_ROLE, role.parse().unwrap());
    request
}

/// A `dp_stats` count spec.
pub fn count_spec(min_sites: u32, timeout_seconds: u64) -> String {
    format!(
        "kind = \"dp_stats\"\nname = \"visit-count\"\ndataset = \"visits\"\nsites = \"all\"\n\
         min_sites = {min_sites}\nround_timeout_seconds = {timeout_seconds}\n\
         [privacy]\nepsilon = 0.5\n[params]\nstatistic = \"count\"\n"
    )
}

/// Submits a spec; returns the job id.
pub async fn submit(admin: &mut AdminApiClient<Channel>, spec: &str) -> String {
    let status = admin
        .submit_job(SubmitJobRequest {
            spec_toml: spec.to_string(),
        })
        .await
        .expect("submit")
        .into_inner();
    assert_eq!(status.state, "queued");
    status.id
}

/// The job's status.
pub async fn status(admin: &mut AdminApiClient<Channel>, id: &str) -> JobStatus {
    admin
        .get_job(JobRef { id: id.into() })
        .await
        .unwrap()
        .into_inner()
}

/// Waits (via WatchJob) until the job reaches `state`; returns that status.
pub async fn wait_for_state(
    admin: &mut AdminApiClient<Channel>,
    id: &str,
    state: &str,
) -> JobStatus {
    let mut events = admin
        .watch_job(JobRef { id: id.into() })
        .await
        .unwrap()
        .into_inner();
    let found = tokio::time::timeout(WAIT, async {
        while let Some(event) = events.message().await.unwrap() {
            let status = event.status.unwrap();
            if status.state == state {
                return status;
            }
            assert!(
                !matches!(status.state.as_str(), "succeeded" | "failed" | "cancelled"),
                "job ended {} ({}) while waiting for {state}",
                status.state,
                status.reason
            );
        }
        panic!("watch ended before the job was {state}");
    })
    .await;
    found.unwrap_or_else(|_| panic!("job {id} did not reach {state} within {WAIT:?}"))
}

/// A scripted site daemon.
pub struct FakeSite {
    pub name: String,
    tx: mpsc::Sender<SiteMessage>,
    inbound: Streaming<CoordinatorMessage>,
    seq: u64,
    head: String,
    spent: f64,
}

impl FakeSite {
    /// Connects and registers with one dataset `visits` (budget 4.0).
    pub async fn connect(url: &str, name: &str) -> FakeSite {
        Self::connect_with(url, name, "", 0, 0.0).await
    }

    /// Connects with a given ledger state (for reconnects).
    pub async fn connect_with(url: &str, name: &str, head: &str, seq: u64, spent: f64) -> FakeSite {
        Self::open(url, None, name, head, seq, spent)
            .await
            .expect("session opens")
    }

    /// Connects over mutual TLS with `tls`, registering as `name`.
    pub async fn connect_tls(
        url: &str,
        tls: &TlsFiles,
        name: &str,
    ) -> Result<FakeSite, tonic::Status> {
        Self::open(url, Some(tls), name, "", 0, 0.0).await
    }

    async fn open(
        url: &str,
        tls: Option<&TlsFiles>,
        name: &str,
        head: &str,
        seq: u64,
        spent: f64,
    ) -> Result<FakeSite, tonic::Status> {
        let channel = silo_proto::tls::connect(url, tls, tls.is_none())
            .await
            .unwrap();
        let mut client = silo_proto::tls::site_client(channel);
        let (tx, rx) = mpsc::channel(64);
        tx.send(register(name, head, seq, spent)).await.unwrap();
        let mut inbound = client.session(ReceiverStream::new(rx)).await?.into_inner();
        let first = tokio::time::timeout(WAIT, inbound.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(matches!(first.body, Some(Down::Registered(_))), "{first:?}");
        Ok(FakeSite {
            name: name.into(),
            tx,
            inbound,
            seq,
            head: head.into(),
            spent,
        })
    }

    /// The next task (heartbeats and cancellations of earlier tasks skipped).
    pub async fn next_task(&mut self) -> Task {
        tokio::time::timeout(WAIT, async {
            loop {
                let message = self.inbound.message().await.unwrap().expect("stream open");
                match message.body {
                    Some(Down::Task(task)) => return task,
                    Some(Down::Heartbeat(_) | Down::Cancel(_)) => continue,
                    other => panic!("{} expected a task, got {other:?}", self.name),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{} got no task within {WAIT:?}", self.name))
    }

    /// The next cancellation (heartbeats skipped); its task id.
    pub async fn next_cancel(&mut self) -> String {
        tokio::time::timeout(WAIT, async {
            loop {
                let message = self.inbound.message().await.unwrap().expect("stream open");
                match message.body {
                    Some(Down::Cancel(c)) => return c.task_id,
                    Some(Down::Heartbeat(_)) => continue,
                    other => panic!("{} expected a cancel, got {other:?}", self.name),
                }
            }
        })
        .await
        .unwrap()
    }

    async fn send(&self, body: Up) {
        self.tx
            .send(SiteMessage { body: Some(body) })
            .await
            .expect("session open");
    }

    pub async fn update(&self, task: &Task, state: &str, reason: &str) {
        self.send(Up::Update(TaskUpdate {
            task_id: task.task_id.clone(),
            state: state.into(),
            reason: reason.into(),
            ..Default::default()
        }))
        .await
    }

    /// Charges its ledger, then sends `done` with the charge and the result in chunks.
    pub async fn deliver(&mut self, task: &Task, result: &[u8]) {
        self.seq += 1;
        self.spent += 0.5;
        let hash = format!("{}-h{}", self.name, self.seq);
        let charge = Charge {
            seq: self.seq,
            dataset: task.dataset.clone(),
            job_id: task.job_id.clone(),
            task_id: task.task_id.clone(),
            mechanism_json: "{\"mechanism\":\"laplace\"}".into(),
            epsilon: 0.5,
            delta: 0.0,
            epsilon_spent: self.spent,
            recorded_at: "2026-11-27T00:00:00Z".into(),
            prev_hash: std::mem::replace(&mut self.head, hash.clone()),
            hash,
        };
        self.send(Up::Update(TaskUpdate {
            task_id: task.task_id.clone(),
            state: "done".into(),
            charges: vec![charge],
            result_bytes: result.len() as u64,
            progress: 1.0,
            ..Default::default()
        }))
        .await;
        let chunks: Vec<&[u8]> = result.chunks(1000).collect();
        for (i, data) in chunks.iter().enumerate() {
            self.send(Up::Chunk(ResultChunk {
                task_id: task.task_id.clone(),
                seq: i as u32,
                data: data.to_vec(),
                last: i + 1 == chunks.len(),
            }))
            .await;
        }
    }

    /// Accepts, runs and delivers a count release of `value`.
    pub async fn answer(&mut self, task: &Task, value: f64) {
        self.update(task, "accepted", "").await;
        self.send(Up::Update(TaskUpdate {
            task_id: task.task_id.clone(),
            state: "running".into(),
            progress: 0.5,
            ..Default::default()
        }))
        .await;
        self.deliver(task, &count_release(value)).await;
    }

    /// The ledger head this site would report.
    pub fn head(&self) -> (&str, u64, f64) {
        (&self.head, self.seq, self.spent)
    }
}

fn register(name: &str, head: &str, entries: u64, spent: f64) -> SiteMessage {
    SiteMessage {
        body: Some(Up::Register(Register {
            site_name: name.into(),
            datasets: vec![DatasetInfo {
                name: "visits".into(),
                kind: "csv".into(),
                privacy_unit: "person_id".into(),
                epsilon_budget: 4.0,
                delta: 1e-6,
                epsilon_spent: spent,
                metadata_json: "{}".into(),
            }],
            ledger_head: head.into(),
            ledger_entries: entries,
            version: "test".into(),
            allowed_kinds: vec!["dp_stats".into()],
        })),
    }
}

/// A `dp_stats` count release.
pub fn count_release(value: f64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "statistic": "count", "mechanism": "laplace", "epsilon": 0.5, "delta": null,
        "column": null, "lower": null, "upper": null, "max_rows_per_unit": 1,
        "count": {"value": value, "noise_std": 2.0},
    }))
    .unwrap()
}

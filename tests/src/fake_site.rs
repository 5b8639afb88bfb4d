//! A scripted site: the real `SiteApi.Session` over mutual TLS with a real site
//! certificate, driven step by step by the test.
//!
//! It exists for the failures a real daemon will not produce on cue: accepting a task and
//! then stalling, or dying with its stream mid-task. It never computes anything and never
//! sends a result.

use silo_proto::coordinator_message::Body as Down;
use silo_proto::site_message::Body as Up;
use silo_proto::tls::{self, TlsFiles};
use silo_proto::{CoordinatorMessage, DatasetInfo, Register, SiteMessage, Task, TaskUpdate};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use crate::WAIT;
use crate::sites::{DATASET, DATASET_DELTA};

/// A registered scripted site.
pub struct FakeSite {
    /// The name it registered under.
    pub name: String,
    tx: mpsc::Sender<SiteMessage>,
    inbound: Streaming<CoordinatorMessage>,
}

impl FakeSite {
    /// Opens a session presenting `tls` and registers as `site_name` with an empty ledger
    /// and the dataset `visits` (budget 4.0). `Err` is the coordinator's refusal, whether
    /// it comes as the call's status or as the first message of the stream.
    pub async fn connect(
        url: &str,
        tls: &TlsFiles,
        site_name: &str,
    ) -> Result<FakeSite, tonic::Status> {
        let channel = tls::connect(url, Some(tls), false)
            .await
            .map_err(|e| tonic::Status::unavailable(format!("connect: {e}")))?;
        let mut client = tls::site_client(channel);
        let (tx, rx) = mpsc::channel(64);
        tx.send(register(site_name)).await.expect("queue open");
        let mut inbound = tokio::time::timeout(WAIT, client.session(ReceiverStream::new(rx)))
            .await
            .map_err(|_| tonic::Status::deadline_exceeded("no session within the wait"))??
            .into_inner();
        let first = tokio::time::timeout(WAIT, inbound.message())
            .await
            .map_err(|_| tonic::Status::deadline_exceeded("no Registered within the wait"))??;
        match first {
            Some(CoordinatorMessage {
                body: Some(Down::Registered(_)),
            }) => Ok(FakeSite {
                name: site_name.into(),
                tx,
                inbound,
            }),
            other => Err(tonic::Status::internal(format!(
                "expected Registered, got {other:?}"
            ))),
        }
    }

    /// The next task (heartbeats skipped).
    pub async fn next_task(&mut self) -> Task {
        match self.next_down(|body| matches!(body, Down::Task(_))).await {
            Down::Task(task) => task,
            _ => unreachable!(),
        }
    }

    /// The id of the next cancelled task (heartbeats skipped).
    pub async fn next_cancel(&mut self) -> String {
        match self.next_down(|body| matches!(body, Down::Cancel(_))).await {
            Down::Cancel(cancel) => cancel.task_id,
            _ => unreachable!(),
        }
    }

    async fn next_down(&mut self, wanted: impl Fn(&Down) -> bool) -> Down {
        let name = self.name.clone();
        tokio::time::timeout(WAIT, async {
            loop {
                let message = self
                    .inbound
                    .message()
                    .await
                    .unwrap_or_else(|s| panic!("{name}: session failed: {s}"))
                    .unwrap_or_else(|| panic!("{name}: session closed"));
                match message.body {
                    Some(Down::Heartbeat(_)) | None => continue,
                    Some(body) if wanted(&body) => return body,
                    Some(other) => panic!("{name}: unexpected {other:?}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{} got nothing within {WAIT:?}", self.name))
    }

    /// Reports `state` on `task` (`accepted`, `running`, ...).
    pub async fn update(&self, task: &Task, state: &str, progress: f64) {
        let update = TaskUpdate {
            task_id: task.task_id.clone(),
            state: state.into(),
            progress,
            ..Default::default()
        };
        self.tx
            .send(SiteMessage {
                body: Some(Up::Update(update)),
            })
            .await
            .expect("session open");
    }

    /// Accepts `task` and reports it running, as a daemon does before it computes.
    pub async fn accept(&self, task: &Task) {
        self.update(task, "accepted", 0.0).await;
        self.update(task, "running", 0.1).await;
    }
}

fn register(site_name: &str) -> SiteMessage {
    SiteMessage {
        body: Some(Up::Register(Register {
            site_name: site_name.into(),
            datasets: vec![DatasetInfo {
                name: DATASET.into(),
                kind: "csv".into(),
                privacy_unit: "person_id".into(),
                epsilon_budget: 4.0,
                delta: DATASET_DELTA,
                epsilon_spent: 0.0,
                metadata_json: "{}".into(),
            }],
            ledger_head: String::new(),
            ledger_entries: 0,
            version: "scripted".into(),
            allowed_kinds: vec!["dp_stats".into()],
        })),
    }
}

//! The site daemon: one long-lived session with the coordinator.
//!
//! The site dials out (hospital firewalls accept no inbound connections), opens the
//! `SiteApi.Session` stream, registers (public metadata and its current spend only), then
//! serves tasks until the stream drops, when it reconnects with exponential backoff
//! (1 s doubling to 30 s, with jitter). A shutdown signal stops it cleanly: running tasks
//! get a grace period to finish and send their results.
//!
//! Per task: the executor runs on a blocking thread (OpenDP measurements are not `Send`),
//! streaming `accepted` / `running` updates; then `refused`, `failed`, or `done` with the
//! committed charges followed by the result in chunks of at most
//! [`silo_proto::CHUNK_BYTES`]. The result bytes exist only after the charge is durable
//! (see [`crate::executor`]).
//!
//! A task whose session drops while it runs is finished (its charge, if made, stands) but
//! its result is not sent; the coordinator retries with a new task id. A task id already
//! in the ledger is never executed again ("already executed").

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use silo_proto::{
    CoordinatorMessage, DatasetInfo, Heartbeat, Register, ResultChunk, SiteMessage, Task,
    TaskUpdate, coordinator_message, site_message, tls,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_stream::wrappers::ReceiverStream;

use crate::config::SiteConfig;
use crate::executor::{Executor, Outcome, Progress};
use crate::ledger::{Ledger, SPEND_ACCOUNTANTS};

/// First reconnect delay.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Heartbeat interval when the coordinator does not set one.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// How long the coordinator has to answer `Register`.
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long running tasks get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Outbound message queue length (updates and chunks).
const OUTBOUND_QUEUE: usize = 64;

/// What the daemon reports to an observer (tests, `silo demo`).
#[derive(Clone, Debug, PartialEq)]
pub enum DaemonEvent {
    /// The coordinator accepted the registration.
    Registered {
        /// The heartbeat interval in use.
        heartbeat_seconds: u32,
    },
    /// The session ended; the daemon will reconnect unless shutting down.
    Disconnected {
        /// Why.
        reason: String,
    },
    /// A task ended and its outcome was sent.
    TaskFinished {
        /// The task.
        task_id: String,
        /// `done`, `refused` or `failed`.
        state: String,
    },
}

/// Runs the site daemon until `shutdown` resolves.
///
/// Fails only on problems a retry cannot fix (the data directory or ledger cannot be
/// opened, the coordinator URL or TLS files are invalid); network failures are retried.
pub async fn run(config: SiteConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    run_with_events(config, shutdown, None).await
}

/// [`run`], reporting registrations, disconnections and finished tasks to `events`.
pub async fn run_with_events(
    config: SiteConfig,
    shutdown: impl Future<Output = ()>,
    events: Option<mpsc::UnboundedSender<DaemonEvent>>,
) -> anyhow::Result<()> {
    // Problems no retry can fix fail now, before the first dial.
    tls::endpoint(&config.coordinator, config.tls.as_ref(), config.insecure)
        .with_context(|| format!("{}: coordinator / [tls]", config.path.display()))?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let ledger = Ledger::open(&config.ledger_path())?;
    let verify = ledger.verify()?;
    if let Some(bad) = &verify.first_bad {
        anyhow::bail!(
            "the privacy ledger {} is broken at entry {}: {}; refusing to serve (run `silo-site ledger verify`)",
            config.ledger_path().display(),
            bad.seq,
            bad.reason
        );
    }
    let config = Arc::new(config);
    let executor = Executor::new(config.clone(), Arc::new(Mutex::new(ledger)));
    let daemon = Daemon {
        config,
        executor,
        events,
    };

    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Backoff::new();
    tracing::info!(site = %daemon.config.name, coordinator = %daemon.config.coordinator, "site daemon starting");
    loop {
        let end = daemon.session(&mut shutdown, &mut backoff).await;
        match end {
            SessionEnd::Shutdown => {
                tracing::info!("site daemon stopped");
                return Ok(());
            }
            SessionEnd::Dropped(reason) => {
                daemon.report(DaemonEvent::Disconnected {
                    reason: reason.clone(),
                });
                let delay = backoff.next_delay();
                tracing::warn!(%reason, retry_in = ?delay, "session with the coordinator ended");
                tokio::select! {
                    _ = &mut shutdown => {
                        tracing::info!("site daemon stopped");
                        return Ok(());
                    }
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

enum SessionEnd {
    Shutdown,
    Dropped(String),
}

struct Daemon {
    config: Arc<SiteConfig>,
    executor: Executor,
    events: Option<mpsc::UnboundedSender<DaemonEvent>>,
}

type Shutdown<'a, F> = Pin<&'a mut F>;

impl Daemon {
    fn report(&self, event: DaemonEvent) {
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }

    async fn session<F: Future<Output = ()>>(
        &self,
        shutdown: &mut Shutdown<'_, F>,
        backoff: &mut Backoff,
    ) -> SessionEnd {
        let cfg = &self.config;
        let connect = tls::connect(&cfg.coordinator, cfg.tls.as_ref(), cfg.insecure);
        let channel = tokio::select! {
            _ = shutdown.as_mut() => return SessionEnd::Shutdown,
            c = connect => match c {
                Ok(c) => c,
                Err(e) => return SessionEnd::Dropped(format!("{e:#}")),
            },
        };
        let register = match self.register_message().await {
            Ok(r) => r,
            Err(e) => return SessionEnd::Dropped(format!("cannot build the registration: {e:#}")),
        };
        let (tx, rx) = mpsc::channel::<SiteMessage>(OUTBOUND_QUEUE);
        // Queued before the call: the coordinator reads Register before it answers.
        let _ = tx.send(site(site_message::Body::Register(register))).await;
        let mut client = tls::site_client(channel);
        let response = tokio::select! {
            _ = shutdown.as_mut() => return SessionEnd::Shutdown,
            r = client.session(ReceiverStream::new(rx)) => match r {
                Ok(r) => r,
                Err(status) => return SessionEnd::Dropped(describe(&status)),
            },
        };
        let mut inbound = response.into_inner();
        let first = tokio::select! {
            _ = shutdown.as_mut() => return SessionEnd::Shutdown,
            m = tokio::time::timeout(REGISTER_TIMEOUT, inbound.message()) => m,
        };
        let registered = match first {
            Err(_) => {
                return SessionEnd::Dropped(
                    "the coordinator did not answer the registration in time".into(),
                );
            }
            Ok(Err(status)) => {
                return SessionEnd::Dropped(format!("registration refused: {}", describe(&status)));
            }
            Ok(Ok(None)) => {
                return SessionEnd::Dropped(
                    "the coordinator closed the stream at registration".into(),
                );
            }
            Ok(Ok(Some(CoordinatorMessage {
                body: Some(coordinator_message::Body::Registered(r)),
            }))) => r,
            Ok(Ok(Some(other))) => {
                return SessionEnd::Dropped(format!(
                    "expected Registered as the first message, got {other:?}"
                ));
            }
        };
        backoff.reset();
        let heartbeat_every = match registered.heartbeat_seconds {
            0 => DEFAULT_HEARTBEAT,
            s => Duration::from_secs(u64::from(s)),
        };
        tracing::info!(
            coordinator_version = %registered.coordinator_version, heartbeat = ?heartbeat_every,
            "registered with the coordinator"
        );
        self.report(DaemonEvent::Registered {
            heartbeat_seconds: heartbeat_every.as_secs() as u32,
        });

        let mut heartbeat = tokio::time::interval_at(
            tokio::time::Instant::now() + heartbeat_every,
            heartbeat_every,
        );
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut running: JoinSet<(String, Outcome)> = JoinSet::new();
        let mut cancels: HashMap<String, Arc<AtomicBool>> = HashMap::new();
        loop {
            tokio::select! {
                _ = shutdown.as_mut() => {
                    self.drain(&mut running, &tx).await;
                    return SessionEnd::Shutdown;
                }
                message = inbound.message() => match message {
                    Ok(Some(CoordinatorMessage { body: Some(body) })) => match body {
                        coordinator_message::Body::Task(task) => {
                            let flag = Arc::new(AtomicBool::new(false));
                            cancels.insert(task.task_id.clone(), flag.clone());
                            self.spawn_task(&mut running, task, flag, tx.clone());
                        }
                        coordinator_message::Body::Cancel(c) => {
                            tracing::info!(task = %c.task_id, reason = %c.reason, "task cancelled by the coordinator");
                            if let Some(flag) = cancels.get(&c.task_id) {
                                flag.store(true, Ordering::SeqCst);
                            }
                        }
                        coordinator_message::Body::Heartbeat(_) => {}
                        coordinator_message::Body::Registered(_) => {
                            tracing::debug!("ignoring a second Registered");
                        }
                    },
                    Ok(Some(CoordinatorMessage { body: None })) => {}
                    Ok(None) => return SessionEnd::Dropped("the coordinator closed the stream".into()),
                    Err(status) => return SessionEnd::Dropped(describe(&status)),
                },
                _ = heartbeat.tick() => {
                    let _ = tx.send(site(site_message::Body::Heartbeat(Heartbeat { unix_millis: unix_millis() }))).await;
                }
                Some(joined) = running.join_next(), if !running.is_empty() => {
                    match joined {
                        Ok((task_id, outcome)) => {
                            cancels.remove(&task_id);
                            if !self.send_outcome(&tx, &task_id, outcome).await {
                                return SessionEnd::Dropped("the stream closed while sending a result".into());
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "a task panicked"),
                    }
                }
            }
        }
    }

    /// Waits up to [`SHUTDOWN_GRACE`] for running tasks and sends their outcomes.
    async fn drain(
        &self,
        running: &mut JoinSet<(String, Outcome)>,
        tx: &mpsc::Sender<SiteMessage>,
    ) {
        if running.is_empty() {
            return;
        }
        tracing::info!(tasks = running.len(), grace = ?SHUTDOWN_GRACE, "waiting for running tasks before stopping");
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, running.join_next()).await {
            if let Ok((task_id, outcome)) = joined {
                self.send_outcome(tx, &task_id, outcome).await;
            }
        }
        // Let the transport flush what was queued.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    fn spawn_task(
        &self,
        running: &mut JoinSet<(String, Outcome)>,
        task: Task,
        cancelled: Arc<AtomicBool>,
        tx: mpsc::Sender<SiteMessage>,
    ) {
        tracing::info!(task = %task.task_id, job = %task.job_id, kind = %task.kind, round = task.round, "task received");
        let executor = self.executor.clone();
        running.spawn_blocking(move || {
            let task_id = task.task_id.clone();
            let mut progress = |p: Progress| {
                let update = match p {
                    Progress::Accepted => TaskUpdate {
                        task_id: task_id.clone(),
                        state: "accepted".into(),
                        ..Default::default()
                    },
                    Progress::Running { progress, message } => TaskUpdate {
                        task_id: task_id.clone(),
                        state: "running".into(),
                        progress,
                        message,
                        ..Default::default()
                    },
                };
                // The session may be gone; the task still finishes (and stays charged).
                let _ = tx.blocking_send(site(site_message::Body::Update(update)));
            };
            let outcome = executor.execute(&task, &cancelled, &mut progress);
            (task.task_id, outcome)
        });
    }

    /// Sends the final update (and the result chunks); false if the stream is gone.
    async fn send_outcome(
        &self,
        tx: &mpsc::Sender<SiteMessage>,
        task_id: &str,
        outcome: Outcome,
    ) -> bool {
        let state = outcome.state().to_string();
        let ok = send_outcome(tx, task_id, outcome).await;
        match state.as_str() {
            "done" => tracing::info!(task = %task_id, "result sent"),
            _ => tracing::info!(task = %task_id, %state, "task ended"),
        }
        self.report(DaemonEvent::TaskFinished {
            task_id: task_id.to_string(),
            state,
        });
        ok
    }

    /// The registration: public metadata and the ledger's spend and head.
    async fn register_message(&self) -> anyhow::Result<Register> {
        let executor = self.executor.clone();
        tokio::task::spawn_blocking(move || build_register(&executor)).await?
    }
}

/// Builds `Register` from the config and the ledger (blocking: composes every dataset's
/// history).
pub fn build_register(executor: &Executor) -> anyhow::Result<Register> {
    let config = executor.config();
    let ledger = executor.ledger();
    let mut datasets = Vec::new();
    for d in &config.datasets {
        let spent = ledger.spent(&d.name, d.delta, &SPEND_ACCOUNTANTS)?;
        // Declared, public metadata only (DESIGN section 2, rule 1b): never row or unit
        // counts, which are exact aggregates of the data.
        let mut metadata = serde_json::Map::new();
        if let Some(cols) = &d.columns {
            metadata.insert("columns".into(), serde_json::json!(cols));
        }
        datasets.push(DatasetInfo {
            name: d.name.clone(),
            kind: d.kind.as_str().into(),
            privacy_unit: d.privacy_unit.clone(),
            epsilon_budget: d.epsilon_budget,
            delta: d.delta,
            epsilon_spent: spent,
            metadata_json: serde_json::Value::Object(metadata).to_string(),
        });
    }
    let head = ledger.head()?;
    Ok(Register {
        site_name: config.name.clone(),
        datasets,
        ledger_head: head.as_ref().map(|h| h.hash.clone()).unwrap_or_default(),
        ledger_entries: head.map(|h| h.seq).unwrap_or(0),
        version: crate::VERSION.into(),
        allowed_kinds: config
            .policy
            .allowed_kinds
            .iter()
            .map(|k| k.as_str().to_string())
            .collect(),
    })
}

/// Sends the final `TaskUpdate` of an outcome and, for `done`, the chunked result.
pub(crate) async fn send_outcome(
    tx: &mpsc::Sender<SiteMessage>,
    task_id: &str,
    outcome: Outcome,
) -> bool {
    let state = outcome.state().to_string();
    match outcome {
        Outcome::Refused(reason) | Outcome::Failed(reason) => {
            let update = TaskUpdate {
                task_id: task_id.into(),
                state,
                reason,
                ..Default::default()
            };
            tx.send(site(site_message::Body::Update(update)))
                .await
                .is_ok()
        }
        Outcome::Done { charges, result } => {
            let update = TaskUpdate {
                task_id: task_id.into(),
                state,
                progress: 1.0,
                charges,
                result_bytes: result.len() as u64,
                ..Default::default()
            };
            if tx
                .send(site(site_message::Body::Update(update)))
                .await
                .is_err()
            {
                return false;
            }
            for chunk in chunks(task_id, &result) {
                if tx
                    .send(site(site_message::Body::Chunk(chunk)))
                    .await
                    .is_err()
                {
                    return false;
                }
            }
            true
        }
    }
}

/// Splits `data` into `ResultChunk`s of at most [`silo_proto::CHUNK_BYTES`]; the last has
/// `last = true`. An empty result is one empty last chunk.
pub fn chunks(task_id: &str, data: &[u8]) -> Vec<ResultChunk> {
    let pieces: Vec<&[u8]> = if data.is_empty() {
        vec![&[][..]]
    } else {
        data.chunks(silo_proto::CHUNK_BYTES).collect()
    };
    let n = pieces.len();
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, piece)| ResultChunk {
            task_id: task_id.into(),
            seq: i as u32,
            data: piece.to_vec(),
            last: i + 1 == n,
        })
        .collect()
}

fn site(body: site_message::Body) -> SiteMessage {
    SiteMessage { body: Some(body) }
}

fn describe(status: &tonic::Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Exponential backoff with jitter: delays double from [`BACKOFF_MIN`] to [`BACKOFF_MAX`];
/// each is drawn uniformly from [d/2, d] so that many sites do not reconnect in lockstep.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    state: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

impl Backoff {
    /// A backoff at its minimum.
    pub fn new() -> Self {
        // Jitter needs no cryptographic quality: a per-process random hasher key will do.
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Backoff {
            next: BACKOFF_MIN,
            state: seed | 1,
        }
    }

    /// Back to the minimum (after a successful registration).
    pub fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        // xorshift64
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        let u = (self.state >> 11) as f64 / (1u64 << 53) as f64;
        d.mul_f64(0.5 + 0.5 * u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_thirty_seconds_with_jitter_and_resets() {
        let mut b = Backoff::new();
        let mut ceilings = Vec::new();
        for _ in 0..8 {
            let ceiling = b.next;
            let d = b.next_delay();
            assert!(d >= ceiling / 2 && d <= ceiling, "{d:?} vs {ceiling:?}");
            ceilings.push(ceiling.as_secs());
        }
        assert_eq!(ceilings, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        b.reset();
        assert!(b.next_delay() <= BACKOFF_MIN);
    }

    #[test]
    fn results_are_chunked_with_last_on_the_final_chunk() {
        let data = vec![7u8; silo_proto::CHUNK_BYTES * 2 + 5];
        let c = chunks("t", &data);
        assert_eq!(c.len(), 3);
        assert_eq!(c.iter().map(|c| c.data.len()).sum::<usize>(), data.len());
        assert!(c.iter().all(|c| c.data.len() <= silo_proto::CHUNK_BYTES));
        assert_eq!(
            c.iter().map(|c| c.last).collect::<Vec<_>>(),
            vec![false, false, true]
        );
        assert_eq!(c.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![0, 1, 2]);
        let empty = chunks("t", &[]);
        assert_eq!(empty.len(), 1);
        assert!(empty[0].last && empty[0].data.is_empty());
    }
}

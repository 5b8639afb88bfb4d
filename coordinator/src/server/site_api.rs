//! `SiteApi.Session`: the long-lived stream a site daemon dials out to hold.
//!
//! 1. The caller's certificate must have role `site`, and the first message must be a
//!    `Register` whose `site_name` equals the certificate's name (`PermissionDenied`
//!    otherwise: a site can only ever speak for itself).
//! 2. The registration (public dataset metadata, ledger head) is stored, the coordinator
//!    answers `Registered`, the site joins the registry and the scheduler hears of it.
//! 3. A reader task then handles what the site sends: task updates (their charges are
//!    stored in the audit copy *before* the scheduler sees the update), result chunks
//!    (reassembled with a size bound) and heartbeats, and sends heartbeats down.
//! 4. When the stream drops, the site leaves the registry and its in-flight tasks fail
//!    ("site disconnected"). On coordinator shutdown the stream ends with `Unavailable`
//!    and tasks are left for the next start to re-plan.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use silo_proto::coordinator_message::Body as Down;
use silo_proto::site_api_server::SiteApi;
use silo_proto::site_message::Body as Up;
use silo_proto::tls::{Role, is_valid_name};
use silo_proto::{
    Charge, CoordinatorMessage, Heartbeat, Register, Registered, SiteMessage, TaskUpdate,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::Hub;
use super::auth::caller;
use super::error::ApiError;
use super::reassembly::{Chunked, Reassembly};
use super::registry::Outbound;
use crate::store::{ChargeRecord, DatasetRecord, SiteRecord, blocking, now_rfc3339};

/// How long a new session may take to send `Register`.
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(30);

/// Messages queued towards one site before it counts as not reading its stream.
const OUTBOUND_QUEUE: usize = 64;

/// The SiteApi service.
pub struct SiteService {
    hub: Arc<Hub>,
}

impl SiteService {
    pub(super) fn new(hub: Arc<Hub>) -> Self {
        SiteService { hub }
    }
}

type SessionStream = Pin<Box<dyn Stream<Item = Result<CoordinatorMessage, Status>> + Send>>;

#[tonic::async_trait]
impl SiteApi for SiteService {
    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<SiteMessage>>,
    ) -> Result<Response<SessionStream>, Status> {
        Ok(open_session(&self.hub, request).await?)
    }
}

async fn open_session(
    hub: &Arc<Hub>,
    request: Request<Streaming<SiteMessage>>,
) -> Result<Response<SessionStream>, ApiError> {
    // In insecure mode a site is whoever its Register says; the name is filled in below.
    let peer = caller(hub.auth, &request, "", Role::Site)?;
    if peer.role != Role::Site {
        return Err(ApiError::PermissionDenied(format!(
            "{} has role {}: a site session requires a certificate with role site",
            peer.name, peer.role
        )));
    }
    let mut inbound = request.into_inner();
    let first = tokio::time::timeout(REGISTER_TIMEOUT, inbound.message())
        .await
        .map_err(|_| {
            ApiError::DeadlineExceeded(format!(
                "no Register message within {} s of opening the session",
                REGISTER_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|s| {
            ApiError::InvalidArgument(format!("session stream failed: {}", s.message()))
        })?;
    let register = match first {
        Some(SiteMessage {
            body: Some(Up::Register(register)),
        }) => register,
        _ => {
            return Err(ApiError::InvalidArgument(
                "the first message of a session must be Register".into(),
            ));
        }
    };
    let name = if peer.name.is_empty() {
        register.site_name.clone() // insecure mode without a stated name
    } else {
        peer.name.clone()
    };
    if register.site_name != name {
        return Err(ApiError::PermissionDenied(format!(
            "certificate is for site {name:?} but Register.site_name is {:?}: a site may only \
             register under the name in its certificate",
            register.site_name
        )));
    }
    let record = site_record(&register)?;
    let datasets: Vec<String> = record.datasets.iter().map(|d| d.name.clone()).collect();
    blocking(&hub.store, move |s| s.upsert_site(&record)).await?;

    let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
    // `Registered` goes first, before the registry lets the scheduler queue any task.
    let registered = CoordinatorMessage {
        body: Some(Down::Registered(Registered {
            coordinator_version: env!("CARGO_PKG_VERSION").to_string(),
            heartbeat_seconds: hub.heartbeat_seconds,
        })),
    };
    tx.try_send(Ok(registered))
        .map_err(|_| ApiError::Unavailable("session closed while registering".into()))?;
    let (session, replaced) = hub.registry.register(&name, datasets, tx.clone());
    tracing::info!(
        "site {name} connected (session {session}, {} dataset(s), ledger head {:?})",
        register.datasets.len(),
        register.ledger_head
    );
    let reader = SessionReader {
        hub: Arc::clone(hub),
        site: name.clone(),
        session,
        tx,
        reassembly: Reassembly::new(hub.max_result_bytes),
    };
    let shutdown = hub.shutdown.clone();
    let spawned = hub.tasks.spawn(reader.run(inbound, replaced, shutdown));
    if !spawned {
        hub.registry.unregister(&name, session);
        return Err(ApiError::Unavailable(
            "the coordinator is shutting down".into(),
        ));
    }
    hub.scheduler.site_connected(name).await;
    Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
}

/// Checks a registration and turns it into the stored record; every problem is reported.
fn site_record(register: &Register) -> Result<SiteRecord, ApiError> {
    let mut issues = Vec::new();
    if !is_valid_name(&register.site_name) {
        issues.push(format!(
            "site_name {:?}: expected 1-64 letters, digits, '.', '_' or '-'",
            register.site_name
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, d) in register.datasets.iter().enumerate() {
        let at = format!("datasets[{i}] ({:?})", d.name);
        if d.name.trim().is_empty() {
            issues.push(format!("{at}: expected a dataset name"));
        } else if !seen.insert(d.name.as_str()) {
            issues.push(format!("{at}: declared twice"));
        }
        if !(d.epsilon_budget.is_finite() && d.epsilon_budget >= 0.0) {
            issues.push(format!(
                "{at}: epsilon_budget {}: expected a finite number >= 0",
                d.epsilon_budget
            ));
        }
        if !(d.delta >= 0.0 && d.delta < 1.0) {
            issues.push(format!(
                "{at}: delta {}: expected a number in [0, 1)",
                d.delta
            ));
        }
        if !(d.epsilon_spent.is_finite() && d.epsilon_spent >= 0.0) {
            issues.push(format!(
                "{at}: epsilon_spent {}: expected a finite number >= 0",
                d.epsilon_spent
            ));
        }
    }
    if !issues.is_empty() {
        return Err(ApiError::InvalidArgument(format!(
            "invalid Register: {}",
            issues.join("; ")
        )));
    }
    let now = now_rfc3339();
    Ok(SiteRecord {
        name: register.site_name.clone(),
        datasets: register
            .datasets
            .iter()
            .map(|d| DatasetRecord {
                name: d.name.clone(),
                kind: d.kind.clone(),
                privacy_unit: d.privacy_unit.clone(),
                epsilon_budget: d.epsilon_budget,
                delta: d.delta,
                epsilon_spent: d.epsilon_spent,
                metadata_json: d.metadata_json.clone(),
            })
            .collect(),
        ledger_head: register.ledger_head.clone(),
        ledger_entries: register.ledger_entries,
        version: register.version.clone(),
        allowed_kinds: register.allowed_kinds.clone(),
        registered_at: now.clone(),
        last_seen: now,
    })
}

/// The audit copy of a charge the site reported.
fn charge_record(site: &str, c: &Charge) -> ChargeRecord {
    ChargeRecord {
        site: site.to_string(),
        seq: c.seq,
        dataset: c.dataset.clone(),
        job_id: c.job_id.clone(),
        task_id: c.task_id.clone(),
        mechanism_json: c.mechanism_json.clone(),
        epsilon: c.epsilon,
        delta: c.delta,
        epsilon_spent: c.epsilon_spent,
        recorded_at: c.recorded_at.clone(),
        prev_hash: c.prev_hash.clone(),
        hash: c.hash.clone(),
    }
}

/// Why a session ended.
enum End {
    /// The site closed its stream or it broke.
    Dropped(String),
    /// A newer session of the same site took over.
    Replaced,
    /// The coordinator is stopping.
    Shutdown,
}

/// Handles one session's inbound messages until it ends.
struct SessionReader {
    hub: Arc<Hub>,
    site: String,
    session: u64,
    tx: Outbound,
    reassembly: Reassembly,
}

impl SessionReader {
    async fn run(
        mut self,
        mut inbound: Streaming<SiteMessage>,
        mut replaced: oneshot::Receiver<()>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut heartbeat = tokio::time::interval(self.hub.heartbeat);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await; // the first tick is immediate
        let end = loop {
            tokio::select! {
                biased;
                _ = super::tasks::stop_requested(&mut shutdown) => break End::Shutdown,
                _ = &mut replaced => break End::Replaced,
                message = inbound.message() => match message {
                    Ok(Some(message)) => {
                        if let Err(e) = self.handle(message).await {
                            tracing::error!("site {}: {e}", self.site);
                        }
                    }
                    Ok(None) => break End::Dropped("the site closed the session".into()),
                    Err(status) => break End::Dropped(format!("stream error: {}", status.message())),
                },
                _ = heartbeat.tick() => {
                    let beat = CoordinatorMessage {
                        body: Some(Down::Heartbeat(Heartbeat { unix_millis: unix_millis() })),
                    };
                    // A full queue just skips a beat; a closed one ends the session.
                    if let Err(mpsc::error::TrySendError::Closed(_)) = self.tx.try_send(Ok(beat)) {
                        break End::Dropped("the session stream was closed".into());
                    }
                }
            }
        };
        self.finish(end).await;
    }

    async fn finish(self, end: End) {
        let SessionReader {
            hub,
            site,
            session,
            tx,
            ..
        } = self;
        match end {
            End::Shutdown => {
                let _ = tx.try_send(Err(Status::unavailable(
                    "the coordinator is shutting down; reconnect later",
                )));
                hub.registry.unregister(&site, session);
                // Tasks stay as they are: the next start re-plans them.
                tracing::debug!("site {site}: session {session} closed for shutdown");
            }
            End::Replaced => {
                let _ = tx.try_send(Err(Status::aborted(
                    "replaced by a newer session of the same site",
                )));
                tracing::info!("site {site}: session {session} replaced by a newer one");
                hub.scheduler.site_disconnected(site.clone(), session).await;
            }
            End::Dropped(why) => {
                let removed = hub.registry.unregister(&site, session);
                tracing::info!("site {site} disconnected (session {session}): {why}");
                if removed {
                    let at = now_rfc3339();
                    let name = site.clone();
                    if let Err(e) = blocking(&hub.store, move |s| s.touch_site(&name, &at)).await {
                        tracing::error!("site {site}: {e}");
                    }
                }
                hub.scheduler.site_disconnected(site, session).await;
            }
        }
    }

    async fn handle(&mut self, message: SiteMessage) -> Result<(), ApiError> {
        match message.body {
            Some(Up::Update(update)) => self.on_update(update).await,
            Some(Up::Chunk(chunk)) => {
                match self.reassembly.push(chunk) {
                    Chunked::Pending | Chunked::Ignored => {}
                    Chunked::Complete { task_id, data } => {
                        self.hub
                            .scheduler
                            .task_result(self.site.clone(), task_id, data)
                            .await
                    }
                    Chunked::Rejected { task_id, reason } => {
                        tracing::warn!("site {}: result of {task_id} refused: {reason}", self.site);
                        self.hub
                            .scheduler
                            .result_rejected(self.site.clone(), task_id, reason)
                            .await
                    }
                }
                Ok(())
            }
            Some(Up::Heartbeat(_)) => {
                let (name, at) = (self.site.clone(), now_rfc3339());
                blocking(&self.hub.store, move |s| s.touch_site(&name, &at)).await?;
                Ok(())
            }
            Some(Up::Register(_)) => {
                tracing::warn!(
                    "site {}: ignoring a second Register on one session",
                    self.site
                );
                Ok(())
            }
            None => Ok(()),
        }
    }

    async fn on_update(&mut self, update: TaskUpdate) -> Result<(), ApiError> {
        // The audit copy of the site's ledger is written before anything else happens
        // with the update (DESIGN section 5).
        let charges: Vec<ChargeRecord> = update
            .charges
            .iter()
            .filter(|c| {
                let ok = !c.hash.is_empty();
                if !ok {
                    tracing::warn!(
                        "site {}: charge {} of task {} has no hash; not recorded",
                        self.site,
                        c.seq,
                        c.task_id
                    );
                }
                ok
            })
            .map(|c| charge_record(&self.site, c))
            .collect();
        if !charges.is_empty() {
            let site = self.site.clone();
            let new = blocking(&self.hub.store, move |s| s.record_charges(&site, &charges)).await?;
            tracing::debug!("site {}: {new} new charge(s) recorded", self.site);
        }
        if update.state == "done" && update.result_bytes > self.hub.max_result_bytes {
            self.reassembly.reject(&update.task_id);
            let reason = format!(
                "result of {} bytes exceeds the coordinator's limit of {} bytes (max_result_bytes)",
                update.result_bytes, self.hub.max_result_bytes
            );
            self.hub
                .scheduler
                .result_rejected(self.site.clone(), update.task_id, reason)
                .await;
            return Ok(());
        }
        self.hub
            .scheduler
            .task_update(self.site.clone(), update)
            .await;
        Ok(())
    }
}

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

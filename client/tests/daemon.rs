//! The site daemon against a scripted coordinator on 127.0.0.1 (plaintext loopback with
//! `insecure`; the mutual-TLS path is covered by the workspace's end-to-end tests).
//!
//! Registration, a task from acceptance to chunked result, the charge in the ledger,
//! reconnection after the coordinator drops the stream (with the new ledger head and
//! spend in the registration), refusal of a task id already executed, and clean shutdown.

mod common;

use std::time::Duration;

use common::{Site, task};
use silo_client::config::SiteConfig;
use silo_client::daemon::{self, DaemonEvent};
use silo_common::stats::DpStatsRelease;
use silo_proto::site_api_server::{SiteApi, SiteApiServer};
use silo_proto::{
    CoordinatorMessage, Register, Registered, SiteMessage, coordinator_message, site_message,
};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

/// One site session as the scripted coordinator sees it.
struct Session {
    register: Register,
    inbound: Streaming<SiteMessage>,
    outbound: mpsc::Sender<Result<CoordinatorMessage, Status>>,
}

struct Fake {
    sessions: mpsc::UnboundedSender<Session>,
}

#[tonic::async_trait]
impl SiteApi for Fake {
    type SessionStream = ReceiverStream<Result<CoordinatorMessage, Status>>;

    async fn session(
        &self,
        request: Request<Streaming<SiteMessage>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let mut inbound = request.into_inner();
        let register = match inbound.message().await?.and_then(|m| m.body) {
            Some(site_message::Body::Register(r)) => r,
            other => {
                return Err(Status::invalid_argument(format!(
                    "expected Register, got {other:?}"
                )));
            }
        };
        let (tx, rx) = mpsc::channel(16);
        let registered = Registered {
            coordinator_version: "test".into(),
            heartbeat_seconds: 1,
        };
        tx.send(Ok(CoordinatorMessage {
            body: Some(coordinator_message::Body::Registered(registered)),
        }))
        .await
        .unwrap();
        let _ = self.sessions.send(Session {
            register,
            inbound,
            outbound: tx,
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

async fn start_fake() -> (
    String,
    mpsc::UnboundedReceiver<Session>,
    oneshot::Sender<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(SiteApiServer::new(Fake { sessions: tx }))
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                let _ = stop_rx.await;
            })
            .await
            .unwrap();
    });
    (url, rx, stop_tx)
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("timed out")
        .expect("closed")
}

/// Reads site messages (skipping heartbeats) until the task ends; returns the updates' states,
/// the final update, and the reassembled result.
async fn collect_task(
    s: &mut Session,
    task_id: &str,
) -> (Vec<String>, silo_proto::TaskUpdate, Vec<u8>) {
    let mut states = Vec::new();
    let mut result = Vec::new();
    let mut last_update = None;
    let mut expected_seq = 0;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), s.inbound.message())
            .await
            .expect("timed out")
            .expect("stream error")
            .expect("stream closed");
        match msg.body {
            Some(site_message::Body::Update(u)) => {
                assert_eq!(u.task_id, task_id);
                states.push(u.state.clone());
                let terminal = matches!(u.state.as_str(), "refused" | "failed");
                let done = u.state == "done";
                last_update = Some(u);
                if terminal {
                    return (states, last_update.unwrap(), result);
                }
                if done && last_update.as_ref().unwrap().result_bytes == 0 {
                    panic!("a done update must announce its result size");
                }
            }
            Some(site_message::Body::Chunk(c)) => {
                assert_eq!(
                    states.last().map(String::as_str),
                    Some("done"),
                    "chunks only after done"
                );
                assert_eq!(c.seq, expected_seq);
                assert!(c.data.len() <= silo_proto::CHUNK_BYTES);
                expected_seq += 1;
                result.extend_from_slice(&c.data);
                if c.last {
                    return (states, last_update.unwrap(), result);
                }
            }
            Some(site_message::Body::Heartbeat(_)) => {}
            other => panic!("unexpected message {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_runs_a_task_reconnects_and_shuts_down() {
    let (url, mut sessions, stop_server) = start_fake().await;
    let site = Site::new(&url, 4.0);
    let config = SiteConfig::load(&site.config()).unwrap();
    let ledger_path = config.ledger_path();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let daemon = tokio::spawn(daemon::run_with_events(
        config,
        async {
            let _ = stop_rx.await;
        },
        Some(events_tx),
    ));

    // Registration: public metadata and spend only.
    let mut s = next(&mut sessions).await;
    assert_eq!(s.register.site_name, "hospital-a");
    assert_eq!(s.register.allowed_kinds, vec!["dp_stats"]);
    assert_eq!(
        (s.register.ledger_entries, s.register.ledger_head.as_str()),
        (0, "")
    );
    let d = &s.register.datasets[0];
    assert_eq!(
        (d.name.as_str(), d.kind.as_str(), d.privacy_unit.as_str()),
        ("visits", "csv", "person_id")
    );
    assert_eq!(
        (d.epsilon_budget, d.delta, d.epsilon_spent),
        (4.0, 1e-6, 0.0)
    );
    assert_eq!(
        d.metadata_json, r#"{"columns":["age"]}"#,
        "declared metadata only, no counts"
    );
    assert_eq!(
        next(&mut events).await,
        DaemonEvent::Registered {
            heartbeat_seconds: 1
        }
    );

    // A task: accepted → running… → done with the charge → chunks.
    let t = task(
        "task-1",
        1.0,
        "statistic = \"mean\"\ncolumn = \"age\"\nlower = 0.0\nupper = 100.0",
    );
    s.outbound
        .send(Ok(CoordinatorMessage {
            body: Some(coordinator_message::Body::Task(t.clone())),
        }))
        .await
        .unwrap();
    let (states, done, result) = collect_task(&mut s, "task-1").await;
    assert_eq!(
        states.first().map(String::as_str),
        Some("accepted"),
        "{states:?}"
    );
    assert!(states.iter().any(|s| s == "running"), "{states:?}");
    assert_eq!(states.last().map(String::as_str), Some("done"));
    assert_eq!(done.result_bytes as usize, result.len());
    assert_eq!(done.charges.len(), 1);
    let charge = &done.charges[0];
    assert_eq!(
        (charge.seq, charge.task_id.as_str(), charge.dataset.as_str()),
        (1, "task-1", "visits")
    );
    let release = DpStatsRelease::from_json(&result).unwrap();
    assert!(release.mean.is_some() || release.count.unwrap().value <= 0.0);
    assert_eq!(
        next(&mut events).await,
        DaemonEvent::TaskFinished {
            task_id: "task-1".into(),
            state: "done".into()
        }
    );

    // The coordinator drops the stream: the site reconnects and re-registers with the new
    // ledger head and its spend.
    drop(s);
    assert!(matches!(
        next(&mut events).await,
        DaemonEvent::Disconnected { .. }
    ));
    let mut s = next(&mut sessions).await;
    assert_eq!(s.register.ledger_entries, 1);
    assert_eq!(s.register.ledger_head, charge.hash);
    let spent = s.register.datasets[0].epsilon_spent;
    assert!(spent > 0.99 && spent <= 1.0, "{spent}");

    // The same task id again: refused, never charged twice.
    s.outbound
        .send(Ok(CoordinatorMessage {
            body: Some(coordinator_message::Body::Task(t)),
        }))
        .await
        .unwrap();
    let (states, refused, _) = collect_task(&mut s, "task-1").await;
    assert_eq!(states, vec!["refused"]);
    assert!(
        refused.reason.starts_with("already executed"),
        "{}",
        refused.reason
    );

    // A task over the per-job cap is refused with the reason.
    let big = task("task-2", 3.0, "statistic = \"count\"");
    s.outbound
        .send(Ok(CoordinatorMessage {
            body: Some(coordinator_message::Body::Task(big)),
        }))
        .await
        .unwrap();
    let (_, refused, _) = collect_task(&mut s, "task-2").await;
    assert!(
        refused.reason.contains("max_epsilon_per_job"),
        "{}",
        refused.reason
    );

    // Shutdown: the daemon returns cleanly.
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(20), daemon)
        .await
        .expect("daemon did not stop")
        .unwrap()
        .unwrap();
    let _ = stop_server.send(());

    let ledger = silo_client::ledger::Ledger::open(&ledger_path).unwrap();
    assert_eq!(ledger.len().unwrap(), 1);
    assert!(ledger.verify().unwrap().ok());
}

#[tokio::test]
async fn a_bad_coordinator_url_fails_before_dialling() {
    let site = Site::new("http://10.0.0.1:7443", 4.0);
    // Plaintext to a non-loopback host is refused at config load already.
    let err = SiteConfig::load(&site.config()).unwrap_err();
    assert!(err.to_string().contains("coordinator"), "{err}");
}

#[tokio::test]
async fn shutdown_while_the_coordinator_is_unreachable_is_prompt() {
    // Nothing listens on this port: the daemon keeps retrying until told to stop.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let site = Site::new(&url, 4.0);
    let config = SiteConfig::load(&site.config()).unwrap();
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let daemon = tokio::spawn(daemon::run_with_events(
        config,
        async {
            let _ = stop_rx.await;
        },
        Some(events_tx),
    ));
    assert!(matches!(
        next(&mut events).await,
        DaemonEvent::Disconnected { .. }
    ));
    stop_tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), daemon)
        .await
        .expect("daemon did not stop")
        .unwrap()
        .unwrap();
}

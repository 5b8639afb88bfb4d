//! Connected sites: one entry per site with the channel that feeds its session stream.
//!
//! A site that connects again replaces its previous session (the old one is told to
//! end); every session has an id so that the end of a replaced session does not
//! disconnect its successor. The scheduler sees the registry through
//! [`SiteLinks`](crate::jobs::SiteLinks).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use silo_proto::CoordinatorMessage;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use crate::jobs::{AvailableSite, SiteLinks};

/// What a session stream carries down to the site.
pub type Outbound = mpsc::Sender<Result<CoordinatorMessage, Status>>;

struct Session {
    id: u64,
    datasets: Vec<String>,
    tx: Outbound,
    /// Fired when a newer session of the same site replaces this one.
    replaced: Option<oneshot::Sender<()>>,
}

/// The connected sites.
#[derive(Default)]
pub struct SiteRegistry {
    sessions: Mutex<HashMap<String, Session>>,
    next_id: AtomicU64,
}

impl SiteRegistry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding this lock leaves a consistent map (every update is one
        // insert or remove), so a poisoned lock is safe to keep using.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a session for `site`, replacing (and ending) any previous one. Returns the
    /// session id and a receiver that fires if this session is replaced in turn.
    pub fn register(
        &self,
        site: &str,
        datasets: Vec<String>,
        tx: Outbound,
    ) -> (u64, oneshot::Receiver<()>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (replaced_tx, replaced_rx) = oneshot::channel();
        let previous = self.lock().insert(
            site.to_string(),
            Session {
                id,
                datasets,
                tx,
                replaced: Some(replaced_tx),
            },
        );
        if let Some(mut old) = previous
            && let Some(replaced) = old.replaced.take()
        {
            let _ = replaced.send(());
        }
        (id, replaced_rx)
    }

    /// Removes `site`'s session if it is still session `id`.
    pub fn unregister(&self, site: &str, id: u64) -> bool {
        let mut sessions = self.lock();
        if sessions.get(site).is_some_and(|s| s.id == id) {
            sessions.remove(site);
            true
        } else {
            false
        }
    }

    /// Whether `site` has a session.
    pub fn is_connected(&self, site: &str) -> bool {
        self.lock().contains_key(site)
    }
}

impl SiteLinks for SiteRegistry {
    fn available(&self) -> Vec<AvailableSite> {
        let mut sites: Vec<AvailableSite> = self
            .lock()
            .iter()
            .filter(|(_, s)| !s.tx.is_closed())
            .map(|(name, s)| AvailableSite {
                name: name.clone(),
                session: s.id,
                datasets: s.datasets.clone(),
            })
            .collect();
        sites.sort_by(|a, b| a.name.cmp(&b.name));
        sites
    }

    fn send(&self, site: &str, message: CoordinatorMessage) -> Option<u64> {
        let sessions = self.lock();
        let session = sessions.get(site)?;
        // Never wait on a slow site while holding the scheduler: a full queue means the
        // site is not reading its stream, which counts as not reachable.
        match session.tx.try_send(Ok(message)) {
            Ok(()) => Some(session.id),
            Err(e) => {
                tracing::warn!("cannot queue a message for site {site}: {e}");
                None
            }
        }
    }
}
